//! Streaming sockets: a user's WebSocket (`/api/v1/streaming?stream=user`) held open for a
//! run, noting when each `update` event arrives, so fan-out lag can be measured as a
//! client on a socket sees it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// The status id of a Mastodon streaming `update` frame:
/// `{"stream":["user"],"event":"update","payload":"<Status JSON as a string>"}`.
pub fn update_id(frame: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(frame).ok()?;
    if v["event"].as_str()? != "update" {
        return None;
    }
    let status: Value = serde_json::from_str(v["payload"].as_str()?).ok()?;
    status["id"].as_str()?.parse().ok()
}

/// Arrivals of `update` events: `(socket owner, status id, when)`.
pub type Arrivals = Arc<Mutex<Vec<(usize, u64, Instant)>>>;

/// Open `user`'s stream and record its updates into `arrivals` until the task is aborted
/// or the server closes the socket.
pub async fn open(
    url: &str,
    user: usize,
    arrivals: Arrivals,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| anyhow::anyhow!("opening the streaming socket: {e}"))?;
    Ok(tokio::spawn(async move {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Text(text)) => {
                    if let Some(id) = update_id(text.as_str()) {
                        let now = Instant::now();
                        if let Ok(mut a) = arrivals.lock() {
                            a.push((user, id, now));
                        }
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_frames_yield_the_status_id() {
        let status = serde_json::json!({"id": "113456789012345678", "content": "<p>hi</p>"});
        let frame = serde_json::json!({
            "stream": ["user"],
            "event": "update",
            "payload": status.to_string(),
        });
        assert_eq!(update_id(&frame.to_string()), Some(113456789012345678));
    }

    #[test]
    fn other_frames_are_ignored() {
        let delete = r#"{"stream":["user"],"event":"delete","payload":"123"}"#;
        assert_eq!(update_id(delete), None);
        assert_eq!(
            update_id(r#"{"error":"Unknown stream type","status":400}"#),
            None
        );
        assert_eq!(update_id("not json"), None);
        // A payload that is an object rather than a string is not Mastodon's format.
        assert_eq!(
            update_id(r#"{"event":"update","payload":{"id":"1"}}"#),
            None
        );
    }
}
