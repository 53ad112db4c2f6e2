//! `/api/v2/search` on a whole node (api and indexer roles), and the rebuild command.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling::reindex::{Progress, What};
use starling_search::{SearchIndex, StatusQuery};

use crate::helpers::spawn_app;

struct Quiet;

impl Progress for Quiet {
    fn start(&mut self, _: What, _: bool) {}
    fn advance(&mut self, _: u64) {}
    fn finish(&mut self, _: What, _: u64) {}
}

fn ids(v: &Value, kind: &str) -> Vec<String> {
    v[kind]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_public_posts_accounts_and_tags_and_survives_a_rebuild() {
    let mut app = spawn_app().await;
    let alice = app.register("searchalice").await;
    let bob = app.register("searchbob").await;
    let res = app
        .post_json(
            &alice.token,
            "/api/v1/statuses",
            json!({ "status": "Gardening tips for #springtime" }),
        )
        .await;
    let public: Value = res.json().await.expect("json");
    let public = public["id"].as_str().expect("id").to_owned();
    app.post_json(
        &alice.token,
        "/api/v1/statuses",
        json!({ "status": "private gardening", "visibility": "private" }),
    )
    .await;

    let deadline = Instant::now() + Duration::from_secs(3);
    let found = loop {
        let v = app
            .get(&bob.token, "/api/v2/search?q=garden&type=statuses")
            .await;
        if !ids(&v, "statuses").is_empty() || Instant::now() > deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ids(&found, "statuses"), [public.as_str()], "{found}");
    let v = app.get(&bob.token, "/api/v2/search?q=%23springtime").await;
    assert_eq!(ids(&v, "statuses"), [public.as_str()]);
    let v = app
        .get(&bob.token, "/api/v2/search?q=%23spring&type=hashtags")
        .await;
    assert_eq!(v["hashtags"][0]["name"], "springtime", "{v}");
    let v = app
        .get(&bob.token, "/api/v2/search?q=searchal&type=accounts")
        .await;
    assert_eq!(ids(&v, "accounts"), [alice.id.as_str()]);
    let res = app
        .http
        .get(format!("{}/api/v2/search?q=x&limit=lots", app.base))
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), 422);

    // Rebuild from the store into an empty directory: the same post is found there.
    let node = app.node.take().expect("node");
    let store = node.store.clone();
    node.stop().await;
    let mut settings = crate::helpers::test_settings(&app.redis, &app.nats, app.dir());
    settings.search.path = app.dir().join("rebuilt");
    let docs = starling::reindex::run(&settings, &store, &[], false, &mut Quiet)
        .await
        .expect("reindex");
    assert!(docs >= 3, "two accounts and a post: {docs}");
    let index = SearchIndex::open(&settings.search.path).expect("open");
    let found = index
        .statuses(&StatusQuery::parse("garden"))
        .expect("search");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].to_string(), public);
    assert!(!settings.search.path.join("reindex-state.json").exists());
}
