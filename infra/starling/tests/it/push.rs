//! Web Push end to end: a whole node with the push role, and real push receivers (small HTTP
//! servers in the test) that decrypt what they receive with the subscription's private key
//! and auth secret, as a browser or a phone's push relay does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde_json::{Value, json};
use starling_push::crypto::{Encoding, decrypt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::helpers::{TestApp, User, spawn_app_with};

/// One request a receiver got.
#[derive(Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A push service: answers every request with `status` after `delay_ms`, and hands what it
/// received to the test.
struct PushService {
    url: String,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    got: mpsc::UnboundedReceiver<Received>,
}

impl PushService {
    async fn start() -> PushService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let status = Arc::new(AtomicU16::new(201));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (tx, got) = mpsc::unbounded_channel();
        let (st, dl) = (Arc::clone(&status), Arc::clone(&delay_ms));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (tx, st, dl) = (tx.clone(), Arc::clone(&st), Arc::clone(&dl));
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut read = BufReader::new(read);
                    loop {
                        let mut line = String::new();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                        let mut headers = Vec::new();
                        loop {
                            let mut h = String::new();
                            if read.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((n, v)) = h.split_once(':') {
                                headers.push((n.trim().to_owned(), v.trim().to_owned()));
                            }
                        }
                        let len = headers
                            .iter()
                            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                            .and_then(|(_, v)| v.parse::<usize>().ok())
                            .unwrap_or(0);
                        let mut body = vec![0u8; len];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let delay = dl.load(Ordering::SeqCst);
                        if delay > 0 {
                            tokio::time::sleep(Duration::from_millis(delay)).await;
                        }
                        let _ = tx.send(Received {
                            path,
                            headers,
                            body,
                        });
                        let code = st.load(Ordering::SeqCst);
                        let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n");
                        if write.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        PushService {
            url,
            status,
            delay_ms,
            got,
        }
    }

    async fn next(&mut self, within: Duration) -> Option<Received> {
        tokio::time::timeout(within, self.got.recv())
            .await
            .ok()
            .flatten()
    }
}

/// A user agent's subscription keys.
struct Keys {
    private: Vec<u8>,
    p256dh: String,
    auth: Vec<u8>,
}

impl Keys {
    fn new() -> Keys {
        let secret = SecretKey::random(&mut rand::rngs::OsRng);
        let public = secret.public_key().to_encoded_point(false);
        let mut auth = vec![0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut auth);
        Keys {
            private: secret.to_bytes().to_vec(),
            p256dh: URL_SAFE_NO_PAD.encode(public.as_bytes()),
            auth,
        }
    }

    /// Decrypt a push as the user agent would, from its encoding and headers.
    fn open(&self, got: &Received) -> Value {
        let plain = match got.header("content-encoding") {
            Some("aes128gcm") => decrypt(
                &self.private,
                &self.auth,
                &got.body,
                Encoding::Aes128Gcm,
                None,
            ),
            Some("aesgcm") => {
                let salt = got
                    .header("encryption")
                    .and_then(|v| v.strip_prefix("salt="))
                    .expect("Encryption: salt=");
                let dh = got
                    .header("crypto-key")
                    .and_then(|v| v.strip_prefix("dh="))
                    .and_then(|v| v.split(';').next())
                    .expect("Crypto-Key: dh=");
                decrypt(
                    &self.private,
                    &self.auth,
                    &got.body,
                    Encoding::AesGcm,
                    Some((salt, dh)),
                )
            }
            other => panic!("unexpected Content-Encoding {other:?}"),
        };
        serde_json::from_slice(&plain.expect("the push decrypts")).expect("a JSON payload")
    }
}

/// A token of `user` that grants `push` (password grant of an app asking for it).
async fn push_token(app: &TestApp, user: &User, scopes: &str) -> String {
    let created: Value = app
        .http
        .post(format!("{}/api/v1/apps", app.base))
        .form(&[
            ("client_name", "push app"),
            ("redirect_uris", "urn:ietf:wg:oauth:2.0:oob"),
            ("scopes", scopes),
        ])
        .send()
        .await
        .expect("create app")
        .json()
        .await
        .expect("app json");
    let token: Value = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .form(&[
            ("grant_type", "password"),
            ("client_id", created["client_id"].as_str().expect("id")),
            (
                "client_secret",
                created["client_secret"].as_str().expect("secret"),
            ),
            ("username", &user.username),
            ("password", "correct horse battery"),
            ("scope", scopes),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token: {token}"))
        .to_owned()
}

async fn subscribe(
    app: &TestApp,
    token: &str,
    endpoint: &str,
    keys: &Keys,
    data: Value,
    standard: bool,
) -> reqwest::Response {
    app.post_json(
        token,
        "/api/v1/push/subscription",
        json!({
            "subscription": {
                "endpoint": endpoint,
                "keys": { "p256dh": keys.p256dh, "auth": URL_SAFE_NO_PAD.encode(&keys.auth) },
                "standard": standard,
            },
            "data": data,
        }),
    )
    .await
}

async fn subscribed(app: &TestApp, token: &str, endpoint: &str, keys: &Keys, data: Value) -> Value {
    let res = subscribe(app, token, endpoint, keys, data, false).await;
    let status = res.status();
    let body = res.text().await.expect("body");
    assert!(status.is_success(), "subscribe: {status} {body}");
    serde_json::from_str(&body).expect("json")
}

fn allow_local_push(s: &mut starling_schema::settings::Settings) {
    s.push.allow_private_addresses = true;
    s.push.retry_first_ms = 50;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_arrives_encrypted_and_decrypts_to_mastodons_payload() {
    let mut app = spawn_app_with(allow_local_push).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let phone_token = push_token(&app, &alice, "read write push").await;
    let browser_token = push_token(&app, &alice, "read push").await;
    let mut phone = PushService::start().await;
    let mut browser = PushService::start().await;
    let (phone_keys, browser_keys) = (Keys::new(), Keys::new());

    let sub = subscribed(
        &app,
        &phone_token,
        &format!("{}/push/phone", phone.url),
        &phone_keys,
        json!({ "alerts": { "mention": true }, "policy": "all" }),
    )
    .await;
    assert_eq!(sub["alerts"]["mention"], true);
    assert_eq!(sub["alerts"]["follow"], false);
    assert_eq!(sub["policy"], "all");
    assert_eq!(sub["standard"], false);
    let server_key = sub["server_key"].as_str().expect("server_key").to_owned();
    let instance = app.get(&alice.token, "/api/v2/instance").await;
    assert_eq!(
        instance["configuration"]["vapid"]["public_key"], server_key,
        "the instance advertises the key subscriptions are answered with"
    );
    // A browser asking for RFC 8291 (Mastodon 4.4's `standard`).
    let res = subscribe(
        &app,
        &browser_token,
        &format!("{}/push/browser", browser.url),
        &browser_keys,
        json!({ "alerts": { "mention": true } }),
        true,
    )
    .await;
    assert!(res.status().is_success());
    let shown = app.get(&browser_token, "/api/v1/push/subscription").await;
    assert_eq!(shown["standard"], true);
    assert_eq!(shown["endpoint"], format!("{}/push/browser", browser.url));

    let started = Instant::now();
    app.status(&bob, "@alice lunch at noon?").await;
    let got = phone
        .next(Duration::from_secs(2))
        .await
        .expect("a push within 2 s");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(got.path, "/push/phone");
    assert_eq!(got.header("content-encoding"), Some("aesgcm"));
    assert!(got.header("ttl").is_some_and(|t| t.parse::<u64>().is_ok()));
    assert_eq!(got.header("urgency"), Some("high"));
    let crypto_key = got.header("crypto-key").expect("Crypto-Key");
    assert!(crypto_key.ends_with(&format!(";p256ecdsa={server_key}")));
    assert!(
        got.header("authorization")
            .is_some_and(|a| a.starts_with("WebPush ey"))
    );
    let payload = phone_keys.open(&got);
    let notes = app.get(&alice.token, "/api/v1/notifications").await;
    assert_eq!(payload["notification_id"], notes[0]["id"]);
    assert_eq!(got.header("topic"), notes[0]["id"].as_str());
    assert_eq!(payload["notification_type"], "mention");
    assert_eq!(payload["title"], "You were mentioned by bob");
    assert!(
        payload["body"]
            .as_str()
            .expect("body")
            .contains("lunch at noon?")
    );
    assert_eq!(payload["access_token"], phone_token.as_str());
    assert_eq!(payload["preferred_locale"], "en");
    assert!(payload["icon"].as_str().expect("icon").starts_with("http"));

    let got = browser
        .next(Duration::from_secs(2))
        .await
        .expect("a standard push");
    assert_eq!(got.header("content-encoding"), Some("aes128gcm"));
    let auth = got.header("authorization").expect("Authorization");
    assert!(auth.starts_with("vapid t=ey") && auth.ends_with(&format!("k={server_key}")));
    let payload = browser_keys.open(&got);
    assert_eq!(payload["access_token"], browser_token.as_str());
    assert_eq!(payload["notification_type"], "mention");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_policy_filter_and_a_gone_subscription_is_deleted() {
    let mut app = spawn_app_with(allow_local_push).await;
    let alice = app.register("alice").await;
    let carol = app.register("carol").await;
    let dave = app.register("dave").await;
    app.follow(&alice, &carol).await;
    let token = push_token(&app, &alice, "read push").await;
    let mut service = PushService::start().await;
    let keys = Keys::new();
    subscribed(
        &app,
        &token,
        &format!("{}/p", service.url),
        &keys,
        json!({ "alerts": { "mention": true, "favourite": false }, "policy": "followed" }),
    )
    .await;

    // Dave is not followed: the policy keeps his mention from the phone. Carol's favourite
    // is not an alert taken. Carol's mention goes through.
    app.status(&dave, "@alice hello from dave").await;
    let post = app.status(&alice, "a post to favourite").await;
    let id = post["id"].as_str().expect("id");
    let res = app
        .post_json(
            &carol.token,
            &format!("/api/v1/statuses/{id}/favourite"),
            json!({}),
        )
        .await;
    assert!(res.status().is_success());
    app.status(&carol, "@alice hello from carol").await;
    let got = service
        .next(Duration::from_secs(3))
        .await
        .expect("carol's mention");
    let payload = keys.open(&got);
    assert_eq!(payload["title"], "You were mentioned by carol");
    assert!(
        service.next(Duration::from_millis(800)).await.is_none(),
        "nothing else was pushed"
    );
    // Every notification exists all the same.
    let notes = app.get(&alice.token, "/api/v1/notifications").await;
    assert_eq!(notes.as_array().map(Vec::len), Some(3));

    // PUT changes the policy: now Dave gets through.
    let res = app
        .http
        .put(format!("{}/api/v1/push/subscription", app.base))
        .bearer_auth(&token)
        .json(&json!({ "data": { "policy": "all" } }))
        .send()
        .await
        .expect("PUT");
    let updated: Value = res.json().await.expect("json");
    assert_eq!(updated["policy"], "all");
    assert_eq!(
        updated["alerts"]["mention"], true,
        "alerts not named are kept"
    );

    // The push service says the subscription is gone: it is deleted.
    service.status.store(410, Ordering::SeqCst);
    app.status(&dave, "@alice are you there?").await;
    let got = service
        .next(Duration::from_secs(3))
        .await
        .expect("dave's mention");
    assert_eq!(keys.open(&got)["title"], "You were mentioned by dave");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let res = app.get_raw(&token, "/api/v1/push/subscription").await;
        if res.status() == 404 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gone subscription was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_push_service_does_not_delay_another() {
    let mut app = spawn_app_with(allow_local_push).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let (alice_token, bob_token) = (
        push_token(&app, &alice, "push").await,
        push_token(&app, &bob, "push").await,
    );
    let mut slow = PushService::start().await;
    slow.delay_ms.store(6_000, Ordering::SeqCst);
    let mut fast = PushService::start().await;
    let (alice_keys, bob_keys) = (Keys::new(), Keys::new());
    let mention = json!({ "alerts": { "mention": true } });
    subscribed(
        &app,
        &alice_token,
        &format!("{}/a", slow.url),
        &alice_keys,
        mention.clone(),
    )
    .await;
    subscribed(
        &app,
        &bob_token,
        &format!("{}/b", fast.url),
        &bob_keys,
        mention,
    )
    .await;

    // Alice's push service holds its requests for 6 s; Bob's answers at once.
    app.status(&carol, "@alice first").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    app.status(&carol, "@bob second").await;
    let got = fast
        .next(Duration::from_secs(2))
        .await
        .expect("bob's push, undelayed");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(bob_keys.open(&got)["body"], "@bob second");
    let got = slow
        .next(Duration::from_secs(8))
        .await
        .expect("alice's push, late");
    assert_eq!(alice_keys.open(&got)["body"], "@alice first");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_are_refused_and_revoking_the_token_removes_one() {
    let mut app = spawn_app_with(|s| s.push.allow_private_addresses = false).await;
    let alice = app.register("alice").await;
    let token = push_token(&app, &alice, "read push").await;
    let keys = Keys::new();
    let good = |endpoint: &str| {
        json!({
            "subscription": {
                "endpoint": endpoint,
                "keys": { "p256dh": keys.p256dh, "auth": URL_SAFE_NO_PAD.encode(&keys.auth) },
            },
            "data": { "alerts": { "mention": true } },
        })
    };
    let mut cases = vec![
        (
            "http to a public host",
            good("http://push.example.com/x"),
            422,
        ),
        (
            "a loopback endpoint in production",
            good("https://127.0.0.1/x"),
            422,
        ),
        (
            "a link-local endpoint",
            good("https://169.254.169.254/x"),
            422,
        ),
        ("no endpoint", json!({ "data": {} }), 422),
    ];
    let mut short_key = good("https://push.example.com/x");
    short_key["subscription"]["keys"]["p256dh"] = json!("BAAA");
    cases.push(("a short public key", short_key, 422));
    let mut off_curve = good("https://push.example.com/x");
    off_curve["subscription"]["keys"]["p256dh"] = json!(URL_SAFE_NO_PAD.encode([4u8; 65]));
    cases.push(("a point off the curve", off_curve, 422));
    let mut bad_auth = good("https://push.example.com/x");
    bad_auth["subscription"]["keys"]["auth"] = json!("not base64!");
    cases.push(("an auth secret that is not base64", bad_auth, 422));
    let mut unknown = good("https://push.example.com/x");
    unknown["data"]["alerts"]["mentions"] = json!(true);
    cases.push(("an unknown alert", unknown, 422));
    let mut policy = good("https://push.example.com/x");
    policy["data"]["policy"] = json!("friends");
    cases.push(("an unknown policy", policy, 422));
    for (what, body, want) in cases {
        let res = app
            .post_json(&token, "/api/v1/push/subscription", body)
            .await;
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("json error");
        assert_eq!(status, want, "{what}: {body}");
        assert!(body["error"].is_string(), "{what}: {body}");
    }
    // A token without the push scope.
    let res = app
        .post_json(
            &alice.token,
            "/api/v1/push/subscription",
            good("https://push.example.com/x"),
        )
        .await;
    assert_eq!(res.status(), 403);
    let res = app.get_raw(&alice.token, "/api/v1/push/subscription").await;
    assert_eq!(res.status(), 403);
    // Nothing subscribed yet.
    assert_eq!(
        app.get_raw(&token, "/api/v1/push/subscription")
            .await
            .status(),
        404
    );

    // A good one (a public push service name), then the token is revoked.
    let res = app
        .post_json(
            &token,
            "/api/v1/push/subscription",
            good("https://push.example.com/x"),
        )
        .await;
    assert!(res.status().is_success());
    let store = app.node().store.clone();
    let id: starling_schema::Id = alice.id.parse().expect("id");
    use starling_store::Store;
    assert_eq!(
        store.push_subscriptions_of(id).await.expect("read").len(),
        1
    );
    let res = app
        .http
        .post(format!("{}/oauth/revoke", app.base))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .expect("revoke");
    assert!(res.status().is_success());
    assert!(
        store
            .push_subscriptions_of(id)
            .await
            .expect("read")
            .is_empty()
    );
    app.stop().await;
}
