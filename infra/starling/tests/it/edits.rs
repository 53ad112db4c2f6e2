//! Edits and polls end to end (issue 13): an edit seen at once on every api node, on the
//! streams (`status.update`), in search and in the history; rebloggers told; polls voted
//! once per account, counted exactly under concurrent votes, and their end notified to
//! voters and author by the expiry job, across a restart of the server.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling::Role;
use starling_store::AnyStore;
use starling_store::embedded::EmbeddedStore;

use crate::helpers::{TestApp, User, spawn_app, spawn_app_with, test_settings};
use crate::streaming::{payload, ws_connect, ws_event};

async fn put_json(app: &TestApp, base: &str, user: &User, path: &str, body: Value) -> (u16, Value) {
    let res = app
        .http
        .put(format!("{base}{path}"))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .expect("PUT");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_form(app: &TestApp, user: &User, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let res = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(&user.token)
        .form(form)
        .send()
        .await
        .expect("POST");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post_json(app: &TestApp, user: &User, path: &str, body: Value) -> (u16, Value) {
    let res = app.post_json(&user.token, path, body).await;
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Poll `check` every 50 ms until it returns `Some`, or panic after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text_of(status: &Value) -> String {
    status["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_reaches_every_node_stream_search_and_history_at_once() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.follow(&bob, &alice).await;
    let status = app.status(&alice, "first words about #before").await;
    let id = status["id"].as_str().unwrap().to_owned();
    assert!(status["edited_at"].is_null());
    // Another api node reads (and caches) the status before the edit.
    let (other, other_base) = app.spawn_api_node(2, |_| {}).await;
    let seen = app
        .get_raw(&bob.token, &format!("{other_base}/api/v1/statuses/{id}"))
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert!(text_of(&seen).contains("first words"));
    // Carol reblogs it; Bob streams his home from the other node.
    let (code, _) = post_json(
        &app,
        &carol,
        &format!("/api/v1/statuses/{id}/reblog"),
        json!({}),
    )
    .await;
    assert_eq!(code, 200);
    let mut ws = ws_connect(
        &other_base,
        &format!("?stream=user&access_token={}", bob.token),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (code, edited) = put_json(
        &app,
        &app.base,
        &alice,
        &format!("/api/v1/statuses/{id}"),
        json!({"status": "second words about #after", "spoiler_text": "cw", "sensitive": true}),
    )
    .await;
    assert_eq!(code, 200, "{edited}");
    assert_eq!(edited["id"], id.as_str());
    assert!(text_of(&edited).contains("second words"));
    assert!(edited["edited_at"].is_string());
    assert_eq!(edited["spoiler_text"], "cw");
    assert_eq!(edited["sensitive"], true);
    assert_eq!(edited["tags"][0]["name"], "after");

    // The streaming follower hears `status.update` with the new text.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut update = None;
    while let Some(event) =
        ws_event(&mut ws, deadline.saturating_duration_since(Instant::now())).await
    {
        if event["event"] == "status.update" {
            update = Some(payload(&event));
            break;
        }
    }
    let update = update.expect("a status.update event");
    assert_eq!(update["id"], id.as_str());
    assert!(text_of(&update).contains("second words"));
    assert!(update["edited_at"].is_string());

    // The other node shows the edit at once (its cached copy was forgotten).
    let fresh: Value = eventually(
        "the other node to show the edit",
        Duration::from_secs(2),
        || async {
            let s: Value = app
                .get_raw(&bob.token, &format!("{other_base}/api/v1/statuses/{id}"))
                .await
                .json()
                .await
                .ok()?;
            text_of(&s).contains("second words").then_some(s)
        },
    )
    .await;
    assert!(fresh["edited_at"].is_string());

    // Search follows: the new words are found, the old ones are not.
    eventually(
        "search to find the edit",
        Duration::from_secs(5),
        || async {
            let found = app
                .get(&bob.token, "/api/v2/search?q=second&type=statuses")
                .await;
            let gone = app
                .get(&bob.token, "/api/v2/search?q=first&type=statuses")
                .await;
            (found["statuses"].as_array()?.len() == 1 && gone["statuses"].as_array()?.is_empty())
                .then_some(())
        },
    )
    .await;
    // The tag timelines follow too.
    let after = app.get(&bob.token, "/api/v1/timelines/tag/after").await;
    assert_eq!(after[0]["id"], id.as_str());
    let before = app.get(&bob.token, "/api/v1/timelines/tag/before").await;
    assert_eq!(before.as_array().unwrap().len(), 0);

    // History: oldest first, the original included; the source as written.
    let history = app
        .get(&bob.token, &format!("/api/v1/statuses/{id}/history"))
        .await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert!(text_of(&history[0]).contains("first words"));
    assert!(text_of(&history[1]).contains("second words"));
    assert_eq!(history[1]["spoiler_text"], "cw");
    assert_eq!(history[0]["account"]["id"], alice.id.as_str());
    let source = app
        .get(&alice.token, &format!("/api/v1/statuses/{id}/source"))
        .await;
    assert_eq!(source["text"], "second words about #after");
    assert_eq!(source["spoiler_text"], "cw");

    // Carol, who reblogged it, is told of the edit.
    let note = eventually(
        "carol's update notification",
        Duration::from_secs(5),
        || async {
            let list = app
                .get(&carol.token, "/api/v1/notifications?types[]=update")
                .await;
            list.as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(note["type"], "update");
    assert_eq!(note["account"]["id"], alice.id.as_str());
    assert_eq!(note["status"]["id"], id.as_str());
    assert!(text_of(&note["status"]).contains("second words"));
    // Bob, who did not reblog, is not.
    let bobs = app
        .get(&bob.token, "/api/v1/notifications?types[]=update")
        .await;
    assert!(bobs.as_array().unwrap().is_empty());
    other.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_edits_are_refused_with_clear_errors() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let status = app.status(&alice, "mine").await;
    let id = status["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/statuses/{id}");
    // Someone else's post.
    let (code, body) = put_json(&app, &app.base, &bob, &path, json!({"status": "hijack"})).await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].is_string());
    // A reblog.
    let (_, reblog) = post_json(&app, &bob, &format!("{path}/reblog"), json!({})).await;
    let reblog_id = reblog["id"].as_str().unwrap();
    let (code, body) = put_json(
        &app,
        &app.base,
        &bob,
        &format!("/api/v1/statuses/{reblog_id}"),
        json!({"status": "boosted words"}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    assert!(body["error"].is_string());
    // Blank text, text too long, a bad poll, an unknown post.
    for (body, want) in [
        (json!({"status": "  "}), 422),
        (json!({"status": "x".repeat(501)}), 422),
        (
            json!({"status": "q", "poll": {"options": ["one"], "expires_in": 600}}),
            422,
        ),
        (json!({"status": "q", "poll": {"options": ["a", "b"]}}), 422),
    ] {
        let (code, answer) = put_json(&app, &app.base, &alice, &path, body.clone()).await;
        assert_eq!(code, want, "{body}: {answer}");
        assert!(answer["error"].is_string());
    }
    let (code, _) = put_json(
        &app,
        &app.base,
        &alice,
        "/api/v1/statuses/123456789",
        json!({"status": "ghost"}),
    )
    .await;
    assert_eq!(code, 404);
    // Nothing of that changed the post.
    let now = app.get(&alice.token, &path).await;
    assert!(text_of(&now).contains("mine"));
    assert!(now["edited_at"].is_null());
    app.stop().await;
}

/// A post with a poll, form-encoded as Mastodon.py sends it.
async fn poll_post(
    app: &TestApp,
    user: &User,
    options: &[&str],
    expires_in: &str,
    multiple: bool,
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> =
        vec![("status", "which one?"), ("poll[expires_in]", expires_in)];
    for o in options {
        form.push(("poll[options][]", o));
    }
    if multiple {
        form.push(("poll[multiple]", "true"));
    }
    post_form(app, user, "/api/v1/statuses", &form).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_take_one_vote_per_account_and_count_concurrent_votes_exactly() {
    let mut app = spawn_app_with(|s| s.limits.poll_min_expiration_secs = 1).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut voters = Vec::new();
    for i in 0..12 {
        voters.push(app.register(&format!("voter{i}")).await);
    }
    // Advertised limits.
    let instance = app.get(&bob.token, "/api/v2/instance").await;
    assert_eq!(instance["configuration"]["polls"]["max_options"], 4);
    assert_eq!(
        instance["configuration"]["polls"]["max_characters_per_option"],
        50
    );

    let (code, status) = poll_post(&app, &alice, &["red", "green", "blue"], "600", true).await;
    assert_eq!(code, 200, "{status}");
    let poll = &status["poll"];
    let poll_id = poll["id"].as_str().unwrap().to_owned();
    assert_eq!(poll["multiple"], true);
    assert_eq!(poll["expired"], false);
    assert_eq!(poll["options"][1]["title"], "green");
    assert_eq!(poll["votes_count"], 0);
    let votes = format!("/api/v1/polls/{poll_id}/votes");

    // Bob votes (form, `choices[]`); the answer and every read show his vote.
    let (code, voted) = post_form(
        &app,
        &bob,
        &votes,
        &[("choices[]", "0"), ("choices[]", "2")],
    )
    .await;
    assert_eq!(code, 200, "{voted}");
    assert_eq!(voted["voted"], true);
    assert_eq!(voted["own_votes"], json!([0, 2]));
    assert_eq!(voted["votes_count"], 2);
    assert_eq!(voted["voters_count"], 1);
    let seen = app
        .get(
            &bob.token,
            &format!("/api/v1/statuses/{}", status["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(seen["poll"]["own_votes"], json!([0, 2]));
    assert_eq!(seen["poll"]["options"][2]["votes_count"], 1);

    // Twice, one's own, a choice that is not there, no choice: 422 each, nothing counted.
    for (who, choices) in [
        (&bob, vec!["1"]),
        (&alice, vec!["1"]),
        (&voters[0], vec!["7"]),
        (&voters[0], vec![]),
    ] {
        let form: Vec<(&str, &str)> = choices.iter().map(|c| ("choices[]", *c)).collect();
        let (code, body) = post_form(&app, who, &votes, &form).await;
        assert_eq!(code, 422, "{body}");
        assert!(body["error"].is_string());
    }

    // Twelve voters at once, each tapping twice: each counts once.
    let mut tasks = Vec::new();
    for v in &voters {
        for _ in 0..2 {
            let http = app.http.clone();
            let url = format!("{}{votes}", app.base);
            let token = v.token.clone();
            tasks.push(tokio::spawn(async move {
                http.post(url)
                    .bearer_auth(token)
                    .json(&json!({"choices": [1]}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 12, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 422).count(), 12, "{codes:?}");
    let result = app
        .get(&alice.token, &format!("/api/v1/polls/{poll_id}"))
        .await;
    assert_eq!(result["voters_count"], 13);
    assert_eq!(result["votes_count"], 14);
    assert_eq!(result["options"][0]["votes_count"], 1);
    assert_eq!(result["options"][1]["votes_count"], 12);
    assert_eq!(result["options"][2]["votes_count"], 1);

    // Bad polls: one option, five, an option too long, no end, too short.
    let long = "x".repeat(51);
    for (options, expires) in [
        (vec!["alone"], "600"),
        (vec!["a", "b", "c", "d", "e"], "600"),
        (vec!["a", long.as_str()], "600"),
        (vec!["a", "b"], "0"),
        (vec!["a", "b"], "soon"),
    ] {
        let (code, body) = poll_post(&app, &alice, &options, expires, false).await;
        assert_eq!(code, 422, "{options:?} {expires}: {body}");
        assert!(body["error"].is_string());
    }

    // An ended poll refuses votes.
    let (_, short) = poll_post(&app, &alice, &["yes", "no"], "1", false).await;
    let short_id = short["poll"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (code, body) = post_form(
        &app,
        &bob,
        &format!("/api/v1/polls/{short_id}/votes"),
        &[("choices[]", "0")],
    )
    .await;
    assert_eq!(code, 422, "{body}");
    let ended = app
        .get(&bob.token, &format!("/api/v1/polls/{short_id}"))
        .await;
    assert_eq!(ended["expired"], true);
    // An unknown poll.
    let (code, _) = post_form(
        &app,
        &bob,
        "/api/v1/polls/987654321/votes",
        &[("choices[]", "0")],
    )
    .await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_that_ends_while_the_server_is_down_is_notified_after_the_restart() {
    let tweak = |s: &mut starling_schema::settings::Settings| s.limits.poll_min_expiration_secs = 1;
    let mut app = spawn_app_with(tweak).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let (code, status) = post_json(
        &app,
        &alice,
        "/api/v1/statuses",
        json!({"status": "lunch?", "poll": {"options": ["soup", "salad"], "expires_in": 3}}),
    )
    .await;
    assert_eq!(code, 200, "{status}");
    let status_id = status["id"].as_str().unwrap().to_owned();
    let poll_id = status["poll"]["id"].as_str().unwrap().to_owned();
    let ends = Instant::now() + Duration::from_secs(3);
    for (who, choice) in [(&bob, 0), (&carol, 1)] {
        let (code, body) = post_json(
            &app,
            who,
            &format!("/api/v1/polls/{poll_id}/votes"),
            json!({"choices": [choice]}),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }

    // The server stops before the poll ends and comes back after: the store reopened, a new
    // node with every role, nothing kept in memory.
    app.node.take().expect("node").stop().await;
    tokio::time::sleep(ends.saturating_duration_since(Instant::now()) + Duration::from_millis(500))
        .await;
    let mut settings = test_settings(&app.redis, &app.nats, app.dir());
    tweak(&mut settings);
    let store = AnyStore::Embedded(
        EmbeddedStore::open(
            &settings.store.embedded,
            settings.node_id,
            settings.limits.clone(),
        )
        .expect("reopen the store"),
    );
    let node = starling::start_with_store(settings, &Role::all(), store)
        .await
        .expect("restart");
    app.base = format!("http://{}", node.addr.expect("api address"));
    app.node = Some(node);
    app.wait_ready().await;

    // Voters and author hear of it, once each; whoever did not vote hears nothing.
    for user in [&alice, &bob, &carol] {
        let note = eventually("a poll notification", Duration::from_secs(10), || async {
            let list = app
                .get(&user.token, "/api/v1/notifications?types[]=poll")
                .await;
            list.as_array()?.first().cloned()
        })
        .await;
        assert_eq!(note["type"], "poll", "{}", user.username);
        assert_eq!(note["status"]["id"], status_id.as_str());
        assert_eq!(note["status"]["poll"]["expired"], true);
        assert_eq!(note["account"]["id"], alice.id.as_str());
    }
    // A few more passes of the job change nothing.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for user in [&alice, &bob, &carol] {
        let list = app
            .get(&user.token, "/api/v1/notifications?types[]=poll")
            .await;
        assert_eq!(list.as_array().unwrap().len(), 1, "{}", user.username);
    }
    let none = app
        .get(&dave.token, "/api/v1/notifications?types[]=poll")
        .await;
    assert!(none.as_array().unwrap().is_empty());
    let result = app
        .get(&dave.token, &format!("/api/v1/polls/{poll_id}"))
        .await;
    assert_eq!(result["voters_count"], 2);
    assert_eq!(result["expired"], true);
    app.stop().await;
}
