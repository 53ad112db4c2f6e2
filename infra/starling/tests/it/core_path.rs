//! The core path end to end: post → JetStream → fan-out → Redis shards → home timeline,
//! over the Mastodon client API.

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_reaches_followers_within_a_second_and_no_one_else() {
    let mut app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    let c = app.register("carol").await;
    app.follow(&a, &b).await;
    let post = app.status(&b, "hello followers").await;
    let id = post["id"].as_str().expect("id").to_owned();
    let (seen, _) = app.home_until(&a, SECOND, |ids| ids.contains(&id)).await;
    assert!(seen, "A's home shows B's post within 1 s");
    let (own, _) = app.home_until(&b, SECOND, |ids| ids.contains(&id)).await;
    assert!(own, "the author's own post is in their home");
    // Give fan-out a moment to (wrongly) reach C, then check it did not.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !app.home_ids(&c, "").await.contains(&id),
        "C does not follow B"
    );
    let home = app.get(&a.token, "/api/v1/timelines/home").await;
    assert_eq!(home[0]["account"]["username"], b.username.as_str());
    assert_eq!(home[0]["content"], "<p>hello followers</p>");

    // What operators watch is exported.
    let metrics = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics");
    let metrics = metrics.text().await.expect("text");
    for name in [
        "starling_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/timelines/home\"",
        "starling_fanout_lag_seconds_bucket",
        "starling_timeline_shard_errors_total{shard=\"2\"} 0",
        "starling_events_published_total",
        "starling_fanout_consumer_pending",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    app.stop().await;
}

