//! `spawn_app()`: a whole node on a free port with its own Redis shards, NATS and store,
//! and a typed client for it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use starling::{Node, Role};
use starling_schema::settings::{EmbeddedSettings, Settings};
use starling_store::AnyStore;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};

pub struct TestApp {
    pub node: Option<Node>,
    pub base: String,
    pub http: reqwest::Client,
    pub redis: RedisShards,
    pub nats: NatsServer,
    _dir: tempfile::TempDir,
    app: Option<(String, String)>,
}

pub fn test_settings(redis: &RedisShards, nats: &NatsServer, dir: &std::path::Path) -> Settings {
    let mut s = Settings {
        node_id: 1,
        ..Settings::default()
    };
    s.log.filter = "warn".into();
    s.api.listen = "127.0.0.1:0".into();
    s.api.workers = 2;
    s.redis.shards = redis.urls();
    s.nats.url = nats.url();
    s.nats.publish_timeout_ms = 500;
    s.nats.outbox_retry_ms = 200;
    s.nats.ack_wait_ms = 2_000;
    s.store.embedded = EmbeddedSettings {
        path: dir.join("store"),
        fsync: false,
        cache_mib: 32,
    };
    s.search.path = dir.join("search");
    s.search.commit_interval_ms = 200;
    s.media.path = dir.join("media");
    // Tests drive the API from one address with a few accounts, far harder than a person:
    // limits well above that (so the headers are still sent); `abuse.rs` sets its own.
    let r = &mut s.rate_limits;
    for bucket in [
        &mut r.api_per_token,
        &mut r.api_per_account,
        &mut r.api_per_ip,
        &mut r.sign_up_per_ip,
        &mut r.sign_in_per_ip,
        &mut r.sign_in_per_account,
        &mut r.posts_per_account,
        &mut r.media_per_account,
    ] {
        bucket.limit = 1_000_000;
    }
    s.limits.password_hash_queue = 1_024;
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_roles(&Role::all(), tweak).await
}

/// A node running only `roles` (which must include the api).
pub async fn spawn_app_roles(roles: &[Role], tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let redis = RedisShards::start(3).expect("redis shards");
    let nats = NatsServer::start().expect("nats");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&redis, &nats, dir.path());
    tweak(&mut settings);
    let store = AnyStore::Embedded(
        EmbeddedStore::open(
            &settings.store.embedded,
            settings.node_id,
            settings.limits.clone(),
        )
        .expect("store"),
    );
    let node = starling::start_with_store(settings, roles, store)
        .await
        .expect("start node");
    let addr = node.addr.expect("api address");
    let base = format!("http://{addr}");
    let app = TestApp {
        node: Some(node),
        base,
        http: reqwest::Client::new(),
        redis,
        nats,
        _dir: dir,
        app: None,
    };
    app.wait_ready().await;
    app
}

/// A signed-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub username: String,
    pub token: String,
}

