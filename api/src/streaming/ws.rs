//! The WebSocket transport: `GET /api/v1/streaming` with an `Upgrade` header. The token
//! comes from `Authorization: Bearer`, from `Sec-WebSocket-Protocol` (echoed back, as
//! browsers require) or from `?access_token=`; streams from `?stream=` and from
//! `{"type":"subscribe"|"unsubscribe","stream":...,"tag":...}` messages. Without an
//! `Upgrade` header the same path answers as server-sent events.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::{Conn, ConnGuard, Hub, Outgoing, Sub, SubError};
use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::{authenticate_token, bearer};

/// The largest message a client may send (subscribe messages are tiny).
const MAX_FRAME: usize = 16 * 1024;
/// How long a close handshake may take before the socket is simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub(super) struct StreamQuery {
    pub stream: Option<String>,
    pub tag: Option<String>,
    pub list: Option<String>,
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    stream: Option<String>,
    tag: Option<String>,
    /// A list's id (a string, or a number as some clients send it).
    list: Option<serde_json::Value>,
}

/// The token from `Sec-WebSocket-Protocol`, as browsers cannot set headers.
fn protocol_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or(v).trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

pub(super) async fn connect(
    req: HttpRequest,
    body: web::Payload,
    api: web::Data<Api>,
) -> ApiResult<HttpResponse> {
    let query = serde_html_form::from_str::<StreamQuery>(req.query_string())
        .map_err(|e| ApiError::invalid(format!("invalid query: {e}")))?;
    if !is_upgrade(&req) {
        let stream = query.stream.as_deref().unwrap_or("user");
        let sub = Sub::parse(stream, query.tag.as_deref(), query.list.as_deref())
            .map_err(SubError::into_api)?;
        return super::sse::respond(&req, api.into_inner(), sub).await;
    }
    let protocol = protocol_token(&req);
    let presented = bearer(&req).or_else(|| protocol.clone());
    let auth = authenticate_token(&api, presented.as_deref(), crate::scopes::STREAMING).await?;
    let api = api.into_inner();
    let (user, token_hash) = match &auth {
        Some(a) => (Some(a.account.id), Some(a.token.token_hash.clone())),
        None => (None, None),
    };
    let ip = api.limits.client_ip(&req).map(crate::ratelimit::ip_key);
    let (guard, rx) = Hub::open(&api, user, ip, token_hash).await?;
    let (mut response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::invalid(format!("WebSocket handshake failed: {e}")))?;
    if let Some(protocol) = protocol
        && let Ok(value) = HeaderValue::from_str(&protocol)
    {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    // The query's stream is subscribed before the handshake completes, so the client's
    // first event after connecting is not missed.
    let mut early_error = None;
    if let Some(stream) = query.stream.as_deref() {
        let subscribed = match Sub::parse(stream, query.tag.as_deref(), query.list.as_deref()) {
            Ok(sub) => Hub::subscribe(&api, &guard.conn, sub).await,
            Err(e) => Err(e),
        };
        early_error = subscribed.err();
    }
    actix_web::rt::spawn(run(
        api,
        guard,
        rx,
        session,
        messages.max_frame_size(MAX_FRAME),
        early_error,
    ));
    Ok(response)
}

async fn run(
    api: Arc<Api>,
    guard: ConnGuard,
    mut rx: mpsc::Receiver<Outgoing>,
    mut session: actix_ws::Session,
    mut messages: actix_ws::MessageStream,
    early_error: Option<SubError>,
) {
    let conn = guard.conn.clone();
    if let Some(e) = early_error
        && session.text(e.json()).await.is_err()
    {
        return;
    }
    let mut heartbeat = tokio::time::interval(api.hub.heartbeat());
    heartbeat.reset();
    let reason = loop {
        tokio::select! {
            biased;
            () = conn.closed.cancelled() => break Some(CloseReason {
                code: CloseCode::Away,
                description: Some("stream closed by the server".into()),
            }),
            out = rx.recv() => {
                let Some(out) = out else { break None };
                // A client too slow to take this is dropped by the hub, which cancels `closed`.
                tokio::select! {
                    () = conn.closed.cancelled() => break None,
                    sent = session.text(out.ws_text()) => if sent.is_err() { return },
                }
            }
            _ = heartbeat.tick() => {
                tokio::select! {
                    () = conn.closed.cancelled() => break None,
                    sent = session.ping(b"") => if sent.is_err() { return },
                }
            }
            msg = messages.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = handle_message(&api, &conn, &text).await
                        && session.text(reply).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "WebSocket protocol error");
                    break Some(CloseReason { code: CloseCode::Protocol, description: None });
                }
                Some(Ok(_)) => {}
            },
        }
    };
    drop(guard);
    if let Some(reason) = reason {
        let _ = tokio::time::timeout(CLOSE_WAIT, session.close(Some(reason))).await;
    }
}

/// A client's subscribe or unsubscribe message; the reply to send, if any.
async fn handle_message(api: &Arc<Api>, conn: &Arc<Conn>, text: &str) -> Option<String> {
    let Ok(msg) = serde_json::from_str::<ClientMessage>(text) else {
        return Some(
            SubError {
                status: 400,
                message: "Invalid JSON",
            }
            .json(),
        );
    };
    let list = match &msg.list {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(_) => Some(String::new()),
        None => None,
    };
    let sub = match Sub::parse(
        msg.stream.as_deref().unwrap_or(""),
        msg.tag.as_deref(),
        list.as_deref(),
    ) {
        Ok(sub) => sub,
        Err(e) => return Some(e.json()),
    };
    match msg.kind.as_str() {
        "subscribe" => Hub::subscribe(api, conn, sub).await.err().map(|e| e.json()),
        "unsubscribe" => {
            api.hub.unsubscribe(conn, &sub);
            None
        }
        _ => Some(
            SubError {
                status: 400,
                message: "Unknown message type",
            }
            .json(),
        ),
    }
}
