//! Live streams: WebSocket and SSE, across api nodes, with presence, slow clients,
//! visibility and token revocation.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{TestApp, User, spawn_app, spawn_app_with};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub(crate) fn ws_url(base: &str, query: &str) -> String {
    format!("{}/api/v1/streaming{query}", base.replacen("http", "ws", 1))
}

pub(crate) async fn ws_connect(base: &str, query: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(base, query))
        .await
        .expect("websocket connect");
    ws
}

/// The next Mastodon event on a WebSocket (pings skipped), or `None` after `timeout`.
pub(crate) async fn ws_event(ws: &mut Ws, timeout: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg.ok()? {
            Message::Text(text) => return Some(serde_json::from_str(&text).expect("event json")),
            Message::Close(_) => return None,
            _ => {}
        }
    }
}

/// The status inside an `update` event (its payload is a JSON string).
pub(crate) fn payload(event: &Value) -> Value {
    serde_json::from_str(event["payload"].as_str().expect("payload is a string"))
        .expect("payload json")
}

/// Wait for an `update` of status `id` on a WebSocket, skipping other events.
async fn ws_update_of(ws: &mut Ws, id: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while let Some(event) = ws_event(ws, deadline.saturating_duration_since(Instant::now())).await {
        if event["event"] == "update" && payload(&event)["id"] == id {
            return Some(event);
        }
    }
    None
}

/// A server-sent event stream read by hand: (event name, data) pairs.
pub(crate) struct Sse {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buf: String,
}

impl Sse {
    pub(crate) async fn open(app: &TestApp, base: &str, path: &str, token: &str) -> Sse {
        let res = app
            .http
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("SSE GET");
        assert_eq!(res.status(), 200, "SSE {path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Sse {
            body: Box::pin(res.bytes_stream().map(|chunk| chunk.map(|b| b.to_vec()))),
            buf: String::new(),
        }
    }

    /// Whether the server ends the stream within `timeout` (events and comments skipped).
    async fn ends_within(&mut self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => continue,
                Err(_) => return false,
            }
        }
    }

    /// The next event (comments skipped), or `None` after `timeout`.
    pub(crate) async fn event(&mut self, timeout: Duration) -> Option<(String, String)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut name = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_owned());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if let Some(name) = name {
                    return Some((name, data));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buf
                .push_str(std::str::from_utf8(&chunk.ok()?).expect("utf-8"));
        }
    }
}

