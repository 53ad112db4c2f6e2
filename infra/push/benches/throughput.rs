//! Push throughput on this machine: the push worker's whole path for one notification (the
//! recipient's subscriptions, accounts and tokens from the embedded store, the payload,
//! encryption, VAPID signing, an HTTP/1.1 POST) to a push service on loopback that answers
//! 201 at once. JetStream delivery is left out: the worker pulls events in batches, so it
//! adds little per notification; what is measured is what a push costs.
//!
//! `cargo bench -p starling-push --bench throughput` (env: NOTIFICATIONS=5000,
//! SUBSCRIPTIONS=1 per recipient, CONCURRENCY=64 notifications in flight, STANDARD=0|1).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use p256::SecretKey;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use starling_push::{Deliverer, Outcome, PushWorker, VapidKey};
use starling_schema::Id;
use starling_schema::model::{ImportAccount, NewToken, Notification, NotificationKind};
use starling_schema::push::{Alerts, PushPolicy, PushSubscription};
use starling_schema::settings::{EmbeddedSettings, Limits, PushSettings};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// A push service on loopback: answers every request 201, counts them.
async fn push_service(count: Arc<AtomicU64>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/push", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut read = BufReader::new(read);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if read.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let h = line.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((n, v)) = h.split_once(':')
                            && n.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if read.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    if write
                        .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    url
}

async fn run() {
    let total = env("NOTIFICATIONS", 5_000);
    let per_user = env("SUBSCRIPTIONS", 1);
    let concurrency = env("CONCURRENCY", 64) as usize;
    let standard = env("STANDARD", 0) == 1;
    let received = Arc::new(AtomicU64::new(0));
    let endpoint = push_service(Arc::clone(&received)).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let settings = EmbeddedSettings {
        path: dir.path().join("store"),
        fsync: false,
        cache_mib: 64,
    };
    let store = EmbeddedStore::open(&settings, 1, Limits::default()).expect("store");
    let accounts = store
        .import_accounts(
            ["recipient", "actor"]
                .iter()
                .map(|u| ImportAccount {
                    username: (*u).into(),
                    display_name: None,
                    bot: false,
                })
                .collect(),
        )
        .await
        .expect("accounts");
    let (recipient, actor) = (accounts[0].id, accounts[1].id);
    let push = PushSettings {
        allow_private_addresses: true,
        per_host: 64,
        ..PushSettings::default()
    };
    let vapid = VapidKey::from_private(&VapidKey::generate()).expect("vapid");
    for i in 0..per_user {
        let issued = store
            .issue_token(NewToken {
                account_id: Some(recipient),
                app_id: None,
                scopes: vec!["push".into()],
                expires_at_ms: None,
            })
            .await
            .expect("token");
        let key = SecretKey::random(&mut rand::rngs::OsRng);
        store
            .save_push_subscription(PushSubscription {
                id: Id(i + 1),
                account_id: recipient,
                token_hash: starling_store::token_digest(&issued.token),
                endpoint: endpoint.clone(),
                p256dh: URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false)),
                auth: URL_SAFE_NO_PAD.encode([7u8; 16]),
                alerts: Alerts::from_pairs([("mention", true)]).expect("alerts"),
                policy: PushPolicy::All,
                standard,
                sealed_token: vapid.seal(&issued.token).expect("seal"),
                created_at_ms: 0,
            })
            .await
            .expect("subscription");
    }
    let deliverer =
        Deliverer::new(vapid, "mailto:bench@example.org".into(), &push).expect("client");
    let worker = PushWorker::new(store, deliverer, &push, "http://127.0.0.1");

    let started = Instant::now();
    let delivered = futures::stream::iter(0..total)
        .map(|i| {
            let worker = worker.clone();
            async move {
                let n = Notification {
                    id: Id((i + 1) << 16),
                    account_id: recipient,
                    kind: NotificationKind::Mention,
                    from_account_id: actor,
                    post_id: None,
                    created_at_ms: 0,
                };
                let report = worker.push(&n).await.expect("push");
                report
                    .outcomes
                    .iter()
                    .filter(|(_, o)| *o == Outcome::Delivered)
                    .count() as u64
            }
        })
        .buffer_unordered(concurrency)
        .fold(0u64, |sum, n| async move { sum + n })
        .await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(delivered, total * per_user, "every push delivered");
    assert_eq!(received.load(Ordering::Relaxed), total * per_user);
    println!(
        "push throughput ({}): {total} notifications x {per_user} subscriptions in {secs:.2} s = {:.0} notifications/s, {:.0} pushes/s (concurrency {concurrency})",
        if standard { "aes128gcm" } else { "aesgcm" },
        total as f64 / secs,
        (total * per_user) as f64 / secs,
    );
}
