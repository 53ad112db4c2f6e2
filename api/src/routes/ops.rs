//! Operations: `/health` (the process is alive), `/ready` (every dependency answers),
//! `/metrics` (Prometheus).

use actix_web::{HttpResponse, web};
use serde_json::json;
use starling_store::Store;

use crate::Api;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics));
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

async fn ready(api: web::Data<Api>) -> HttpResponse {
    let store = api.store.ping().await.map_err(|e| e.to_string());
    let shards: Vec<Result<(), String>> = api
        .timelines
        .ping_all()
        .await
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    let nats = api.bus.ping().await.map_err(|e| e.to_string());
    let ok = store.is_ok() && nats.is_ok() && shards.iter().all(Result::is_ok);
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!("ok"),
        Err(e) => json!(e),
    };
    let body = json!({
        "ready": ok,
        "store": show(&store),
        "nats": show(&nats),
        "redis_shards": shards.iter().map(show).collect::<Vec<_>>(),
    });
    if ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

async fn metrics() -> HttpResponse {
    let families = prometheus::gather();
    match prometheus::TextEncoder::new().encode_to_string(&families) {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(e) => HttpResponse::InternalServerError().json(json!({ "error": e.to_string() })),
    }
}
