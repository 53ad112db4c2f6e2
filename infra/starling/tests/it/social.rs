//! The social actions end to end over the Mastodon API: visibility of private and direct
//! posts, blocks and mutes, replies (context and the reply rule), reblogs (dedupe, undo),
//! favourites, notifications and the public and hashtag timelines.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, User, spawn_app};

const WAIT: Duration = Duration::from_secs(3);

pub(crate) async fn post(app: &TestApp, user: &User, body: Value) -> Value {
    let res = app.post_json(&user.token, "/api/v1/statuses", body).await;
    let status = res.status();
    let text = res.text().await.expect("body");
    assert!(status.is_success(), "post: {status} {text}");
    serde_json::from_str(&text).expect("json")
}

pub(crate) async fn act(app: &TestApp, user: &User, path: &str) -> (u16, Value) {
    let res = app.post_json(&user.token, path, json!({})).await;
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub(crate) fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

pub(crate) fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Poll `path` as `user` until `pred` holds on the JSON or the wait is over.
pub(crate) async fn until(
    app: &TestApp,
    user: &User,
    path: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = app.get(&user.token, path).await;
        if pred(&v) || Instant::now() >= deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn home_has(app: &TestApp, user: &User, post: &str) -> bool {
    let post = post.to_owned();
    app.home_until(user, WAIT, |ids| ids.contains(&post))
        .await
        .0
}

async fn notifications(app: &TestApp, user: &User) -> Vec<Value> {
    app.get(&user.token, "/api/v1/notifications")
        .await
        .as_array()
        .expect("array")
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_direct_posts_reach_only_their_audience() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await; // follows alice
    let carol = app.register("carol").await; // mentioned, does not follow
    let eve = app.register("eve").await; // neither
    app.follow(&bob, &alice).await;

    let private = id(&post(
        &app,
        &alice,
        json!({"status": "@carol followers only", "visibility": "private"}),
    )
    .await);
    let direct = id(&post(
        &app,
        &alice,
        json!({"status": "@carol just you", "visibility": "direct"}),
    )
    .await);
    assert!(
        home_has(&app, &bob, &private).await,
        "a follower gets private"
    );
    assert!(
        home_has(&app, &carol, &private).await,
        "the mentioned get private"
    );
    assert!(
        home_has(&app, &carol, &direct).await,
        "the mentioned get direct"
    );
    // Both events were applied (carol got both): nobody else may have them.
    assert!(!app.home_ids(&bob, "?limit=40").await.contains(&direct));
    let eve_home = app.home_ids(&eve, "?limit=40").await;
    assert!(!eve_home.contains(&private) && !eve_home.contains(&direct));
    for viewer in [&eve, &bob] {
        let public = ids(&app.get(&viewer.token, "/api/v1/timelines/public").await);
        assert!(!public.contains(&private) && !public.contains(&direct));
    }
    assert!(notifications(&app, &eve).await.is_empty());
    assert!(notifications(&app, &bob).await.is_empty());
    let mentions = until(&app, &carol, "/api/v1/notifications?types[]=mention", |v| {
        v.as_array().is_some_and(|a| a.len() == 2)
    })
    .await;
    let mut got: Vec<String> = mentions
        .as_array()
        .expect("array")
        .iter()
        .map(|n| id(&n["status"]))
        .collect();
    // Fan-out applies events concurrently: notifications come in any order.
    got.sort();
    assert_eq!(got, vec![private.clone(), direct.clone()]);
    assert_eq!(mentions[0]["type"], "mention");
    assert_eq!(mentions[0]["account"]["username"], "alice");
    // Not even by id, nor their thread, nor a reblog.
    for p in [&private, &direct] {
        let res = app
            .get_raw(&eve.token, &format!("/api/v1/statuses/{p}"))
            .await;
        assert_eq!(res.status().as_u16(), 404);
        let res = app
            .get_raw(&eve.token, &format!("/api/v1/statuses/{p}/context"))
            .await;
        assert_eq!(res.status().as_u16(), 404);
    }
    let (code, _) = act(&app, &bob, &format!("/api/v1/statuses/{private}/reblog")).await;
    assert_eq!(code, 403, "private posts cannot be reblogged by others");
    // A home rebuilt from the store agrees with fan-out.
    app.node()
        .timelines
        .clear(carol.id.parse().expect("id"))
        .await
        .expect("clear");
    app.node()
        .timelines
        .clear(bob.id.parse().expect("id"))
        .await
        .expect("clear");
    let carol_home = app.home_ids(&carol, "?limit=40").await;
    assert!(carol_home.contains(&private) && carol_home.contains(&direct));
    let bob_home = app.home_ids(&bob, "?limit=40").await;
    assert!(bob_home.contains(&private) && !bob_home.contains(&direct));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_accounts_posts_and_notifications_never_reach_the_blocker() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let mallory = app.register("mallory").await;
    let trudy = app.register("trudy").await;
    let bob = app.register("bob").await; // follows mallory and trudy: the sync point
    app.follow(&alice, &mallory).await;
    app.follow(&mallory, &alice).await;
    app.follow(&alice, &trudy).await;
    app.follow(&bob, &mallory).await;
    app.follow(&bob, &trudy).await;
    let before = id(&app.status(&mallory, "before the block").await);
    assert!(home_has(&app, &alice, &before).await);

    let (code, rel) = act(
        &app,
        &alice,
        &format!("/api/v1/accounts/{}/block", mallory.id),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(rel["blocking"], true);
    assert_eq!(rel["following"], false);
    assert_eq!(rel["followed_by"], false, "a block ends follows both ways");
    let (code, _) = act(
        &app,
        &mallory,
        &format!("/api/v1/accounts/{}/follow", alice.id),
    )
    .await;
    assert_eq!(code, 403, "a blocked account cannot follow back");
    let (_, rel) = act(&app, &alice, &format!("/api/v1/accounts/{}/mute", trudy.id)).await;
    assert_eq!(rel["muting"], true);
    assert_eq!(rel["muting_notifications"], true);

    let mine = id(&app.status(&alice, "alice here").await);
    let after = id(&app
        .status(&mallory, "@alice after the block #blocked")
        .await);
    let muted = id(&app.status(&trudy, "@alice muted words").await);
    // The blocked account cannot read, favourite, reblog or reply to alice's post (404, as
    // if it did not exist); the muted one can, and alice is not told.
    for (who, code) in [(&mallory, 404), (&trudy, 200)] {
        let (c, _) = act(&app, who, &format!("/api/v1/statuses/{mine}/favourite")).await;
        assert_eq!(c, code, "favourite by {}", who.username);
        let (c, _) = act(&app, who, &format!("/api/v1/statuses/{mine}/reblog")).await;
        assert_eq!(c, code, "reblog by {}", who.username);
        let c = app
            .get_raw(&who.token, &format!("/api/v1/statuses/{mine}"))
            .await
            .status();
        assert_eq!(c, code, "read by {}", who.username);
        let c = app
            .post_json(
                &who.token,
                "/api/v1/statuses",
                json!({"status": "a reply", "in_reply_to_id": mine}),
            )
            .await
            .status();
        assert_eq!(c, code, "reply by {}", who.username);
    }
    assert!(home_has(&app, &bob, &after).await);
    assert!(home_has(&app, &bob, &muted).await);
    let home = app.home_ids(&alice, "?limit=40").await;
    assert!(!home.contains(&before), "a block takes earlier posts out");
    assert!(!home.contains(&after) && !home.contains(&muted));
    let public = ids(&app.get(&alice.token, "/api/v1/timelines/public").await);
    assert!(!public.contains(&after) && !public.contains(&muted));
    assert!(public.contains(&mine));
    let tagged = ids(&app.get(&alice.token, "/api/v1/timelines/tag/blocked").await);
    assert!(tagged.is_empty());
    assert!(ids(&app.get(&bob.token, "/api/v1/timelines/tag/blocked").await).contains(&after));
    // Mallory's follow notification (from before) and everything since are hidden.
    let notes = notifications(&app, &alice).await;
    assert!(
        notes.iter().all(|n| {
            let from = n["account"]["id"].as_str().unwrap_or_default();
            from != mallory.id && from != trudy.id
        }),
        "{notes:?}"
    );
    let blocks = ids(&app.get(&alice.token, "/api/v1/blocks").await);
    assert_eq!(blocks, vec![mallory.id.clone()]);
    let mutes = ids(&app.get(&alice.token, "/api/v1/mutes").await);
    assert_eq!(mutes, vec![trudy.id.clone()]);

    // Unmute brings trudy back (still followed); unblock does not restore follows.
    let (_, rel) = act(
        &app,
        &alice,
        &format!("/api/v1/accounts/{}/unmute", trudy.id),
    )
    .await;
    assert_eq!(rel["muting"], false);
    assert!(home_has(&app, &alice, &muted).await);
    let (_, rel) = act(
        &app,
        &alice,
        &format!("/api/v1/accounts/{}/unblock", mallory.id),
    )
    .await;
    assert_eq!(rel["blocking"], false);
    assert_eq!(rel["following"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reblogs_are_shown_once_and_unreblog_removes_the_wrapper() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    let eve = app.register("eve").await;
    for whom in [&alice, &carol, &dave] {
        app.follow(&bob, whom).await;
    }
    let followed = id(&app.status(&alice, "an original bob follows").await);
    let elsewhere = id(&app.status(&eve, "an original bob does not follow").await);
    assert!(home_has(&app, &bob, &followed).await);

    let (code, wrapper) = act(&app, &carol, &format!("/api/v1/statuses/{followed}/reblog")).await;
    assert_eq!(code, 200);
    assert_eq!(wrapper["reblog"]["id"], followed.as_str());
    assert_eq!(wrapper["reblog"]["reblogged"], true);
    assert_eq!(wrapper["reblog"]["reblogs_count"], 1);
    let (_, again) = act(&app, &carol, &format!("/api/v1/statuses/{followed}/reblog")).await;
    assert_eq!(
        id(&again),
        id(&wrapper),
        "reblogging again returns the same wrapper"
    );
    let (_, first) = act(&app, &dave, &format!("/api/v1/statuses/{elsewhere}/reblog")).await;
    let (_, second) = act(
        &app,
        &carol,
        &format!("/api/v1/statuses/{elsewhere}/reblog"),
    )
    .await;
    let marker = id(&app.status(&carol, "after the reblogs").await);
    assert!(
        home_has(&app, &bob, &id(&first)).await,
        "the first reblog is shown"
    );
    assert!(home_has(&app, &bob, &marker).await);
    let home = app.home_ids(&bob, "?limit=40").await;
    assert!(
        !home.contains(&id(&wrapper)),
        "the original is already among the recent 40"
    );
    assert!(
        !home.contains(&id(&second)),
        "another reblog of it already is"
    );
    let shown = app.get(&bob.token, "/api/v1/timelines/home?limit=40").await;
    let originals: Vec<&str> = shown
        .as_array()
        .expect("array")
        .iter()
        .map(|s| {
            s["reblog"]["id"]
                .as_str()
                .or(s["id"].as_str())
                .unwrap_or_default()
        })
        .collect();
    for original in [&followed, &elsewhere] {
        assert_eq!(
            originals
                .iter()
                .filter(|o| **o == original.as_str())
                .count(),
            1,
            "{original} shown once: {originals:?}"
        );
    }
    // The rebuilt home dedupes the same way.
    app.node()
        .timelines
        .clear(bob.id.parse().expect("id"))
        .await
        .expect("clear");
    let rebuilt = app.home_ids(&bob, "?limit=40").await;
    assert_eq!(rebuilt, home, "a rebuild agrees with fan-out");

    let (code, undone) = act(
        &app,
        &dave,
        &format!("/api/v1/statuses/{elsewhere}/unreblog"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(undone["id"], elsewhere.as_str());
    assert_eq!(undone["reblogged"], false);
    let gone = id(&first);
    let (left, _) = app.home_until(&bob, WAIT, |ids| !ids.contains(&gone)).await;
    assert!(left, "unreblog removes the wrapper");
    let res = app
        .get_raw(&bob.token, &format!("/api/v1/statuses/{gone}"))
        .await;
    assert_eq!(res.status().as_u16(), 404);
    let by = ids(&app
        .get(
            &eve.token,
            &format!("/api/v1/statuses/{elsewhere}/reblogged_by"),
        )
        .await);
    assert_eq!(by, vec![carol.id.clone()]);
    let notes = until(&app, &eve, "/api/v1/notifications", |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    let kinds: Vec<&str> = notes
        .as_array()
        .expect("array")
        .iter()
        .map(|n| n["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, vec!["reblog", "reblog"], "one per reblogger");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_orders_the_thread_and_replies_follow_mastodons_rule() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await; // follows alice only
    let erin = app.register("erin").await; // follows alice and bob
    app.follow(&dave, &alice).await;
    app.follow(&erin, &alice).await;
    app.follow(&erin, &bob).await;
    let reply = |to: &str, text: &str| json!({"status": text, "in_reply_to_id": to});
    let root = id(&app.status(&bob, "root").await);
    let r1 = id(&post(&app, &alice, reply(&root, "@bob r1")).await);
    let r2 = id(&post(&app, &bob, reply(&r1, "@alice r2")).await);
    let r3 = id(&post(&app, &carol, reply(&root, "@bob r3")).await);
    let r1a = id(&post(&app, &carol, reply(&r1, "@alice r1a")).await);
    let hidden = id(&post(
        &app,
        &carol,
        json!({"status": "followers only", "in_reply_to_id": root, "visibility": "private"}),
    )
    .await);

    let ctx = app
        .get(&dave.token, &format!("/api/v1/statuses/{root}/context"))
        .await;
    assert!(ids(&ctx["ancestors"]).is_empty());
    assert_eq!(
        ids(&ctx["descendants"]),
        vec![r1.clone(), r2.clone(), r1a.clone(), r3.clone()],
        "depth first, oldest reply first; a private reply stays hidden"
    );
    let ctx = app
        .get(&dave.token, &format!("/api/v1/statuses/{r2}/context"))
        .await;
    assert_eq!(ids(&ctx["ancestors"]), vec![root.clone(), r1.clone()]);
    assert!(ids(&ctx["descendants"]).is_empty());
    let ctx = app
        .get(&carol.token, &format!("/api/v1/statuses/{root}/context"))
        .await;
    assert!(
        ids(&ctx["descendants"]).contains(&hidden),
        "the author sees it"
    );
    let shown = app
        .get(&dave.token, &format!("/api/v1/statuses/{r1}"))
        .await;
    assert_eq!(shown["in_reply_to_id"], root.as_str());
    assert_eq!(shown["in_reply_to_account_id"], bob.id.as_str());
    assert_eq!(shown["replies_count"], 2);

    // Alice's reply to bob reaches erin (follows both), not dave (follows alice only).
    let marker = id(&app.status(&alice, "a marker").await);
    assert!(home_has(&app, &erin, &r1).await);
    assert!(home_has(&app, &dave, &marker).await);
    let dave_home = app.home_ids(&dave, "?limit=40").await;
    assert!(!dave_home.contains(&r1), "{dave_home:?}");
    app.node()
        .timelines
        .clear(dave.id.parse().expect("id"))
        .await
        .expect("clear");
    let rebuilt = app.home_ids(&dave, "?limit=40").await;
    assert!(rebuilt.contains(&marker) && !rebuilt.contains(&r1));
    // Bob was mentioned: one mention notification per reply that named him.
    let notes = until(&app, &bob, "/api/v1/notifications?types[]=mention", |v| {
        v.as_array().is_some_and(|a| a.len() >= 2)
    })
    .await;
    let mut about: Vec<String> = notes
        .as_array()
        .expect("array")
        .iter()
        .map(|n| id(&n["status"]))
        .collect();
    about.sort();
    assert_eq!(about, vec![r1.clone(), r3.clone()]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn favourites_and_notifications_round_trip() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let mine = id(&app.status(&alice, "like me").await);
    app.follow(&bob, &alice).await;
    let (code, status) = act(&app, &bob, &format!("/api/v1/statuses/{mine}/favourite")).await;
    assert_eq!(code, 200);
    assert_eq!(status["favourited"], true);
    assert_eq!(status["favourites_count"], 1);
    let (_, status) = act(&app, &bob, &format!("/api/v1/statuses/{mine}/favourite")).await;
    assert_eq!(status["favourites_count"], 1, "favouriting is idempotent");
    let (_, status) = act(&app, &carol, &format!("/api/v1/statuses/{mine}/favourite")).await;
    assert_eq!(status["favourites_count"], 2);
    let (_, status) = act(
        &app,
        &carol,
        &format!("/api/v1/statuses/{mine}/unfavourite"),
    )
    .await;
    assert_eq!(status["favourited"], false);
    assert_eq!(status["favourites_count"], 1);
    let by = ids(&app
        .get(
            &alice.token,
            &format!("/api/v1/statuses/{mine}/favourited_by"),
        )
        .await);
    assert_eq!(by, vec![bob.id.clone()]);
    let viewer = app
        .get(&bob.token, &format!("/api/v1/statuses/{mine}"))
        .await;
    assert_eq!(viewer["favourited"], true);
    let (code, _) = act(&app, &bob, "/api/v1/statuses/123/favourite").await;
    assert_eq!(code, 404);
    let (code, _) = act(&app, &bob, "/api/v1/statuses/not-an-id/favourite").await;
    assert_eq!(code, 404);

    let notes = until(&app, &alice, "/api/v1/notifications", |v| {
        v.as_array().is_some_and(|a| a.len() >= 3)
    })
    .await;
    let mut kinds: Vec<(&str, &str)> = notes
        .as_array()
        .expect("array")
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap_or_default(),
                n["account"]["username"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    // Fan-out applies events concurrently: notifications come in any order.
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        vec![
            ("favourite", "bob"),
            ("favourite", "carol"),
            ("follow", "bob")
        ],
        "one per cause; the undone favourite's stays"
    );
    let list = notes.as_array().expect("array");
    let fav = list
        .iter()
        .find(|n| n["type"] == "favourite")
        .expect("a favourite");
    assert_eq!(fav["status"]["id"], mine.as_str());
    let follow = list
        .iter()
        .find(|n| n["type"] == "follow")
        .expect("a follow");
    assert!(follow["status"].is_null(), "a follow names no status");
    let follows = app
        .get(&alice.token, "/api/v1/notifications?types[]=follow")
        .await;
    assert_eq!(follows.as_array().map(Vec::len), Some(1));
    let no_favs = app
        .get(
            &alice.token,
            "/api/v1/notifications?exclude_types[]=favourite",
        )
        .await;
    assert_eq!(ids(&no_favs), vec![id(follow)]);
    let res = app
        .get_raw(&alice.token, "/api/v1/notifications?limit=1")
        .await;
    let link = res
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        link.contains(&format!("max_id={}", id(&notes[0]))),
        "{link}"
    );
    let next = link.split(['<', '>']).nth(1).expect("next url").to_owned();
    let page2: Value = app
        .get_raw(&alice.token, &next)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&page2), vec![id(&notes[1])]);

    let one = app
        .get(&alice.token, &format!("/api/v1/notifications/{}", id(fav)))
        .await;
    assert_eq!(one["type"], "favourite");
    let theirs = app
        .get_raw(&bob.token, &format!("/api/v1/notifications/{}", id(fav)))
        .await;
    assert_eq!(theirs.status().as_u16(), 404, "not someone else's");
    let (code, _) = act(
        &app,
        &alice,
        &format!("/api/v1/notifications/{}/dismiss", id(fav)),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(notifications(&app, &alice).await.len(), 2);
    let (code, _) = act(&app, &alice, "/api/v1/notifications/clear").await;
    assert_eq!(code, 200);
    assert!(notifications(&app, &alice).await.is_empty());
    // Nobody is notified of their own actions.
    act(&app, &alice, &format!("/api/v1/statuses/{mine}/favourite")).await;
    let later = id(&app.status(&bob, "a marker").await);
    assert!(home_has(&app, &bob, &later).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(notifications(&app, &alice).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashtag_and_public_timelines_page_public_originals() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut tagged = Vec::new();
    for i in 0..5 {
        let text = if i % 2 == 0 {
            format!("post {i} #Rust")
        } else {
            format!("post {i} #rust #日本語")
        };
        tagged.push(id(&app.status(&alice, &text).await));
    }
    let unlisted = id(&post(
        &app,
        &alice,
        json!({"status": "#rust quietly", "visibility": "unlisted"}),
    )
    .await);
    act(
        &app,
        &bob,
        &format!("/api/v1/statuses/{}/reblog", tagged[0]),
    )
    .await;
    let newest_first: Vec<String> = tagged.iter().rev().cloned().collect();

    let page = app
        .get(&bob.token, "/api/v1/timelines/tag/RUST?limit=3")
        .await;
    assert_eq!(ids(&page), newest_first[..3].to_vec(), "any case");
    assert_eq!(page[0]["tags"][0]["name"], "rust");
    let res = app
        .get_raw(&bob.token, "/api/v1/timelines/tag/rust?limit=3")
        .await;
    let link = res
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let next = link.split(['<', '>']).nth(1).expect("next").to_owned();
    let rest: Value = app
        .get_raw(&bob.token, &next)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(ids(&rest), newest_first[3..].to_vec());
    let japanese = app
        .get(
            &bob.token,
            "/api/v1/timelines/tag/%E6%97%A5%E6%9C%AC%E8%AA%9E",
        )
        .await;
    assert_eq!(ids(&japanese), vec![tagged[3].clone(), tagged[1].clone()]);
    let since = app
        .get(
            &bob.token,
            &format!("/api/v1/timelines/tag/rust?min_id={}&limit=2", tagged[1]),
        )
        .await;
    assert_eq!(ids(&since), vec![tagged[3].clone(), tagged[2].clone()]);
    for bad in ["no%20such", "%23", "1234"] {
        let v = app
            .get(&bob.token, &format!("/api/v1/timelines/tag/{bad}"))
            .await;
        assert_eq!(v.as_array().map(Vec::len), Some(0), "{bad}");
    }
    // Public: originals only, anonymous readers too; unlisted and reblogs stay out.
    let res = app
        .http
        .get(format!("{}/api/v1/timelines/public?local=true", app.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 200);
    let public: Value = res.json().await.expect("json");
    assert_eq!(ids(&public), newest_first);
    assert!(!ids(&public).contains(&unlisted));
    // A deleted post leaves both.
    let res = app
        .http
        .delete(format!("{}/api/v1/statuses/{}", app.base, tagged[4]))
        .bearer_auth(&alice.token)
        .send()
        .await
        .expect("DELETE");
    assert!(res.status().is_success());
    let page = app
        .get(&bob.token, "/api/v1/timelines/tag/rust?limit=1")
        .await;
    assert_eq!(ids(&page), vec![tagged[3].clone()]);
    app.stop().await;
}
