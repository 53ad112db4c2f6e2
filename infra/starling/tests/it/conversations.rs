//! Direct conversations, the `direct` and `list` streams, and list timelines with their
//! shard down, end to end over the Mastodon API (issue 13), with the bad input the issue
//! names: someone else's conversation, someone else's list, a list id that is garbage.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::SinkExt;
use serde_json::{Value, json};
use starling::Role;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, User, spawn_app, spawn_app_roles};
use crate::social::id;
use crate::streaming::{Sse, Ws, payload, ws_connect, ws_event};

const WAIT: Duration = Duration::from_secs(5);

async fn dm(app: &TestApp, from: &User, text: &str, reply_to: Option<&str>) -> String {
    let mut body = json!({ "status": text, "visibility": "direct" });
    if let Some(to) = reply_to {
        body["in_reply_to_id"] = json!(to);
    }
    let res = app.post_json(&from.token, "/api/v1/statuses", body).await;
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert!(status.is_success(), "post: {status} {v}");
    id(&v)
}

async fn send(app: &TestApp, user: &User, method: reqwest::Method, path: &str) -> (u16, Value) {
    let res = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let code = res.status().as_u16();
    (code, res.json().await.unwrap_or(Value::Null))
}

/// `user`'s conversations once `pred` holds on them (or the last seen after the wait).
async fn conversations_until(
    app: &TestApp,
    user: &User,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let page = app.get(&user.token, "/api/v1/conversations").await;
        let items = page.as_array().unwrap().clone();
        if pred(&items) || Instant::now() >= deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn last_status(c: &Value) -> String {
    c["last_status"]["id"].as_str().unwrap_or("").to_owned()
}

fn usernames(c: &Value) -> Vec<String> {
    let mut names: Vec<String> = c["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_posts_make_conversations_kept_per_participant() {
    use reqwest::Method;
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;

    let first = dm(&app, &alice, "@bob @carol shall we?", None).await;
    let bobs = conversations_until(&app, &bob, |c| c.len() == 1).await;
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    let group = bobs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(usernames(&bobs[0]), ["alice", "carol"]);
    assert_eq!(bobs[0]["unread"], true);
    assert_eq!(last_status(&bobs[0]), first);
    assert_eq!(bobs[0]["last_status"]["visibility"], "direct");
    let alices = conversations_until(&app, &alice, |c| c.len() == 1).await;
    assert_eq!(
        alices[0]["id"],
        group.as_str(),
        "one id for every participant"
    );
    assert_eq!(alices[0]["unread"], false, "her own post");
    assert_eq!(usernames(&alices[0]), ["bob", "carol"]);
    assert!(
        app.get(&dave.token, "/api/v1/conversations")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Bob answers everyone: the same conversation, now newest with his answer.
    let answer = dm(&app, &bob, "@alice @carol yes", Some(&first)).await;
    let carols = conversations_until(&app, &carol, |c| {
        c.first().is_some_and(|c| last_status(c) == answer)
    })
    .await;
    assert_eq!(carols.len(), 1);
    assert_eq!(carols[0]["id"], group.as_str());
    // A second conversation, Alice and Bob alone.
    let pair_post = dm(&app, &alice, "@bob just us", None).await;
    let bobs = conversations_until(&app, &bob, |c| c.len() == 2).await;
    assert_eq!(
        bobs.iter().map(last_status).collect::<Vec<_>>(),
        [pair_post.clone(), answer.clone()]
    );
    assert_eq!(usernames(&bobs[0]), ["alice"]);

    // Pages by the newest post, with Link headers.
    let res = app
        .get_raw(&bob.token, "/api/v1/conversations?limit=1")
        .await;
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains(&format!("max_id={pair_post}")) && link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Value = res.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    let older = app
        .get(
            &bob.token,
            &format!("/api/v1/conversations?max_id={pair_post}"),
        )
        .await;
    assert_eq!(
        older
            .as_array()
            .unwrap()
            .iter()
            .map(last_status)
            .collect::<Vec<_>>(),
        std::slice::from_ref(&answer)
    );
    let newer = app
        .get(
            &bob.token,
            &format!("/api/v1/conversations?min_id={answer}"),
        )
        .await;
    assert_eq!(
        newer
            .as_array()
            .unwrap()
            .iter()
            .map(last_status)
            .collect::<Vec<_>>(),
        std::slice::from_ref(&pair_post)
    );

    // Mark read: Bob's view only.
    let (code, read) = send(
        &app,
        &bob,
        Method::POST,
        &format!("/api/v1/conversations/{group}/read"),
    )
    .await;
    assert_eq!(code, 200, "{read}");
    assert_eq!(read["unread"], false);
    assert_eq!(read["id"], group.as_str());
    let carols = app.get(&carol.token, "/api/v1/conversations").await;
    assert_eq!(carols[0]["unread"], true);

    // Someone else's conversation, a garbage id: 404 with an error, nothing changes.
    for (method, path) in [
        (Method::POST, format!("/api/v1/conversations/{group}/read")),
        (Method::DELETE, format!("/api/v1/conversations/{group}")),
        (
            Method::POST,
            "/api/v1/conversations/not-an-id/read".to_owned(),
        ),
        (
            Method::DELETE,
            "/api/v1/conversations/99999999999999999999999".to_owned(),
        ),
    ] {
        let (code, body) = send(&app, &dave, method.clone(), &path).await;
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let res = app
        .get_raw(&bob.token, "/api/v1/conversations?max_id=garbage")
        .await;
    assert_eq!(res.status().as_u16(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let page = app
        .get(&bob.token, "/api/v1/conversations?limit=1000000")
        .await;
    assert_eq!(page.as_array().unwrap().len(), 2, "a huge limit is clamped");

    // Removed by Bob: gone for him alone; a new post brings it back, unread.
    let (code, _) = send(
        &app,
        &bob,
        Method::DELETE,
        &format!("/api/v1/conversations/{group}"),
    )
    .await;
    assert_eq!(code, 200);
    let bobs = app.get(&bob.token, "/api/v1/conversations").await;
    assert_eq!(bobs.as_array().unwrap().len(), 1, "{bobs}");
    let (code, _) = send(
        &app,
        &bob,
        Method::DELETE,
        &format!("/api/v1/conversations/{group}"),
    )
    .await;
    assert_eq!(code, 404, "removed already");
    assert_eq!(
        app.get(&carol.token, "/api/v1/conversations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let again = dm(&app, &carol, "@alice @bob me too", Some(&answer)).await;
    let bobs = conversations_until(&app, &bob, |c| c.len() == 2).await;
    assert_eq!(last_status(&bobs[0]), again);
    assert_eq!(bobs[0]["id"], group.as_str());
    assert_eq!(bobs[0]["unread"], true);

    // Deleting the newest post: the view falls back to the one before it.
    let (code, _) = send(
        &app,
        &carol,
        Method::DELETE,
        &format!("/api/v1/statuses/{again}"),
    )
    .await;
    assert_eq!(code, 200);
    let alices = conversations_until(&app, &alice, |c| {
        c.iter()
            .any(|c| c["id"] == group.as_str() && last_status(c) == answer)
    })
    .await;
    assert!(
        alices
            .iter()
            .any(|c| c["id"] == group.as_str() && last_status(c) == answer),
        "{alices:?}"
    );

    // A participant who blocks the author gets no more of it.
    let (code, _) = send(
        &app,
        &carol,
        Method::POST,
        &format!("/api/v1/accounts/{}/block", alice.id),
    )
    .await;
    assert_eq!(code, 200);
    let blocked = dm(&app, &alice, "@bob @carol still there?", None).await;
    conversations_until(&app, &bob, |c| {
        c.first().is_some_and(|c| last_status(c) == blocked)
    })
    .await;
    let carols = app.get(&carol.token, "/api/v1/conversations").await;
    assert!(
        carols
            .as_array()
            .unwrap()
            .iter()
            .all(|c| last_status(c) != blocked),
        "{carols}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_post_reaches_conversations_once_fan_out_runs_again() {
    // No fan-out worker when the post is accepted (one crashed, none restarted yet): the
    // event waits in the durable consumer, and the first worker to start applies it.
    let mut app = spawn_app_roles(&[Role::Api], |_| {}).await;
    let alice = app.register("walice").await;
    let bob = app.register("wbob").await;
    let post = dm(&app, &alice, "@wbob while the workers were down", None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.get(&bob.token, "/api/v1/conversations")
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let worker = app.spawn_role_node(2, &[Role::Fanout], |_| {}).await;
    let bobs = conversations_until(&app, &bob, |c| c.len() == 1).await;
    assert_eq!(bobs.len(), 1, "the accepted post reached its recipient");
    assert_eq!(last_status(&bobs[0]), post);
    worker.stop().await;
    app.stop().await;
}

/// The next event on `ws` named `name` (others skipped), or `None` after `timeout`.
async fn ws_next_named(ws: &mut Ws, name: &str, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    while let Some(event) = ws_event(ws, deadline.saturating_duration_since(Instant::now())).await {
        if event["event"] == name {
            return Some(event);
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_direct_stream_tells_each_participant_and_respects_mutes() {
    let mut app = spawn_app().await;
    let alice = app.register("salice").await;
    let bob = app.register("sbob").await;
    let carol = app.register("scarol").await;
    let mut ws = ws_connect(
        &app.base,
        &format!("?stream=direct&access_token={}", bob.token),
    )
    .await;
    let mut user = ws_connect(
        &app.base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;
    let mut sse = Sse::open(&app, &app.base, "/api/v1/streaming/direct", &alice.token).await;

    let post = dm(&app, &alice, "@sbob a secret", None).await;
    let event = ws_next_named(&mut ws, "conversation", WAIT)
        .await
        .expect("conversation on the direct stream");
    assert_eq!(event["stream"], json!(["direct"]));
    let conversation = payload(&event);
    assert_eq!(conversation["last_status"]["id"], post.as_str());
    assert_eq!(conversation["unread"], true);
    assert_eq!(usernames(&conversation), ["salice"]);
    let (name, data) = sse
        .event(WAIT)
        .await
        .expect("the author's own stream hears of it too");
    assert_eq!(name, "conversation");
    let theirs: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(theirs["id"], conversation["id"]);
    assert_eq!(theirs["unread"], false);
    // The user stream gets the post itself, never a conversation event.
    let on_user = ws_next_named(&mut user, "update", WAIT)
        .await
        .expect("update on the user stream");
    assert_eq!(payload(&on_user)["id"], post.as_str());
    assert!(
        ws_next_named(&mut user, "conversation", Duration::from_millis(400))
            .await
            .is_none()
    );

    // Bob mutes Carol: her direct posts make no conversation and no event for him.
    let res = app
        .post_json(
            &bob.token,
            &format!("/api/v1/accounts/{}/mute", carol.id),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());
    dm(&app, &carol, "@sbob hello?", None).await;
    assert!(
        ws_next_named(&mut ws, "conversation", Duration::from_millis(800))
            .await
            .is_none()
    );
    assert_eq!(
        app.get(&bob.token, "/api/v1/conversations")
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Anonymous: the direct stream needs a user.
    let mut anon = ws_connect(&app.base, "").await;
    anon.send(Message::text(
        json!({"type": "subscribe", "stream": "direct"}).to_string(),
    ))
    .await
    .unwrap();
    let refused = ws_event(&mut anon, WAIT).await.expect("an error");
    assert_eq!(refused["status"], 401, "{refused}");
    app.stop().await;
}

async fn make_list(app: &TestApp, owner: &User, members: &[&User]) -> String {
    let res = app
        .post_json(
            &owner.token,
            "/api/v1/lists",
            json!({"title": "close friends"}),
        )
        .await;
    let list: Value = res.json().await.unwrap();
    let list = id(&list);
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    let res = app
        .post_json(
            &owner.token,
            &format!("/api/v1/lists/{list}/accounts"),
            json!({"account_ids": ids}),
        )
        .await;
    assert!(res.status().is_success());
    list
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_stream_carries_the_lists_posts_to_its_owner_only() {
    let mut app = spawn_app().await;
    let owner = app.register("lowner").await;
    let friend = app.register("lfriend").await;
    let other = app.register("lother").await;
    let stranger = app.register("lstranger").await;
    app.follow(&owner, &friend).await;
    app.follow(&owner, &other).await;
    let list = make_list(&app, &owner, &[&friend]).await;

    let mut ws = ws_connect(
        &app.base,
        &format!("?stream=list&list={list}&access_token={}", owner.token),
    )
    .await;
    let mut sse = Sse::open(
        &app,
        &app.base,
        &format!("/api/v1/streaming/list?list={list}"),
        &owner.token,
    )
    .await;
    // Another stream on the same socket by message, as masto.js subscribes.
    ws.send(Message::text(
        json!({"type": "subscribe", "stream": "list", "list": list}).to_string(),
    ))
    .await
    .unwrap();

    let outside = app.status(&other, "not in the list").await;
    let inside = app.status(&friend, "in the list").await;
    let event = ws_next_named(&mut ws, "update", WAIT)
        .await
        .expect("update on the list stream");
    assert_eq!(event["stream"], json!(["list", list.as_str()]));
    assert_eq!(payload(&event)["id"], id(&inside), "only the member's post");
    let (name, data) = sse.event(WAIT).await.expect("update over SSE");
    assert_eq!(name, "update");
    let status: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(status["id"], id(&inside));
    assert_ne!(status["id"], id(&outside));
    // The post leaves the list: a delete on its stream.
    let res = app
        .http
        .delete(format!("{}/api/v1/statuses/{}", app.base, id(&inside)))
        .bearer_auth(&friend.token)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let deleted = ws_next_named(&mut ws, "delete", WAIT)
        .await
        .expect("delete on the list stream");
    assert_eq!(deleted["payload"], id(&inside));
    assert_eq!(deleted["stream"], json!(["list", list.as_str()]));

    // Someone else's list, a missing list, garbage: errors, never a stream.
    let mut theirs = ws_connect(
        &app.base,
        &format!("?stream=list&list={list}&access_token={}", stranger.token),
    )
    .await;
    let refused = ws_event(&mut theirs, WAIT).await.expect("an error");
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("list"),
        "{refused}"
    );
    for (query, status) in [
        (format!("?list={list}"), 401),
        ("?list=123".to_owned(), 401),
        // The HTTP transport answers a refused stream parameter as every bad parameter: 422.
        ("?list=drop%20table".to_owned(), 422),
        (String::new(), 422),
    ] {
        let res = app
            .get_raw(&stranger.token, &format!("/api/v1/streaming/list{query}"))
            .await;
        assert_eq!(res.status().as_u16(), status, "{query}");
        let body: Value = res.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    theirs
        .send(Message::text(
            json!({"type": "subscribe", "stream": "list", "list": {"a": 1}}).to_string(),
        ))
        .await
        .unwrap();
    let refused = ws_event(&mut theirs, WAIT).await.expect("an error");
    assert_eq!(refused["status"], 400, "{refused}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_is_read_from_the_store_while_its_shard_is_down() {
    let mut app = spawn_app().await;
    let owner = app.register("downowner").await;
    let friend = app.register("downfriend").await;
    app.follow(&owner, &friend).await;
    let list = make_list(&app, &owner, &[&friend]).await;
    let first = app.status(&friend, "before the shard went down").await;
    let path = format!("/api/v1/timelines/list/{list}");
    let deadline = Instant::now() + WAIT;
    while app
        .get(&owner.token, &path)
        .await
        .as_array()
        .unwrap()
        .is_empty()
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let owner_id: starling_schema::Id = owner.id.parse().unwrap();
    let shard = app.node().timelines.shard_of(owner_id);
    app.redis.shard(shard).stop().unwrap();
    let page = app.get(&owner.token, &path).await;
    assert_eq!(
        page.as_array().unwrap().iter().map(id).collect::<Vec<_>>(),
        [id(&first)],
        "the list from the store"
    );
    // Cursors still work on the fallback.
    let older = app
        .get(&owner.token, &format!("{path}?max_id={}", id(&first)))
        .await;
    assert!(older.as_array().unwrap().is_empty());
    app.stop().await;
}
