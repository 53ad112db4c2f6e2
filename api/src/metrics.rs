//! Per-request observation: a request id (taken from `X-Request-Id` or made up), a log line
//! per request, and the latency histogram per route that `/metrics` exposes.

use std::sync::LazyLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use prometheus::{HistogramOpts, HistogramVec};
use rand::RngCore;
use tracing::Instrument;

static REQUEST_SECONDS: LazyLock<Option<HistogramVec>> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "starling_http_request_duration_seconds",
        "HTTP request latency by route, method and status",
    )
    .buckets(vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ]);
    let hist = HistogramVec::new(opts, &["route", "method", "status"]).ok()?;
    prometheus::default_registry()
        .register(Box::new(hist.clone()))
        .ok()?;
    Some(hist)
});

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            rand::thread_rng().fill_bytes(&mut b);
            b.iter().map(|x| format!("{x:02x}")).collect()
        });
    let method = req.method().to_string();
    let span =
        tracing::info_span!("request", id = %request_id, method = %method, path = %req.path());
    let mut res = next.call(req).instrument(span.clone()).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".into());
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    if let Some(hist) = REQUEST_SECONDS.as_ref() {
        hist.with_label_values(&[route.as_str(), method.as_str(), &status.to_string()])
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        let micros = elapsed.as_micros() as u64;
        if status >= 500 {
            tracing::warn!(status, route = %route, micros, "served");
        } else {
            tracing::debug!(status, route = %route, micros, "served");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}