impl TestApp {
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(res) = self.http.get(format!("{}/ready", self.base)).send().await
                && res.status().is_success()
            {
                return;
            }
            assert!(Instant::now() < deadline, "the node did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The test's data directory (store, search index).
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn node(&self) -> &Node {
        self.node.as_ref().expect("node running")
    }

    async fn client_credentials(&mut self) -> (String, String) {
        if let Some(app) = &self.app {
            return app.clone();
        }
        let app: Value = self
            .http
            .post(format!("{}/api/v1/apps", self.base))
            .form(&[
                ("client_name", "tests"),
                ("redirect_uris", "urn:ietf:wg:oauth:2.0:oob"),
                ("scopes", "read write follow"),
            ])
            .send()
            .await
            .expect("create app")
            .json()
            .await
            .expect("app json");
        let id = app["client_id"].as_str().expect("client_id").to_owned();
        let secret = app["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned();
        self.app = Some((id.clone(), secret.clone()));
        (id, secret)
    }

    /// Register through the API as a client would and return the signed-in user.
    pub async fn register(&mut self, username: &str) -> User {
        let (client_id, client_secret) = self.client_credentials().await;
        let token: Value = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
                ("client_secret", &client_secret),
                ("scope", "read write follow"),
            ])
            .send()
            .await
            .expect("app token")
            .json()
            .await
            .expect("token json");
        let app_token = token["access_token"].as_str().expect("access_token");
        let res = self
            .http
            .post(format!("{}/api/v1/accounts", self.base))
            .bearer_auth(app_token)
            .form(&[
                ("username", username),
                ("email", &format!("{username}@example.org")),
                ("password", "correct horse battery"),
                ("agreement", "true"),
                ("locale", "en"),
            ])
            .send()
            .await
            .expect("register");
        assert!(
            res.status().is_success(),
            "register {username}: {}",
            res.text().await.unwrap_or_default()
        );
        let token: Value = res.json().await.expect("token json");
        let token = token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        let me = self
            .get(&token, "/api/v1/accounts/verify_credentials")
            .await;
        User {
            id: me["id"].as_str().expect("id").to_owned(),
            username: username.to_owned(),
            token,
        }
    }

    pub async fn get(&self, token: &str, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET");
        let status = res.status();
        let body = res.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).expect("json")
    }

    pub async fn get_raw(&self, token: &str, path_or_url: &str) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        self.http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post_json(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn status(&self, user: &User, text: &str) -> Value {
        let res = self
            .post_json(&user.token, "/api/v1/statuses", json!({ "status": text }))
            .await;
        let status = res.status();
        let body = res.text().await.expect("body");
        assert!(status.is_success(), "post: {status} {body}");
        serde_json::from_str(&body).expect("json")
    }

    pub async fn follow(&self, who: &User, whom: &User) {
        let res = self
            .post_json(
                &who.token,
                &format!("/api/v1/accounts/{}/follow", whom.id),
                json!({}),
            )
            .await;
        assert!(res.status().is_success(), "follow");
    }

    pub async fn home_ids(&self, user: &User, query: &str) -> Vec<String> {
        let page = self
            .get(&user.token, &format!("/api/v1/timelines/home{query}"))
            .await;
        page.as_array()
            .expect("array")
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_owned())
            .collect()
    }

    /// Poll `user`'s home until `pred` holds or `timeout` passes; returns the last ids seen.
    pub async fn home_until(
        &self,
        user: &User,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> (bool, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            let ids = self.home_ids(user, "?limit=40").await;
            if pred(&ids) {
                return (true, ids);
            }
            if Instant::now() >= deadline {
                return (false, ids);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Another api-only node of the same installation: the same store, Redis shards and
    /// NATS, its own port, node id, search directory and caches. Returns it with its base URL.
    pub async fn spawn_api_node(
        &self,
        node_id: u32,
        tweak: impl FnOnce(&mut Settings),
    ) -> (Node, String) {
        let mut settings = test_settings(&self.redis, &self.nats, self.dir());
        settings.node_id = node_id;
        settings.search.path = self.dir().join(format!("search-{node_id}"));
        tweak(&mut settings);
        let node = starling::start_with_store(settings, &[Role::Api], self.node().store.clone())
            .await
            .expect("start api node");
        let base = format!("http://{}", node.addr.expect("api address"));
        (node, base)
    }

    /// A node of the same installation running only `roles` (no api: no port of its own).
    pub async fn spawn_role_node(
        &self,
        node_id: u32,
        roles: &[Role],
        tweak: impl FnOnce(&mut Settings),
    ) -> Node {
        let mut settings = test_settings(&self.redis, &self.nats, self.dir());
        settings.node_id = node_id;
        settings.search.path = self.dir().join(format!("search-{node_id}"));
        tweak(&mut settings);
        starling::start_with_store(settings, roles, self.node().store.clone())
            .await
            .expect("start role node")
    }

    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }
}
