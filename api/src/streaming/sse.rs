//! The server-sent events transport: `GET /api/v1/streaming/{user, user/notification,
//! public, public/local, hashtag, hashtag/local, direct, list}` (`?tag=` for hashtags,
//! `?list=` for a list), one stream per
//! response, `event: <name>\ndata: <payload>\n\n` per event and a `:thump` comment as
//! heartbeat. The token comes from `Authorization: Bearer` or `?access_token=`.

use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, stream};

use super::ws::StreamQuery;
use super::{ConnGuard, Hub, Sub, SubError};
use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::{authenticate_token, bearer};

pub(super) async fn connect(
    req: HttpRequest,
    path: web::Path<String>,
    api: web::Data<Api>,
) -> ApiResult<HttpResponse> {
    let query = serde_html_form::from_str::<StreamQuery>(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    let name = match path.trim_end_matches('/') {
        "user" => "user",
        "user/notification" => "user:notification",
        "public" => "public",
        "public/local" => "public:local",
        "hashtag" => "hashtag",
        "hashtag/local" => "hashtag:local",
        "direct" => "direct",
        "list" => "list",
        _ => return Err(ApiError::not_found("Stream")),
    };
    let sub = Sub::parse(name, query.tag.as_deref(), query.list.as_deref())
        .map_err(SubError::into_api)?;
    respond(&req, api.into_inner(), sub).await
}

/// Open an SSE response carrying `sub`.
pub(super) async fn respond(req: &HttpRequest, api: Arc<Api>, sub: Sub) -> ApiResult<HttpResponse> {
    let auth = authenticate_token(&api, bearer(req).as_deref(), crate::scopes::STREAMING).await?;
    let (user, token_hash) = match &auth {
        Some(a) => (Some(a.account.id), Some(a.token.token_hash.clone())),
        None => (None, None),
    };
    let ip = api.limits.client_ip(req).map(crate::ratelimit::ip_key);
    let (guard, rx) = Hub::open(&api, user, ip, token_hash).await?;
    Hub::subscribe(&api, &guard.conn, sub)
        .await
        .map_err(SubError::into_api)?;
    let mut heartbeat = tokio::time::interval(api.hub.heartbeat());
    heartbeat.reset();
    // The guard lives in the stream's state: the connection leaves the hub when actix drops
    // the body (client gone, or the stream ended).
    let opening = stream::once(async { Ok::<_, actix_web::Error>(Bytes::from_static(b":)\n\n")) });
    let events = stream::unfold(
        (guard, rx, heartbeat),
        |(guard, mut rx, mut heartbeat): (ConnGuard, _, tokio::time::Interval)| async move {
            let chunk = tokio::select! {
                biased;
                () = guard.conn.closed.cancelled() => return None,
                out = rx.recv() => Bytes::from(out?.sse_text()),
                _ = heartbeat.tick() => Bytes::from_static(b":thump\n\n"),
            };
            Some((Ok::<_, actix_web::Error>(chunk), (guard, rx, heartbeat)))
        },
    );
    let body = opening.chain(events);
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
