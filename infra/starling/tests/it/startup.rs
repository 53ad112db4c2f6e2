//! The start-up endpoints end to end: preferences, custom emojis, announcements, read
//! markers, grouped notifications and unread counts, and content filters applied in home,
//! public, notifications and the user stream.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use starling_schema::startup::NewAnnouncement;
use starling_store::Store;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, User, spawn_app};

const WAIT: Duration = Duration::from_secs(5);

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    user: &User,
    path: &str,
    body: Option<Value>,
    form: Option<&str>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(&user.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    if let Some(f) = form {
        req = req
            .header("content-type", "application/x-www-form-urlencoded")
            .body(f.to_owned());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_to(app: &TestApp, user: &User, path: &str, body: Value) -> (u16, Value) {
    send(app, reqwest::Method::POST, user, path, Some(body), None).await
}

async fn post_form(app: &TestApp, user: &User, path: &str, form: &str) -> (u16, Value) {
    send(app, reqwest::Method::POST, user, path, None, Some(form)).await
}

async fn get(app: &TestApp, user: &User, path: &str) -> (u16, Value) {
    send(app, reqwest::Method::GET, user, path, None, None).await
}

fn is_error(status: u16, body: &Value, want: u16) {
    assert_eq!(status, want, "{body}");
    assert!(body["error"].is_string(), "an error body: {body}");
}

fn sid(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn say(app: &TestApp, user: &User, text: &str) -> String {
    let (status, v) = post_to(app, user, "/api/v1/statuses", json!({ "status": text })).await;
    assert_eq!(status, 200, "{v}");
    sid(&v)
}

/// Poll `path` until `pred` holds on the JSON, or the wait is over.
async fn until(app: &TestApp, user: &User, path: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, v) = get(app, user, path).await;
        if pred(&v) || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(sid).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_emojis_and_announcements_answer_apps_at_start_up() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;

    let (status, prefs) = get(&app, &alice, "/api/v1/preferences").await;
    assert_eq!(status, 200);
    assert_eq!(prefs["posting:default:visibility"], "public");
    assert_eq!(prefs["posting:default:sensitive"], false);
    assert!(prefs["posting:default:language"].is_null());
    assert_eq!(prefs["reading:expand:media"], "default");
    assert_eq!(prefs["reading:expand:spoilers"], false);
    let anon = app
        .http
        .get(format!("{}/api/v1/preferences", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status().as_u16(), 401);

    let (status, emojis) = get(&app, &alice, "/api/v1/custom_emojis").await;
    assert_eq!((status, emojis), (200, json!([])));

    let (_, none) = get(&app, &alice, "/api/v1/announcements").await;
    assert_eq!(none, json!([]));
    let store = &app.node().store;
    let a = store
        .create_announcement(NewAnnouncement {
            text: "Maintenance at <noon>".into(),
            starts_at_ms: None,
            ends_at_ms: None,
            all_day: false,
        })
        .await
        .unwrap();
    store
        .create_announcement(NewAnnouncement {
            text: "long over".into(),
            starts_at_ms: Some(1_000),
            ends_at_ms: Some(2_000),
            all_day: true,
        })
        .await
        .unwrap();
    let (_, list) = get(&app, &alice, "/api/v1/announcements").await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "ended ones are not shown: {list}"
    );
    assert_eq!(list[0]["id"], a.id.to_string());
    assert_eq!(list[0]["content"], "<p>Maintenance at &lt;noon&gt;</p>");
    assert_eq!(list[0]["read"], false);
    assert_eq!(list[0]["reactions"], json!([]));

    let path = format!("/api/v1/announcements/{}/dismiss", a.id);
    assert_eq!(post_to(&app, &alice, &path, json!({})).await.0, 200);
    let (_, list) = get(&app, &alice, "/api/v1/announcements").await;
    assert_eq!(list[0]["read"], true);
    let (_, theirs) = get(&app, &bob, "/api/v1/announcements").await;
    assert_eq!(theirs[0]["read"], false, "dismissal is per user");
    let (status, body) =
        post_to(&app, &alice, "/api/v1/announcements/123/dismiss", json!({})).await;
    is_error(status, &body, 404);
    let (status, body) = post_to(&app, &alice, "/api/v1/announcements/x/dismiss", json!({})).await;
    is_error(status, &body, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_keep_the_last_read_id_per_user_and_count_versions() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let both = "/api/v1/markers?timeline[]=home&timeline[]=notifications";

    assert_eq!(get(&app, &alice, both).await, (200, json!({})));
    let (status, m) = post_form(&app, &alice, "/api/v1/markers", "home[last_read_id]=1000").await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["home"]["last_read_id"], "1000");
    assert_eq!(m["home"]["version"], 1);
    assert!(m["home"]["updated_at"].as_str().unwrap().ends_with('Z'));
    assert!(m.get("notifications").is_none());

    let (status, m) = post_to(
        &app,
        &alice,
        "/api/v1/markers",
        json!({"home": {"last_read_id": "2000"}, "notifications": {"last_read_id": 77}}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (
            m["home"]["version"].clone(),
            m["home"]["last_read_id"].clone()
        ),
        (json!(2), json!("2000"))
    );
    assert_eq!(m["notifications"]["version"], 1);

    let (_, all) = get(&app, &alice, both).await;
    assert_eq!(all["home"]["last_read_id"], "2000");
    assert_eq!(all["home"]["version"], 2);
    assert_eq!(all["notifications"]["last_read_id"], "77");
    let (_, only) = get(&app, &alice, "/api/v1/markers?timeline[]=notifications").await;
    assert!(only.get("home").is_none() && only.get("notifications").is_some());
    assert_eq!(
        get(&app, &bob, both).await,
        (200, json!({})),
        "markers are per user"
    );

    // Bad input: 422 with a JSON error, and nothing changes.
    for (status, body) in [
        get(
            &app,
            &alice,
            "/api/v1/markers?timeline[]=home&timeline[]=bogus",
        )
        .await,
        post_form(&app, &alice, "/api/v1/markers", "bogus[last_read_id]=5").await,
        post_form(&app, &alice, "/api/v1/markers", "home[last_read_id]=abc").await,
        post_form(&app, &alice, "/api/v1/markers", "home[other]=1").await,
        post_form(&app, &alice, "/api/v1/markers", "").await,
        post_form(&app, &alice, "/api/v1/markers", "home[last_read_id=1").await,
    ] {
        is_error(status, &body, 422);
    }
    let (_, after) = get(&app, &alice, both).await;
    assert_eq!(after["home"]["version"], 2);
    app.stop().await;
}

/// Wait until `user` has `n` notifications (the fan-out worker makes them).
async fn notified(app: &TestApp, user: &User, n: usize) -> Vec<Value> {
    let v = until(app, user, "/api/v1/notifications?limit=80", |v| {
        v.as_array().is_some_and(|a| a.len() >= n)
    })
    .await;
    let all = v.as_array().unwrap().clone();
    assert_eq!(all.len(), n, "notifications: {v}");
    all
}

fn group<'a>(body: &'a Value, kind: &str) -> Vec<&'a Value> {
    body["notification_groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["type"] == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_notifications_group_favourites_and_follows_but_never_mentions() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let fans = [
        app.register("bob").await,
        app.register("carol").await,
        app.register("dave").await,
    ];
    let post = say(&app, &alice, "a post to like").await;
    for f in &fans {
        let (s, _) = post_to(
            &app,
            f,
            &format!("/api/v1/statuses/{post}/favourite"),
            json!({}),
        )
        .await;
        assert_eq!(s, 200);
    }
    app.follow(&fans[0], &alice).await;
    app.follow(&fans[1], &alice).await;
    say(&app, &fans[0], "@alice hello").await;
    say(&app, &fans[1], "@alice hi there").await;
    let v1 = notified(&app, &alice, 7).await;
    let newest = sid(&v1[0]);

    let res = app.get_raw(&alice.token, "/api/v2/notifications").await;
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().await.unwrap();
    let groups = body["notification_groups"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        4,
        "one favourite group, one follow group, two mentions: {body}"
    );
    let fav = group(&body, "favourite");
    assert_eq!(fav.len(), 1);
    assert_eq!(fav[0]["notifications_count"], 3);
    assert_eq!(fav[0]["status_id"], post);
    assert!(
        fav[0]["group_key"]
            .as_str()
            .unwrap()
            .starts_with(&format!("favourite-{post}-"))
    );
    let mut samples: Vec<String> = fav[0]["sample_account_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    samples.sort();
    let mut fan_ids: Vec<String> = fans.iter().map(|f| f.id.clone()).collect();
    fan_ids.sort();
    assert_eq!(samples, fan_ids);
    for key in [
        "most_recent_notification_id",
        "page_min_id",
        "page_max_id",
        "latest_page_notification_at",
    ] {
        assert!(fav[0][key].is_string(), "{key} in {}", fav[0]);
    }
    let follows = group(&body, "follow");
    assert_eq!(follows.len(), 1);
    assert_eq!(follows[0]["notifications_count"], 2);
    assert!(follows[0].get("status_id").is_none_or(Value::is_null));
    let mentions = group(&body, "mention");
    assert_eq!(mentions.len(), 2, "mentions never group");
    for m in &mentions {
        assert_eq!(m["notifications_count"], 1);
        assert!(m["group_key"].as_str().unwrap().starts_with("ungrouped-"));
    }
    assert_eq!(
        groups[0]["most_recent_notification_id"], newest,
        "newest group first"
    );
    let account_ids: Vec<String> = body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(sid)
        .collect();
    for f in &fan_ids {
        assert!(account_ids.contains(f), "{f} in the accounts side list");
    }
    assert_eq!(account_ids.len(), 3, "each account once");
    let statuses = ids(&body["statuses"]);
    assert!(statuses.contains(&post));

    // grouped_types[] narrows what groups; exclude_types[] and types[] select.
    let (_, only_favs) = get(
        &app,
        &alice,
        "/api/v2/notifications?grouped_types[]=favourite",
    )
    .await;
    assert_eq!(
        group(&only_favs, "follow").len(),
        2,
        "follows ungrouped now"
    );
    assert_eq!(group(&only_favs, "favourite").len(), 1);
    let (_, no_mentions) = get(
        &app,
        &alice,
        "/api/v2/notifications?exclude_types[]=mention",
    )
    .await;
    assert_eq!(
        no_mentions["notification_groups"].as_array().unwrap().len(),
        2
    );
    let (_, follows_only) = get(&app, &alice, "/api/v2/notifications?types[]=follow").await;
    assert_eq!(
        follows_only["notification_groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Cursors: a page of one group, then the rest through the Link header.
    let res = app
        .get_raw(&alice.token, "/api/v2/notifications?limit=1")
        .await;
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["notification_groups"].as_array().unwrap().len(), 1);
    let next = link.split(['<', '>']).nth(1).unwrap().to_owned();
    assert!(
        link.find("rel=\"next\"") < link.find("rel=\"prev\""),
        "next first: {link}"
    );
    let rest: Value = app
        .get_raw(&alice.token, &next.replace("limit=1", "limit=10"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        rest["notification_groups"].as_array().unwrap().len(),
        3,
        "{rest}"
    );

    // One group by its key; unread counts relative to the marker.
    let key = fav[0]["group_key"].as_str().unwrap().to_owned();
    let (status, one) = get(&app, &alice, &format!("/api/v2/notifications/{key}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["notification_groups"][0]["notifications_count"], 3);
    assert_eq!(
        get(&app, &alice, "/api/v1/notifications/unread_count")
            .await
            .1,
        json!({"count": 7})
    );
    assert_eq!(
        get(&app, &alice, "/api/v2/notifications/unread_count")
            .await
            .1,
        json!({"count": 4})
    );
    assert_eq!(
        get(&app, &alice, "/api/v1/notifications/unread_count?limit=5")
            .await
            .1,
        json!({"count": 5})
    );
    let oldest_mention = mentions[1]["most_recent_notification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    post_to(
        &app,
        &alice,
        "/api/v1/markers",
        json!({"notifications": {"last_read_id": oldest_mention}}),
    )
    .await;
    assert_eq!(
        get(&app, &alice, "/api/v1/notifications/unread_count")
            .await
            .1,
        json!({"count": 1})
    );
    post_to(
        &app,
        &alice,
        "/api/v1/markers",
        json!({"notifications": {"last_read_id": newest}}),
    )
    .await;
    assert_eq!(
        get(&app, &alice, "/api/v2/notifications/unread_count")
            .await
            .1,
        json!({"count": 0})
    );

    // Dismissing a group removes all of it.
    let (status, _) = post_to(
        &app,
        &alice,
        &format!("/api/v2/notifications/{key}/dismiss"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, after) = get(&app, &alice, "/api/v2/notifications").await;
    assert!(group(&after, "favourite").is_empty());
    assert_eq!(notified(&app, &alice, 4).await.len(), 4);

    // Bad input.
    for path in [
        "/api/v2/notifications/nonsense",
        "/api/v2/notifications/favourite-1-13",
        "/api/v2/notifications/ungrouped-12345",
    ] {
        let (status, body) = get(&app, &alice, path).await;
        is_error(status, &body, 404);
    }
    let (status, body) = get(&app, &alice, "/api/v2/notifications?max_id=abc").await;
    is_error(status, &body, 422);
    let (status, body) = get(&app, &alice, "/api/v1/notifications/unread_count?limit=x").await;
    is_error(status, &body, 422);
    app.stop().await;
}

async fn make_filter(app: &TestApp, user: &User, body: Value) -> Value {
    let (status, f) = post_to(app, user, "/api/v2/filters", body).await;
    assert_eq!(status, 200, "{f}");
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_hide_and_warn_in_home_public_notifications_and_the_user_stream() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&alice, &bob).await;
    make_filter(
        &app,
        &alice,
        json!({"title": "no spoilers", "context": ["home", "public", "notifications"],
               "filter_action": "hide",
               "keywords_attributes": [{"keyword": "spoiler", "whole_word": true}]}),
    )
    .await;
    let warn = make_filter(
        &app,
        &alice,
        json!({"title": "finales", "context": ["home", "public", "notifications"],
               "filter_action": "warn",
               "keywords_attributes": [{"keyword": "finale", "whole_word": true}]}),
    )
    .await;

    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/streaming?stream=user&access_token={}",
        app.base.replacen("http", "ws", 1),
        alice.token
    ))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let hidden = say(&app, &bob, "a big SPOILER here").await;
    let warned = say(&app, &bob, "the Finale was great").await;
    let plain = say(&app, &bob, "the finales were great").await;
    let hidden_mention = say(&app, &bob, "@alice spoiler inside").await;
    let warned_mention = say(&app, &bob, "@alice about the finale").await;

    // Home: the hidden post never shows; the warned one carries its filter result.
    let home = until(&app, &alice, "/api/v1/timelines/home?limit=40", |v| {
        ids(v).contains(&warned_mention)
    })
    .await;
    let home_ids = ids(&home);
    assert!(
        home_ids.contains(&plain) && home_ids.contains(&warned),
        "{home_ids:?}"
    );
    assert!(!home_ids.contains(&hidden) && !home_ids.contains(&hidden_mention));
    let w = home
        .as_array()
        .unwrap()
        .iter()
        .find(|s| sid(s) == warned)
        .unwrap();
    let filtered = w["filtered"].as_array().unwrap();
    assert_eq!(filtered.len(), 1, "{w}");
    assert_eq!(filtered[0]["filter"]["id"], warn["id"]);
    assert_eq!(filtered[0]["filter"]["filter_action"], "warn");
    assert_eq!(filtered[0]["keyword_matches"], json!(["finale"]));
    let p = home
        .as_array()
        .unwrap()
        .iter()
        .find(|s| sid(s) == plain)
        .unwrap();
    assert_eq!(
        p["filtered"],
        json!([]),
        "whole word: 'finales' does not match"
    );

    // Public: the same filters (context public); bob sees everything.
    let (_, public) = get(&app, &alice, "/api/v1/timelines/public?limit=40").await;
    let public_ids = ids(&public);
    assert!(public_ids.contains(&warned) && !public_ids.contains(&hidden));
    let (_, bobs) = get(&app, &bob, "/api/v1/timelines/public?limit=40").await;
    assert!(ids(&bobs).contains(&hidden), "filters are the viewer's own");

    // Notifications v1 and v2: the hidden mention is gone, the warned one is marked.
    let notes = until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let notes = notes.as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["status"]["id"], warned_mention);
    assert_eq!(
        notes[0]["status"]["filtered"][0]["filter"]["title"],
        "finales"
    );
    let (_, v2) = get(&app, &alice, "/api/v2/notifications").await;
    assert_eq!(
        v2["notification_groups"].as_array().unwrap().len(),
        1,
        "{v2}"
    );
    assert_eq!(
        v2["statuses"][0]["filtered"][0]["keyword_matches"],
        json!(["finale"])
    );

    // The user stream: the three visible updates, without the hidden ones. Fan-out applies
    // several events at once, so they may arrive in any order; ids order them by posting.
    let mut updates: Vec<Value> = Vec::new();
    // Generous: the loop ends as soon as the three arrive, and a busy machine delays fan-out.
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    while updates.len() < 3 {
        let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, ws.next()).await else {
            break;
        };
        if let Message::Text(text) = msg {
            let event: Value = serde_json::from_str(&text).unwrap();
            if event["event"] == "update" {
                updates.push(serde_json::from_str(event["payload"].as_str().unwrap()).unwrap());
            }
        }
    }
    updates.sort_by_key(|u| sid(u).parse::<u64>().unwrap());
    let streamed: Vec<String> = updates.iter().map(sid).collect();
    assert_eq!(
        streamed,
        vec![warned.clone(), plain.clone(), warned_mention.clone()]
    );
    assert_eq!(updates[0]["filtered"][0]["filter"]["title"], "finales");
    assert_eq!(updates[1]["filtered"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_filters_never_apply() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let f = make_filter(
        &app,
        &alice,
        json!({"title": "cats", "context": ["home"], "filter_action": "hide",
               "keywords_attributes": [{"keyword": "cat", "whole_word": false}]}),
    )
    .await;
    let post = say(&app, &alice, "my cat sleeps").await;
    let marker = say(&app, &alice, "a later post").await;
    let home = until(&app, &alice, "/api/v1/timelines/home", |v| {
        ids(v).contains(&marker)
    })
    .await;
    assert!(!ids(&home).contains(&post), "hidden while the filter lasts");

    let path = format!("/api/v2/filters/{}", sid(&f));
    let (status, updated) = send(
        &app,
        reqwest::Method::PUT,
        &alice,
        &path,
        None,
        Some("expires_in=1"),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert!(updated["expires_at"].is_string());
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let (_, home) = get(&app, &alice, "/api/v1/timelines/home").await;
    assert!(
        ids(&home).contains(&post),
        "an expired filter hides nothing"
    );
    // Still listed, as on Mastodon; clearing the expiry makes it apply again.
    let (_, listed) = get(&app, &alice, "/api/v2/filters").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    send(
        &app,
        reqwest::Method::PUT,
        &alice,
        &path,
        None,
        Some("expires_in="),
    )
    .await;
    let (_, home) = get(&app, &alice, "/api/v1/timelines/home").await;
    assert!(!ids(&home).contains(&post));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_v2_crud_the_v1_view_and_bad_input() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    // Form-encoded, as Mastodon.py sends it.
    let (status, f) = post_form(
        &app,
        &alice,
        "/api/v2/filters",
        "title=Sports&context[]=home&context[]=thread&filter_action=warn\
         &keywords_attributes[][keyword]=football&keywords_attributes[][whole_word]=false\
         &keywords_attributes[][keyword]=cricket",
    )
    .await;
    assert_eq!(status, 200, "{f}");
    let fid = sid(&f);
    assert_eq!(f["title"], "Sports");
    assert_eq!(f["context"], json!(["home", "thread"]));
    assert!(f["expires_at"].is_null());
    let kws = f["keywords"].as_array().unwrap();
    assert_eq!(
        (kws[0]["keyword"].clone(), kws[0]["whole_word"].clone()),
        (json!("football"), json!(false))
    );
    assert_eq!(kws[1]["whole_word"], true, "whole_word defaults to true");
    let (football, cricket) = (sid(&kws[0]), sid(&kws[1]));

    // Update: rename, change one keyword, drop another, add one.
    let (status, f) = send(
        &app,
        reqwest::Method::PUT,
        &alice,
        &format!("/api/v2/filters/{fid}"),
        Some(json!({"title": "Ball games", "filter_action": "hide",
                    "keywords_attributes": [
                        {"id": football, "whole_word": true},
                        {"id": cricket, "_destroy": true},
                        {"keyword": "rugby"}]})),
        None,
    )
    .await;
    assert_eq!(status, 200, "{f}");
    assert_eq!(f["filter_action"], "hide");
    let words: Vec<&str> = f["keywords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["keyword"].as_str().unwrap())
        .collect();
    assert_eq!(words, vec!["football", "rugby"]);

    // Nested keyword and status routes.
    let (status, k) = post_form(
        &app,
        &alice,
        &format!("/api/v2/filters/{fid}/keywords"),
        "keyword=tennis&whole_word=0",
    )
    .await;
    assert_eq!(status, 200, "{k}");
    assert_eq!(k["whole_word"], false);
    let (_, listed) = get(&app, &alice, &format!("/api/v2/filters/{fid}/keywords")).await;
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let kpath = format!("/api/v2/filter_keywords/{}", sid(&k));
    let (_, k2) = send(
        &app,
        reqwest::Method::PUT,
        &alice,
        &kpath,
        Some(json!({"keyword": "padel"})),
        None,
    )
    .await;
    assert_eq!(k2["keyword"], "padel");
    assert_eq!(get(&app, &alice, &kpath).await.1["keyword"], "padel");
    assert_eq!(
        send(&app, reqwest::Method::DELETE, &alice, &kpath, None, None)
            .await
            .0,
        200
    );
    assert_eq!(get(&app, &alice, &kpath).await.0, 404);

    let post = say(&app, &bob, "some status").await;
    let (status, fs) = post_to(
        &app,
        &alice,
        &format!("/api/v2/filters/{fid}/statuses"),
        json!({"status_id": post}),
    )
    .await;
    assert_eq!(status, 200, "{fs}");
    assert_eq!(fs["status_id"], post);
    let (status, body) = post_to(
        &app,
        &alice,
        &format!("/api/v2/filters/{fid}/statuses"),
        json!({"status_id": post}),
    )
    .await;
    is_error(status, &body, 422);
    let spath = format!("/api/v2/filter_statuses/{}", sid(&fs));
    assert_eq!(get(&app, &alice, &spath).await.1["status_id"], post);
    assert_eq!(
        get(&app, &alice, &format!("/api/v2/filters/{fid}/statuses"))
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        send(&app, reqwest::Method::DELETE, &alice, &spath, None, None)
            .await
            .0,
        200
    );

    // The v1 view: each keyword is a filter; v1 writes land in v2.
    let (_, v1) = get(&app, &alice, "/api/v1/filters").await;
    let phrases: Vec<&str> = v1
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["phrase"].as_str().unwrap())
        .collect();
    assert_eq!(phrases, vec!["football", "rugby"]);
    assert_eq!(v1[0]["irreversible"], true);
    let (status, made) = post_form(
        &app,
        &alice,
        "/api/v1/filters",
        "phrase=weather&context[]=public&irreversible=false&whole_word=true",
    )
    .await;
    assert_eq!(status, 200, "{made}");
    assert_eq!(made["phrase"], "weather");
    let (_, v2) = get(&app, &alice, "/api/v2/filters").await;
    assert_eq!(v2.as_array().unwrap().len(), 2);
    let v1path = format!("/api/v1/filters/{}", sid(&made));
    let (_, changed) = send(
        &app,
        reqwest::Method::PUT,
        &alice,
        &v1path,
        None,
        Some("phrase=rain&context[]=home"),
    )
    .await;
    assert_eq!(
        (changed["phrase"].clone(), changed["context"].clone()),
        (json!("rain"), json!(["home"]))
    );
    assert_eq!(
        send(&app, reqwest::Method::DELETE, &alice, &v1path, None, None)
            .await
            .0,
        200
    );
    assert_eq!(
        get(&app, &alice, "/api/v2/filters")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1,
        "its filter went with its only keyword"
    );

    // Someone else's filter is not found; bad input is a 4xx JSON error.
    let (status, body) = get(&app, &bob, &format!("/api/v2/filters/{fid}")).await;
    is_error(status, &body, 404);
    let (status, body) = send(
        &app,
        reqwest::Method::DELETE,
        &bob,
        &format!("/api/v2/filters/{fid}"),
        None,
        None,
    )
    .await;
    is_error(status, &body, 404);
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"keyword": format!("k{i}")}))
        .collect();
    for (status, body) in [
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"title": "x", "context": ["bogus"]}),
        )
        .await,
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"context": ["home"]}),
        )
        .await,
        post_to(&app, &alice, "/api/v2/filters", json!({"title": "x"})).await,
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"title": "x", "context": ["home"], "filter_action": "explode"}),
        )
        .await,
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"title": "x", "context": ["home"], "expires_in": "soon"}),
        )
        .await,
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"title": "x", "context": ["home"], "keywords_attributes": many}),
        )
        .await,
        post_to(
            &app,
            &alice,
            "/api/v2/filters",
            json!({"title": "x", "context": ["home"], "keywords_attributes": [{"keyword": " "}]}),
        )
        .await,
        post_to(
            &app,
            &alice,
            "/api/v1/filters",
            json!({"context": ["home"]}),
        )
        .await,
        post_to(
            &app,
            &alice,
            &format!("/api/v2/filters/{fid}/statuses"),
            json!({"status_id": "abc"}),
        )
        .await,
    ] {
        is_error(status, &body, 422);
    }
    for path in [
        "/api/v2/filters/999",
        "/api/v2/filters/abc",
        "/api/v2/filter_keywords/1",
        "/api/v1/filters/1",
    ] {
        let (status, body) = get(&app, &alice, path).await;
        is_error(status, &body, 404);
    }
    let (status, body) = post_to(
        &app,
        &alice,
        &format!("/api/v2/filters/{fid}/statuses"),
        json!({"status_id": "12345"}),
    )
    .await;
    is_error(status, &body, 404);
    assert_eq!(
        get(&app, &alice, "/api/v2/filters")
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was made"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_in_threads_and_account_timelines_by_their_context() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    make_filter(
        &app,
        &alice,
        json!({"title": "thread warn", "context": ["thread"], "filter_action": "warn",
               "keywords_attributes": [{"keyword": "finale"}]}),
    )
    .await;
    make_filter(
        &app,
        &alice,
        json!({"title": "account hide", "context": ["account"], "filter_action": "hide",
               "keywords_attributes": [{"keyword": "spoiler"}]}),
    )
    .await;
    let root = say(&app, &bob, "a thread").await;
    let reply = |text: &'static str| {
        let root = root.clone();
        let app = &app;
        let bob = &bob;
        async move {
            let (status, v) = post_to(
                app,
                bob,
                "/api/v1/statuses",
                json!({"status": text, "in_reply_to_id": root}),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            sid(&v)
        }
    };
    let finale = reply("the finale reply").await;
    let spoiler = reply("the spoiler reply").await;

    let (_, thread) = get(&app, &alice, &format!("/api/v1/statuses/{root}/context")).await;
    let desc = thread["descendants"].as_array().unwrap();
    let by_id = |id: &str| desc.iter().find(|s| sid(s) == id).cloned();
    assert_eq!(
        by_id(&finale).unwrap()["filtered"][0]["filter"]["title"],
        "thread warn"
    );
    assert_eq!(
        by_id(&spoiler).unwrap()["filtered"],
        json!([]),
        "account filters stay out of threads"
    );

    let (_, statuses) = get(
        &app,
        &alice,
        &format!("/api/v1/accounts/{}/statuses", bob.id),
    )
    .await;
    let shown = ids(&statuses);
    assert!(
        shown.contains(&finale) && !shown.contains(&spoiler),
        "{shown:?}"
    );
    let f = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| sid(s) == finale)
        .unwrap();
    assert_eq!(
        f["filtered"],
        json!([]),
        "thread filters stay out of account timelines"
    );
    app.stop().await;
}