fn redis_exists(addr: &str, key: &str) -> bool {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect redis");
    let cmd = format!("*2\r\n$6\r\nEXISTS\r\n${}\r\n{key}\r\n", key.len());
    conn.write_all(cmd.as_bytes()).expect("write");
    let mut buf = [0u8; 16];
    let n = conn.read(&mut buf).expect("read");
    &buf[..n] == b":1\r\n"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelines_live_on_the_shard_the_ring_names() {
    let mut app = spawn_app().await;
    let mut shards_used = std::collections::HashSet::new();
    for i in 0..12 {
        let user = app.register(&format!("user{i}")).await;
        let id: u64 = user.id.parse().expect("numeric id");
        let shard = app.node().timelines.shard_of(starling_schema::Id(id));
        shards_used.insert(shard);
        let key = format!("tl:{id}");
        for (i, server) in app.redis.servers().iter().enumerate() {
            assert_eq!(
                redis_exists(&server.addr(), &key),
                i == shard,
                "{key} on shard {i}"
            );
        }
    }
    assert_eq!(shards_used.len(), 3, "users land on all three shards");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_and_unfollow_remove_posts_from_home() {
    let mut app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    app.follow(&a, &b).await;
    let p1 = app.status(&b, "first").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let p2 = app.status(&b, "second").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (both, _) = app
        .home_until(&a, SECOND, |ids| ids.contains(&p1) && ids.contains(&p2))
        .await;
    assert!(both);
    let res = app
        .http
        .delete(format!("{}/api/v1/statuses/{p1}", app.base))
        .bearer_auth(&b.token)
        .send()
        .await
        .expect("delete");
    assert!(res.status().is_success());
    let deleted: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        deleted["text"], "first",
        "delete answers with the source text"
    );
    let (gone, ids) = app.home_until(&a, SECOND, |ids| !ids.contains(&p1)).await;
    assert!(gone && ids.contains(&p2), "{ids:?}");
    assert_eq!(
        app.get_raw(&a.token, &format!("/api/v1/statuses/{p1}"))
            .await
            .status(),
        404
    );
    let res = app
        .post_json(
            &a.token,
            &format!("/api/v1/accounts/{}/unfollow", b.id),
            json!({}),
        )
        .await;
    let rel: serde_json::Value = res.json().await.expect("json");
    assert_eq!(rel["following"], false);
    let (removed, ids) = app.home_until(&a, SECOND, |ids| !ids.contains(&p2)).await;
    assert!(removed, "unfollow removes B's posts: {ids:?}");
    // Following again merges B's recent posts back.
    app.follow(&a, &b).await;
    let (merged, _) = app.home_until(&a, SECOND, |ids| ids.contains(&p2)).await;
    assert!(merged);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_pagination_over_150_posts() {
    let mut app = spawn_app().await;
    let a = app.register("reader").await;
    let b = app.register("writer").await;
    app.follow(&a, &b).await;
    let mut posted = Vec::new();
    for i in 0..150 {
        posted.push(
            app.status(&b, &format!("post {i}")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let newest_first: Vec<String> = posted.iter().rev().cloned().collect();
    // Wait until fan-out delivered everything (the first page shows the newest).
    let last = newest_first[0].clone();
    assert!(
        app.home_until(&a, 5 * SECOND, |ids| ids.first() == Some(&last))
            .await
            .0
    );

    // max_id: follow the Link header's rel="next" until it runs out.
    let mut seen: Vec<String> = Vec::new();
    let mut url = format!("{}/api/v1/timelines/home?limit=40", app.base);
    loop {
        let res = app.get_raw(&a.token, &url).await;
        let link = res
            .headers()
            .get("link")
            .map(|v| v.to_str().expect("ascii").to_owned());
        let page: Vec<serde_json::Value> = res.json().await.expect("json");
        if page.is_empty() {
            break;
        }
        seen.extend(
            page.iter()
                .map(|s| s["id"].as_str().expect("id").to_owned()),
        );
        let link = link.expect("a non-empty page has a Link header");
        assert!(
            link.find("rel=\"next\"") < link.find("rel=\"prev\""),
            "next comes first: {link}"
        );
        url = link
            .split(';')
            .next()
            .expect("next")
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned();
        assert!(url.contains("max_id="), "{url}");
    }
    assert_eq!(seen, newest_first, "every post exactly once, newest first");

    // since_id: the newest posts above a cursor.
    let since = app
        .home_ids(&a, &format!("?since_id={}&limit=10", posted[100]))
        .await;
    assert_eq!(since, newest_first[..10].to_vec());
    // min_id: the posts just above a cursor, still newest first.
    let min = app
        .home_ids(&a, &format!("?min_id={}&limit=5", posted[100]))
        .await;
    let expected: Vec<String> = posted[101..106].iter().rev().cloned().collect();
    assert_eq!(min, expected);
    // Paging backwards with rel="prev" from the oldest page reaches newer posts.
    let res = app
        .get_raw(
            &a.token,
            &format!("/api/v1/timelines/home?max_id={}&limit=3", posted[10]),
        )
        .await;
    let link = res
        .headers()
        .get("link")
        .expect("link")
        .to_str()
        .expect("ascii")
        .to_owned();
    let prev = link
        .split(", ")
        .nth(1)
        .expect("prev")
        .split(';')
        .next()
        .expect("url");
    let prev = prev.trim().trim_start_matches('<').trim_end_matches('>');
    let newer: Vec<serde_json::Value> = app
        .get_raw(&a.token, prev)
        .await
        .json()
        .await
        .expect("json");
    let newer: Vec<&str> = newer
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    let expected: Vec<&str> = posted[10..13].iter().rev().map(String::as_str).collect();
    assert_eq!(newer, expected);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_for_ten_seconds_loses_no_post() {
    let mut app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    app.follow(&a, &b).await;
    let warm = app.status(&b, "before the outage").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        app.home_until(&a, SECOND, |ids| ids.contains(&warm))
            .await
            .0
    );

    app.nats.stop().expect("stop nats");
    let mut during = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..5 {
        // Every post is acknowledged while NATS is down.
        during.push(
            app.status(&b, &format!("during the outage {i}")).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(10));
    app.nats.start_again().expect("start nats again");
    let (all, ids) = app
        .home_until(&a, 15 * SECOND, |ids| {
            during.iter().all(|p| ids.contains(p))
        })
        .await;
    assert!(
        all,
        "every post made during the outage reached the follower: {ids:?}"
    );
    let dupes = ids.len() - ids.iter().collect::<std::collections::HashSet<_>>().len();
    assert_eq!(dupes, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_one_post() {
    let mut app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    app.follow(&a, &b).await;
    let send = || {
        app.http
            .post(format!("{}/api/v1/statuses", app.base))
            .bearer_auth(&b.token)
            .header("Idempotency-Key", "retry-1")
            .form(&[("status", "exactly once")])
            .send()
    };
    let first: serde_json::Value = send().await.expect("post").json().await.expect("json");
    let second: serde_json::Value = send().await.expect("post").json().await.expect("json");
    assert_eq!(first["id"], second["id"]);
    let id = first["id"].as_str().expect("id").to_owned();
    assert!(app.home_until(&a, SECOND, |ids| ids.contains(&id)).await.0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids = app.home_ids(&a, "").await;
    assert_eq!(
        ids.iter().filter(|i| **i == id).count(),
        1,
        "one timeline entry"
    );
    let me = app
        .get(&b.token, "/api/v1/accounts/verify_credentials")
        .await;
    assert_eq!(me["statuses_count"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors() {
    let mut app = spawn_app().await;
    let a = app.register("alice").await;
    let b = app.register("bob").await;
    let res = app
        .http
        .get(format!("{}/api/v1/timelines/home", app.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.expect("json error");
    assert!(body["error"].is_string());
    assert_eq!(
        app.get_raw("not-a-token", "/api/v1/accounts/verify_credentials")
            .await
            .status(),
        401
    );
    let post = app.status(&b, "mine").await;
    let res = app
        .http
        .delete(format!(
            "{}/api/v1/statuses/{}",
            app.base,
            post["id"].as_str().expect("id")
        ))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 403, "another user's post");
    let long = "x".repeat(501);
    let res = app
        .post_json(&a.token, "/api/v1/statuses", json!({ "status": long }))
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_json(&a.token, "/api/v1/statuses", json!({ "status": "" }))
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .post_json(
            &a.token,
            "/api/v1/statuses",
            json!({ "status": "x", "visibility": "everyone" }),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .http
        .post(format!("{}/api/v1/statuses", app.base))
        .bearer_auth(&a.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.expect("json error");
    assert!(
        body["error"]
            .as_str()
            .expect("message")
            .contains("Invalid request body")
    );
    assert_eq!(
        app.get_raw(&a.token, "/api/v1/statuses/123").await.status(),
        404
    );
    assert_eq!(
        app.get_raw(&a.token, "/api/v1/statuses/not-an-id")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_raw(&a.token, "/api/v1/timelines/home?max_id=abc")
            .await
            .status(),
        422
    );
    let huge = "y".repeat(2 << 20);
    let res = app
        .http
        .post(format!("{}/api/v1/statuses", app.base))
        .bearer_auth(&a.token)
        .form(&[("status", huge.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 413);
    // Form bodies with key[] arrays and loose booleans.
    let res = app
        .http
        .get(format!(
            "{}/api/v1/accounts/relationships?id[]={}&id[]={}",
            app.base, b.id, a.id
        ))
        .bearer_auth(&a.token)
        .send()
        .await
        .expect("relationships");
    let rels: Vec<serde_json::Value> = res.json().await.expect("json");
    assert_eq!(rels.len(), 2);
    let res = app
        .http
        .post(format!("{}/api/v1/statuses", app.base))
        .bearer_auth(&a.token)
        .form(&[
            ("status", "cw"),
            ("sensitive", "True"),
            ("spoiler_text", "spoilers"),
        ])
        .send()
        .await
        .expect("post");
    let s: serde_json::Value = res.json().await.expect("json");
    assert_eq!(s["sensitive"], true);
    app.stop().await;
}
