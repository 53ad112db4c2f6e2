//! The signed-in user's own account end to end: profile edits (`update_credentials` in its
//! three body encodings, seen at once on every node and in search), locked accounts and
//! follow requests (notifications, decisions, and private posts kept from those who only
//! asked).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, User, spawn_app};
use crate::social::{act, id, until};

const WAIT: Duration = Duration::from_secs(3);

/// `PATCH update_credentials` as `user`, the body set by `body`: (status, JSON answer).
async fn patch(
    app: &TestApp,
    user: &User,
    body: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (u16, Value) {
    let req = app
        .http
        .patch(format!("{}/api/v1/accounts/update_credentials", app.base))
        .bearer_auth(&user.token);
    let res = body(req).send().await.expect("PATCH");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn patch_form(app: &TestApp, user: &User, form: &[(&str, &str)]) -> (u16, Value) {
    patch(app, user, |r| r.form(form)).await
}

async fn patch_json(app: &TestApp, user: &User, body: Value) -> (u16, Value) {
    patch(app, user, |r| r.json(&body)).await
}

/// A `multipart/form-data` body of (name, file name, content) parts.
async fn patch_multipart(
    app: &TestApp,
    user: &User,
    parts: &[(&str, Option<&str>, &str)],
) -> (u16, Value) {
    const BOUNDARY: &str = "starlingtestboundary";
    let mut body = String::new();
    for (name, file, content) in parts {
        body.push_str(&format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\""
        ));
        if let Some(file) = file {
            body.push_str(&format!("; filename=\"{file}\"\r\nContent-Type: image/png"));
        }
        body.push_str(&format!("\r\n\r\n{content}\r\n"));
    }
    body.push_str(&format!("--{BOUNDARY}--\r\n"));
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    patch(app, user, |r| {
        r.header("content-type", content_type).body(body)
    })
    .await
}

/// Post as `user` and answer the new status's id.
async fn post_id(app: &TestApp, user: &User, body: Value) -> String {
    id(&crate::social::post(app, user, body).await)
}

fn account_ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_credentials_edits_the_profile_everywhere_at_once() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (node2, base2) = app.spawn_api_node(2, |_| {}).await;
    let on_node2 = |path: String| {
        let http = app.http.clone();
        let token = bob.token.clone();
        let url = format!("{base2}{path}");
        async move {
            let res = http.get(url).bearer_auth(token).send().await.expect("GET");
            assert!(res.status().is_success());
            res.json::<Value>().await.expect("json")
        }
    };
    let alice_path = format!("/api/v1/accounts/{}", alice.id);
    // Node 2 caches Alice as she was.
    assert_eq!(on_node2(alice_path.clone()).await["display_name"], "");

    // A form body, as Mastodon.py sends it.
    let (code, me) = patch_form(
        &app,
        &alice,
        &[
            ("display_name", "Alice Liddell"),
            ("note", "Down the rabbit hole"),
            ("bot", "1"),
            ("discoverable", "false"),
            ("fields_attributes[0][name]", "site"),
            ("fields_attributes[0][value]", "https://alice.example"),
            ("fields_attributes[1][name]", "pronouns"),
            ("fields_attributes[1][value]", "she/her"),
            ("source[privacy]", "unlisted"),
            ("source[sensitive]", "true"),
            ("source[language]", "en"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["display_name"], "Alice Liddell");
    assert_eq!(me["bot"], true);
    assert_eq!(me["discoverable"], false);
    assert_eq!(me["fields"][0]["name"], "site");
    assert!(
        me["fields"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .contains("<a href=\"https://alice.example\""),
        "a link in a field is a link: {}",
        me["fields"][0]
    );
    assert_eq!(me["fields"][1]["value"], "she/her");
    assert_eq!(me["source"]["privacy"], "unlisted");
    assert_eq!(me["source"]["sensitive"], true);
    assert_eq!(me["source"]["language"], "en");
    assert_eq!(me["source"]["note"], "Down the rabbit hole");
    assert_eq!(me["source"]["fields"][0]["value"], "https://alice.example");
    assert!(
        me["note"]
            .as_str()
            .unwrap_or_default()
            .contains("rabbit hole")
    );
    let verified = app
        .get(&alice.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(verified["source"], me["source"]);

    // The other node shows the edit long before its cache would expire (60 s).
    let deadline = Instant::now() + WAIT;
    while on_node2(alice_path.clone()).await["display_name"] != "Alice Liddell" {
        assert!(Instant::now() < deadline, "node 2 still shows the old name");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Search follows the `account.updated` event.
    let found = until(&app, &bob, "/api/v2/search?q=liddell&type=accounts", |v| {
        v["accounts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == alice.id.as_str()))
    })
    .await;
    assert_eq!(found["accounts"][0]["id"], alice.id.as_str(), "{found}");

    // JSON, with fields as a list; a partial edit keeps the rest.
    let (code, me) = patch_json(
        &app,
        &alice,
        json!({"note": "", "fields_attributes": [{"name": "only", "value": "one"}],
               "source": {"language": null}}),
    )
    .await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["note"], "");
    assert_eq!(me["fields"].as_array().map(Vec::len), Some(1));
    assert_eq!(me["source"]["language"], Value::Null);
    assert_eq!(me["display_name"], "Alice Liddell");
    assert_eq!(me["source"]["privacy"], "unlisted");

    // Multipart text parts, as masto.js sends them; a file part is refused for now.
    let (code, me) = patch_multipart(
        &app,
        &alice,
        &[
            ("display_name", None, "Alice M"),
            ("source[privacy]", None, "private"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{me}");
    assert_eq!(me["display_name"], "Alice M");
    assert_eq!(me["source"]["privacy"], "private");
    // New posts take the defaults the client leaves out.
    let res = app
        .post_json(
            &alice.token,
            "/api/v1/statuses",
            json!({"status": "defaults"}),
        )
        .await;
    let st: Value = res.json().await.expect("json");
    assert_eq!(st["visibility"], "private", "{st}");
    assert_eq!(st["sensitive"], true);
    let res = app
        .post_json(
            &alice.token,
            "/api/v1/statuses",
            json!({"status": "chosen", "visibility": "public", "sensitive": false, "language": "fr"}),
        )
        .await;
    let st: Value = res.json().await.expect("json");
    assert_eq!(
        (
            st["visibility"].clone(),
            st["sensitive"].clone(),
            st["language"].clone()
        ),
        (json!("public"), json!(false), json!("fr"))
    );
    let (code, _) = patch_multipart(&app, &alice, &[("avatar", Some("a.png"), "PNG")]).await;
    assert_eq!(code, 415);

    // Bad input: a clear 422 (or 401) and nothing changed.
    let long_name = "x".repeat(31);
    let long_note = "y".repeat(501);
    let long_value = "z".repeat(256);
    for bad in [
        vec![("display_name", long_name.as_str())],
        vec![("note", long_note.as_str())],
        vec![("source[privacy]", "direct")],
        vec![("source[privacy]", "everyone")],
        vec![("source[language]", "klingon")],
        vec![("locked", "maybe")],
        vec![
            ("fields_attributes[0][name]", "n"),
            ("fields_attributes[0][value]", long_value.as_str()),
        ],
        vec![
            ("fields_attributes[0][name]", "a"),
            ("fields_attributes[1][name]", "b"),
            ("fields_attributes[2][name]", "c"),
            ("fields_attributes[3][name]", "d"),
            ("fields_attributes[4][name]", "e"),
        ],
    ] {
        let (code, body) = patch_form(&app, &alice, &bad).await;
        assert_eq!(code, 422, "{bad:?}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (code, _) = patch_json(&app, &alice, json!(["not", "an", "object"])).await;
    assert_eq!(code, 422);
    let res = app
        .http
        .patch(format!("{}/api/v1/accounts/update_credentials", app.base))
        .form(&[("display_name", "anonymous")])
        .send()
        .await
        .expect("PATCH");
    assert_eq!(res.status().as_u16(), 401);
    let me = app
        .get(&alice.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(
        me["display_name"], "Alice M",
        "refused edits change nothing"
    );
    node2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locked_accounts_take_followers_by_request_and_keep_private_posts_private() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let (code, me) = patch_form(&app, &alice, &[("locked", "true")]).await;
    assert_eq!((code, me["locked"].clone()), (200, json!(true)));
    let before = post_id(
        &app,
        &alice,
        json!({"status": "for followers only", "visibility": "private"}),
    )
    .await;

    // Bob asks; he does not follow yet.
    let (code, rel) = act(&app, &bob, &format!("/api/v1/accounts/{}/follow", alice.id)).await;
    assert_eq!(code, 200);
    assert_eq!(
        (rel["requested"].clone(), rel["following"].clone()),
        (json!(true), json!(false))
    );
    let (_, rel) = act(&app, &bob, &format!("/api/v1/accounts/{}/follow", alice.id)).await;
    assert_eq!(rel["requested"], true, "asking again changes nothing");
    let notes = until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array().is_some_and(|n| !n.is_empty())
    })
    .await;
    assert_eq!(notes[0]["type"], "follow_request", "{notes}");
    assert_eq!(notes[0]["account"]["id"], bob.id.as_str());
    let waiting = app.get(&alice.token, "/api/v1/follow_requests").await;
    assert_eq!(account_ids(&waiting), vec![bob.id.clone()]);
    let me = app
        .get(&alice.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(me["source"]["follow_requests_count"], 1);

    // While he waits, private posts stay out of his reach: fan-out, reads and rebuilds.
    let during = post_id(
        &app,
        &alice,
        json!({"status": "still private", "visibility": "private"}),
    )
    .await;
    let (seen, _) = app
        .home_until(&alice, WAIT, |ids| ids.contains(&during))
        .await;
    assert!(seen, "the author's own home has it");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let home = app.home_ids(&bob, "?limit=40").await;
    assert!(
        !home.contains(&during) && !home.contains(&before),
        "{home:?}"
    );
    for id in [&before, &during] {
        let res = app
            .get_raw(&bob.token, &format!("/api/v1/statuses/{id}"))
            .await;
        assert_eq!(res.status().as_u16(), 404, "a request is not a follow");
    }
    let listed = app
        .get(
            &bob.token,
            &format!("/api/v1/accounts/{}/statuses", alice.id),
        )
        .await;
    assert!(listed.as_array().is_some_and(Vec::is_empty), "{listed}");
    let bob_id: starling_schema::Id = bob.id.parse().expect("id");
    app.node().timelines.clear(bob_id).await.expect("clear");
    let rebuilt = app.home_ids(&bob, "?limit=40").await;
    assert!(!rebuilt.contains(&during) && !rebuilt.contains(&before));

    // Deciding what is not there is a 404; only the account asked decides.
    let (code, body) = act(
        &app,
        &carol,
        &format!("/api/v1/follow_requests/{}/authorize", bob.id),
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"].is_string());
    let (code, _) = act(&app, &alice, "/api/v1/follow_requests/123/authorize").await;
    assert_eq!(code, 404);
    let (code, _) = act(&app, &alice, "/api/v1/follow_requests/nonsense/reject").await;
    assert_eq!(code, 404);

    // Authorized: he follows, and the private posts reach him.
    let (code, rel) = act(
        &app,
        &alice,
        &format!("/api/v1/follow_requests/{}/authorize", bob.id),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(rel["followed_by"], true);
    let (merged, home) = app
        .home_until(&bob, WAIT, |ids| {
            ids.contains(&before) && ids.contains(&during)
        })
        .await;
    assert!(merged, "accepted: the private posts merge in: {home:?}");
    let res = app
        .get_raw(&bob.token, &format!("/api/v1/statuses/{before}"))
        .await;
    assert_eq!(res.status().as_u16(), 200);
    let (code, _) = act(
        &app,
        &alice,
        &format!("/api/v1/follow_requests/{}/reject", bob.id),
    )
    .await;
    assert_eq!(code, 404, "decided already");

    // Two decisions at once on Carol's request: exactly one applies.
    act(
        &app,
        &carol,
        &format!("/api/v1/accounts/{}/follow", alice.id),
    )
    .await;
    let authorize = format!("/api/v1/follow_requests/{}/authorize", carol.id);
    let reject = format!("/api/v1/follow_requests/{}/reject", carol.id);
    let (a, r) = tokio::join!(act(&app, &alice, &authorize), act(&app, &alice, &reject));
    let mut codes = [a.0, r.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 404]);
    let rel = app
        .get(
            &carol.token,
            &format!("/api/v1/accounts/relationships?id[]={}", alice.id),
        )
        .await;
    assert_eq!(rel[0]["following"], json!(a.0 == 200));
    assert_eq!(rel[0]["requested"], false);

    // Unlocking takes whoever still waits.
    act(
        &app,
        &dave,
        &format!("/api/v1/accounts/{}/follow", alice.id),
    )
    .await;
    let (code, _) = patch_json(&app, &alice, json!({"locked": false})).await;
    assert_eq!(code, 200);
    let rel = app
        .get(
            &dave.token,
            &format!("/api/v1/accounts/relationships?id[]={}", alice.id),
        )
        .await;
    assert_eq!(
        (rel[0]["following"].clone(), rel[0]["requested"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        app.get(&alice.token, "/api/v1/follow_requests")
            .await
            .as_array()
            .is_some_and(Vec::is_empty)
    );
}

/// The notifications of `user`, as (type, account id, status id) triples.
async fn notes_of(app: &TestApp, user: &User) -> Vec<(String, String, String)> {
    let v = app.get(&user.token, "/api/v1/notifications?limit=40").await;
    v.as_array()
        .expect("array")
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap_or_default().to_owned(),
                n["account"]["id"].as_str().unwrap_or_default().to_owned(),
                n["status"]["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_thread_notifies_no_more() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let root = post_id(&app, &alice, json!({"status": "a thread starts"})).await;
    let reply = post_id(
        &app,
        &bob,
        json!({"status": "@alice a reply", "in_reply_to_id": root}),
    )
    .await;
    let heard = until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array().is_some_and(|n| !n.is_empty())
    })
    .await;
    assert_eq!(heard[0]["type"], "mention");

    // Muting any post of the thread mutes all of it.
    let (code, st) = act(&app, &alice, &format!("/api/v1/statuses/{reply}/mute")).await;
    assert_eq!(code, 200, "{st}");
    assert_eq!(st["muted"], true);
    let shown = app
        .get(&alice.token, &format!("/api/v1/statuses/{root}"))
        .await;
    assert_eq!(shown["muted"], true, "the root is muted too");
    let other_view = app
        .get(&bob.token, &format!("/api/v1/statuses/{root}"))
        .await;
    assert_eq!(other_view["muted"], false, "a mute is the muter's own");

    // Carol mentions her deeper in the thread and favourites the root: nothing comes. Dave's
    // mention elsewhere, made after, shows the worker got that far.
    let deeper = post_id(
        &app,
        &carol,
        json!({"status": "@alice deeper", "in_reply_to_id": reply}),
    )
    .await;
    act(&app, &carol, &format!("/api/v1/statuses/{root}/favourite")).await;
    post_id(&app, &dave, json!({"status": "@alice elsewhere"})).await;
    until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array()
            .is_some_and(|n| n.iter().any(|x| x["account"]["id"] == dave.id.as_str()))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let notes = notes_of(&app, &alice).await;
    assert!(
        !notes.iter().any(|(_, from, _)| *from == carol.id),
        "nothing from the muted thread: {notes:?}"
    );

    // Unmuted, the thread speaks again.
    let (code, st) = act(&app, &alice, &format!("/api/v1/statuses/{root}/unmute")).await;
    assert_eq!((code, st["muted"].clone()), (200, json!(false)));
    let again = post_id(
        &app,
        &carol,
        json!({"status": "@alice once more", "in_reply_to_id": deeper}),
    )
    .await;
    let notes = until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array()
            .is_some_and(|n| n.iter().any(|x| x["status"]["id"] == again.as_str()))
    })
    .await;
    assert!(
        notes
            .as_array()
            .is_some_and(|n| n.iter().any(|x| x["status"]["id"] == again.as_str())),
        "{notes}"
    );

    // Bad input: an unknown status, one not visible to the muter.
    let (code, body) = act(&app, &alice, "/api/v1/statuses/12345/mute").await;
    assert_eq!(code, 404, "{body}");
    let hidden = post_id(
        &app,
        &bob,
        json!({"status": "for my followers", "visibility": "private"}),
    )
    .await;
    let (code, _) = act(&app, &alice, &format!("/api/v1/statuses/{hidden}/mute")).await;
    assert_eq!(code, 404);
}
