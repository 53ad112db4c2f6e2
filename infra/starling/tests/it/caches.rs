//! The api node's warm caches stay true: a block or mute made on one node hides the
//! author's posts on another node's cached view at once, not when the cache expires.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_on_one_node_hides_posts_on_another_at_once() {
    let mut app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let (node2, base2) = app.spawn_api_node(2, |_| {}).await;
    let status = app.status(&alice, "public words").await;
    let id = status["id"].as_str().expect("id").to_owned();

    let public = |base: String| {
        let http = app.http.clone();
        let token = bob.token.clone();
        async move {
            let res = http
                .get(format!("{base}/api/v1/timelines/public"))
                .bearer_auth(token)
                .send()
                .await
                .expect("GET");
            assert!(res.status().is_success());
            ids(&res.json::<Value>().await.expect("json"))
        }
    };
    // Node 2 reads Bob's (empty) block and mute set and keeps it.
    assert!(public(base2.clone()).await.contains(&id));

    let res = app
        .post_json(
            &bob.token,
            &format!("/api/v1/accounts/{}/mute", alice.id),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());
    // This node answers from the store-fresh set at once.
    assert!(!public(app.base.clone()).await.contains(&id));
    // The other node hears of it well before its cached set would expire (30 s).
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if !public(base2.clone()).await.contains(&id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2 still shows a muted author's post"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // And unmuting shows it again on both.
    let res = app
        .post_json(
            &bob.token,
            &format!("/api/v1/accounts/{}/unmute", alice.id),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());
    assert!(public(app.base.clone()).await.contains(&id));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !public(base2.clone()).await.contains(&id) {
        assert!(
            Instant::now() < deadline,
            "node 2 still hides an unmuted author"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node2.stop().await;
    app.stop().await;
}