async fn post(app: &TestApp, base: &str, user: &User, body: Value) -> Value {
    let res = app
        .http
        .post(format!("{base}/api/v1/statuses"))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .expect("POST status");
    assert!(res.status().is_success(), "post: {}", res.status());
    res.json().await.expect("status json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_streaming_from_one_node_gets_a_post_made_through_another_within_a_second() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, &alice).await;
    let (node2, base2) = app.spawn_api_node(2, |_| {}).await;

    // Bob on node 1 over WebSocket (token in the query), and on node 2 over SSE.
    let mut ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;
    let mut sse = Sse::open(&app, &base2, "/api/v1/streaming/user", &bob.token).await;

    let sent = Instant::now();
    let status = post(&app, &base2, &alice, json!({ "status": "hello #stream" })).await;
    let id = status["id"].as_str().unwrap();

    let event = ws_update_of(&mut ws, id, Duration::from_secs(1))
        .await
        .expect("update over WebSocket within 1 s");
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert_eq!(event["stream"], json!(["user"]));
    let status = payload(&event);
    assert_eq!(status["account"]["username"], "alice");
    assert!(status["content"].as_str().unwrap().contains("hello"));

    let (name, data) = sse
        .event(Duration::from_secs(1))
        .await
        .expect("update over SSE within 1 s");
    assert_eq!(name, "update");
    let status: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(status["id"], id);

    // Deleting it through node 1 reaches both.
    let res = app
        .http
        .delete(format!("{}/api/v1/statuses/{id}", app.base))
        .bearer_auth(&alice.token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let event = ws_event(&mut ws, Duration::from_secs(2))
        .await
        .expect("delete event");
    assert_eq!(event["event"], "delete");
    assert_eq!(event["payload"], id);
    let (name, data) = sse
        .event(Duration::from_secs(2))
        .await
        .expect("delete over SSE");
    assert_eq!((name.as_str(), data.as_str()), ("delete", id));

    node2.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_tokens_come_from_a_header_or_the_subprotocol_and_streams_from_messages() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, &alice).await;

    // Token as the subprotocol (browsers), echoed back; subscribe by message.
    let mut req = ws_url(&app.base, "").into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", bob.token.parse().unwrap());
    let (mut by_protocol, res) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(
        res.headers()["sec-websocket-protocol"].to_str().unwrap(),
        bob.token
    );
    // Token in the Authorization header.
    let mut req = ws_url(&app.base, "").into_client_request().unwrap();
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", bob.token).parse().unwrap(),
    );
    let (mut by_header, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    for ws in [&mut by_protocol, &mut by_header] {
        ws.send(Message::text(r#"{"type":"subscribe","stream":"nonsense"}"#))
            .await
            .unwrap();
        let err = ws_event(ws, Duration::from_secs(2))
            .await
            .expect("error reply");
        assert_eq!(
            err,
            json!({ "error": "Unknown stream type", "status": 400 })
        );
        ws.send(Message::text(r#"{"type":"subscribe","stream":"user"}"#))
            .await
            .unwrap();
        ws.send(Message::text(
            r#"{"type":"subscribe","stream":"hashtag","tag":"Rust"}"#,
        ))
        .await
        .unwrap();
    }
    // Subscriptions are asynchronous: give them a moment to reach NATS.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = app.status(&alice, "a #rust post").await;
    let id = status["id"].as_str().unwrap();
    for ws in [&mut by_protocol, &mut by_header] {
        let mut streams = Vec::new();
        for _ in 0..2 {
            let event = ws_event(ws, Duration::from_secs(2)).await.expect("update");
            assert_eq!(event["event"], "update");
            assert_eq!(payload(&event)["id"], id);
            streams.push(event["stream"].clone());
        }
        streams.sort_by_key(|s| s.to_string());
        assert_eq!(streams, vec![json!(["hashtag", "rust"]), json!(["user"])]);
    }

    // A bad token is refused before the upgrade; `user` needs a token at all.
    let bad =
        tokio_tungstenite::connect_async(ws_url(&app.base, "?stream=user&access_token=nope")).await;
    assert!(bad.is_err(), "a bad token must not open a stream");
    let mut anonymous = ws_connect(&app.base, "?stream=user").await;
    let err = ws_event(&mut anonymous, Duration::from_secs(2))
        .await
        .expect("error reply");
    assert_eq!(err["status"], 401);

    let res = app
        .http
        .get(format!("{}/api/v1/streaming/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "OK");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_direct_posts_reach_only_their_audience_on_streams() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let follower = app.register("follower").await;
    let stranger = app.register("stranger").await;
    let friend = app.register("friend").await;
    app.follow(&follower, &alice).await;

    let mut follower_ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", follower.token),
    )
    .await;
    let mut stranger_ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", stranger.token),
    )
    .await;
    let mut friend_ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", friend.token),
    )
    .await;
    let mut public_ws = ws_connect(
        &app.base,
        &format!("?stream=public&access_token={}", stranger.token),
    )
    .await;

    let private = post(
        &app,
        &app.base,
        &alice,
        json!({ "status": "followers only", "visibility": "private" }),
    )
    .await;
    let direct = post(
        &app,
        &app.base,
        &alice,
        json!({ "status": "@friend just you", "visibility": "direct" }),
    )
    .await;
    let public = post(&app, &app.base, &alice, json!({ "status": "everyone" })).await;

    // The follower sees the private and the public one, not the direct one.
    assert!(
        ws_update_of(
            &mut follower_ws,
            private["id"].as_str().unwrap(),
            Duration::from_secs(2)
        )
        .await
        .is_some()
    );
    let next = ws_event(&mut follower_ws, Duration::from_secs(2))
        .await
        .expect("next update");
    assert_eq!(
        payload(&next)["id"],
        public["id"],
        "the direct post must not reach a follower"
    );
    // The mentioned friend sees the direct one (and nothing else: not a follower).
    let event = ws_event(&mut friend_ws, Duration::from_secs(2))
        .await
        .expect("direct");
    assert_eq!(payload(&event)["id"], direct["id"]);
    assert_eq!(payload(&event)["visibility"], "direct");
    // The public stream carries only the public one.
    let event = ws_event(&mut public_ws, Duration::from_secs(2))
        .await
        .expect("public update");
    assert_eq!(event["stream"], json!(["public"]));
    assert_eq!(payload(&event)["id"], public["id"]);
    // The stranger's home stream gets nothing at all.
    assert!(
        ws_event(&mut stranger_ws, Duration::from_millis(500))
            .await
            .is_none()
    );
    // Besides the post, the friend is told of the mention, and of nothing else.
    let event = ws_event(&mut friend_ws, Duration::from_secs(2))
        .await
        .expect("mention notification");
    assert_eq!(event["event"], "notification");
    assert_eq!(payload(&event)["type"], "mention");
    assert_eq!(payload(&event)["status"]["id"], direct["id"]);
    assert!(
        ws_event(&mut friend_ws, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert!(
        ws_event(&mut public_ws, Duration::from_millis(300))
            .await
            .is_none()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_stops_reading_is_dropped_while_others_keep_receiving() {
    let mut app = spawn_app_with(|s| {
        // Small enough that the silent socket overflows soon, large enough that the reading
        // one keeps up on a machine busy with other tests.
        s.streaming.buffer = 16;
    })
    .await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, &alice).await;

    // The slow client: a tiny receive window, and it never reads.
    let url = ws_url(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    );
    let addr = app.node().addr.unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    let (slow, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let mut fast = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;

    let text = "x".repeat(480);
    let streaming_metrics = || async {
        let text = app
            .http
            .get(format!("{}/metrics", app.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with("starling_streaming"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut ids = std::collections::HashSet::new();
    let mut received = std::collections::HashSet::new();
    // Post until the server gives up on the slow socket (its kernel buffers fill first).
    let mut dropped = false;
    for i in 0..2_000 {
        let s = post(
            &app,
            &app.base,
            &alice,
            json!({ "status": format!("{i} {text}") }),
        )
        .await;
        ids.insert(s["id"].as_str().unwrap().to_owned());
        // The fast client keeps up as it goes (events of concurrent fan-out may interleave).
        while let Some(event) = ws_event(&mut fast, Duration::from_millis(1)).await {
            received.insert(payload(&event)["id"].as_str().unwrap().to_owned());
        }
        if i % 50 == 49
            && streaming_metrics()
                .await
                .contains("outcome=\"dropped_slow\"} 1")
        {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the slow socket was never dropped: {}",
        streaming_metrics().await
    );
    while received.len() < ids.len() {
        let Some(event) = ws_event(&mut fast, Duration::from_secs(5)).await else {
            panic!(
                "the fast socket got {} of {} updates; {}",
                received.len(),
                ids.len(),
                streaming_metrics().await
            );
        };
        received.insert(payload(&event)["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(received, ids);

    // Reading now, the slow client finds fewer updates than were posted, then the end.
    let mut slow = slow;
    let mut got = 0;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(5), slow.next()).await {
        match msg {
            Message::Text(_) => got += 1,
            Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(
        got < ids.len(),
        "the slow socket was not cut off ({got} of {})",
        ids.len()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_on_one_node_closes_its_streams_on_another() {
    let mut app = spawn_app().await;
    let bob = app.register("bob").await;
    let (node2, base2) = app.spawn_api_node(2, |_| {}).await;
    let mut ws = ws_connect(&base2, &format!("?stream=user&access_token={}", bob.token)).await;
    let mut sse = Sse::open(&app, &app.base, "/api/v1/streaming/user", &bob.token).await;

    let res = app
        .http
        .post(format!("{}/oauth/revoke", app.base))
        .form(&[("token", bob.token.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());

    let deadline = Instant::now() + Duration::from_secs(3);
    let ws_closed = loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next()).await {
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => break true,
            Ok(Some(Ok(_))) if Instant::now() < deadline => continue,
            _ => break false,
        }
    };
    assert!(ws_closed, "the WebSocket of a revoked token must close");
    assert!(
        sse.ends_within(Duration::from_secs(3)).await,
        "the SSE stream must end"
    );
    // And the token is refused everywhere at once.
    let res = app
        .get_raw(
            &bob.token,
            &format!("{base2}/api/v1/accounts/verify_credentials"),
        )
        .await;
    assert_eq!(res.status(), 401);
    node2.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_streamed_on_user_and_user_notification() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut notes = Sse::open(
        &app,
        &app.base,
        "/api/v1/streaming/user/notification",
        &bob.token,
    )
    .await;
    let mut ws = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;

    let mine = app.status(&bob, "favourite me").await;
    let id = mine["id"].as_str().unwrap();
    // Bob's own post reaches his home stream; the notification stream carries no updates.
    assert!(
        ws_update_of(&mut ws, id, Duration::from_secs(2))
            .await
            .is_some()
    );
    let res = app
        .post_json(
            &alice.token,
            &format!("/api/v1/statuses/{id}/favourite"),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());

    let (name, data) = notes
        .event(Duration::from_secs(3))
        .await
        .expect("notification over SSE");
    assert_eq!(name, "notification");
    let n: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(n["type"], "favourite");
    assert_eq!(n["account"]["username"], "alice");
    assert_eq!(n["status"]["id"], id);
    let event = ws_event(&mut ws, Duration::from_secs(3))
        .await
        .expect("notification over WebSocket");
    assert_eq!(event["event"], "notification");
    assert_eq!(payload(&event)["type"], "favourite");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_and_muted_accounts_never_reach_a_users_streams() {
    let mut app = spawn_app().await;
    let bob = app.register("bob").await;
    let muted = app.register("muted").await;
    let blocked = app.register("blocked").await;
    let friend = app.register("friend").await;
    app.follow(&bob, &muted).await;
    app.follow(&bob, &friend).await;
    for (target, action) in [(&muted, "mute"), (&blocked, "block")] {
        let res = app
            .post_json(
                &bob.token,
                &format!("/api/v1/accounts/{}/{action}", target.id),
                json!({}),
            )
            .await;
        assert!(res.status().is_success(), "{action}");
    }
    let mut home = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;
    let mut public = ws_connect(
        &app.base,
        &format!("?stream=public&access_token={}", bob.token),
    )
    .await;

    app.status(&muted, "muted speaks @bob #news").await;
    app.status(&blocked, "blocked speaks @bob #news").await;
    let fine = app.status(&friend, "friend speaks #news").await;
    let fine = fine["id"].as_str().unwrap();

    // Only the friend's post arrives, on both streams; no mention notification either.
    let event = ws_event(&mut home, Duration::from_secs(3))
        .await
        .expect("friend's update");
    assert_eq!(event["event"], "update");
    assert_eq!(payload(&event)["id"], fine);
    let event = ws_event(&mut public, Duration::from_secs(3))
        .await
        .expect("public update");
    assert_eq!(payload(&event)["id"], fine);
    assert!(
        ws_event(&mut home, Duration::from_millis(700))
            .await
            .is_none()
    );
    assert!(
        ws_event(&mut public, Duration::from_millis(300))
            .await
            .is_none()
    );
    app.stop().await;
}

/// A stream keeps out every account its user blocks, not only the newest thousand: the
/// first account blocked, behind 1,000 later blocks, still never reaches the public stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_of_more_than_a_thousand_blocks_still_keeps_its_posts_off_a_stream() {
    use starling_schema::Id;
    use starling_schema::model::ImportAccount;
    use starling_store::Store;

    let mut app = spawn_app().await;
    let bob = app.register("bob").await;
    let first = app.register("first").await;
    let friend = app.register("friend").await;
    let res = app
        .post_json(
            &bob.token,
            &format!("/api/v1/accounts/{}/block", first.id),
            json!({}),
        )
        .await;
    assert!(res.status().is_success(), "block");
    let store = &app.node().store;
    let bob_id: Id = bob.id.parse().unwrap();
    let later = store
        .import_accounts(
            (0..1_000)
                .map(|i| ImportAccount {
                    username: format!("later{i}"),
                    display_name: None,
                    bot: false,
                })
                .collect(),
        )
        .await
        .unwrap();
    for account in &later {
        assert!(store.block(bob_id, account.id).await.unwrap());
    }
    let mut public = ws_connect(
        &app.base,
        &format!("?stream=public&access_token={}", bob.token),
    )
    .await;
    app.status(&first, "the first blocked speaks").await;
    let fine = app.status(&friend, "a friend speaks").await;
    let event = ws_event(&mut public, Duration::from_secs(5))
        .await
        .expect("the friend's update");
    assert_eq!(payload(&event)["id"], fine["id"]);
    assert!(
        ws_event(&mut public, Duration::from_millis(500))
            .await
            .is_none(),
        "nothing else arrives"
    );
    app.stop().await;
}
