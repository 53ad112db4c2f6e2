//! Streaming delivery on this machine, all parts co-located (server, Redis, NATS and the
//! clients holding the sockets): SOCKETS WebSocket clients, each signed in as a different
//! user who follows one author, stream `user`; the author posts POSTS statuses at RATE per
//! second; each delivery's latency is the time from the post's acknowledgement (HTTP 200)
//! to the `update` arriving on a socket (an update that beats the acknowledgement counts
//! as 0).
//!
//! `cargo bench -p starling --bench streaming` (env: SOCKETS=1000, POSTS=200, RATE=10).

use std::time::{Duration, Instant};

use futures::StreamExt;
use hdrhistogram::Histogram;
use starling::Role;
use starling_schema::model::{ImportAccount, NewToken};
use starling_store::Store;
use tokio_tungstenite::tungstenite::Message;

mod common;

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

/// The id of the status in an `update` event, if it is one.
fn update_id(text: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(text).ok()?;
    if event["event"] != "update" {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(event["payload"].as_str()?).ok()?;
    Some(status["id"].as_str()?.to_owned())
}

async fn run() {
    let sockets = env("SOCKETS", 1000) as usize;
    let posts = env("POSTS", 200);
    let rate = env("RATE", 10).max(1);

    let local = common::start(&[Role::Api, Role::Fanout]).await;
    let (node, store, _redis) = (local.node, local.store, local.redis);
    let addr = node.addr.expect("addr");
    let base = format!("http://{addr}");

    // The author and one follower per socket, with tokens, written to the store directly.
    let mut accounts = Vec::new();
    for start in (0..=sockets).step_by(1000) {
        let batch = (start..=sockets.min(start + 999))
            .map(|i| ImportAccount {
                username: format!("s{i}"),
                display_name: None,
                bot: false,
            })
            .collect();
        accounts.extend(store.import_accounts(batch).await.expect("accounts"));
    }
    let mut tokens = Vec::new();
    for a in &accounts {
        let t = store
            .issue_token(NewToken {
                account_id: Some(a.id),
                app_id: None,
                scopes: vec!["read".into(), "write".into()],
                expires_at_ms: None,
            })
            .await
            .expect("token");
        tokens.push(t.token);
    }
    let author = accounts[0].id;
    for a in &accounts[1..] {
        store.follow(a.id, author).await.expect("follow");
    }

    // Open the sockets; each reader records (status id, arrival) per update.
    let opened = Instant::now();
    let mut readers = Vec::new();
    for token in &tokens[1..] {
        let url = format!("ws://{addr}/api/v1/streaming?stream=user&access_token={token}");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        readers.push(tokio::spawn(async move {
            let mut ws = ws;
            let mut seen = Vec::new();
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Text(text) = msg
                    && let Some(id) = update_id(&text)
                {
                    seen.push((id, Instant::now()));
                }
            }
            seen
        }));
    }
    println!(
        "{sockets} sockets open in {:.1} s; posting {posts} statuses at {rate}/s",
        opened.elapsed().as_secs_f64()
    );

    // Post open loop; remember each acknowledgement.
    let client = reqwest::Client::new();
    let author_token = tokens[0].clone();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..posts {
        tokio::time::sleep_until((start + interval * i as u32).into()).await;
        let client = client.clone();
        let url = format!("{base}/api/v1/statuses");
        let token = author_token.clone();
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .json(&serde_json::json!({ "status": format!("streaming bench {i}") }))
                .send()
                .await
                .ok()?;
            let acked = Instant::now();
            let status: serde_json::Value = res.json().await.ok()?;
            Some((status["id"].as_str()?.to_owned(), acked))
        }));
    }
    let mut acked = std::collections::HashMap::new();
    for t in tasks {
        if let Ok(Some((id, at))) = t.await {
            acked.insert(id, at);
        }
    }
    // Let the last deliveries land, then close the server side so readers finish.
    tokio::time::sleep(Duration::from_secs(3)).await;
    node.stop().await;

    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut delivered = 0u64;
    for reader in readers {
        for (id, at) in reader.await.unwrap_or_default() {
            if let Some(ack) = acked.get(&id) {
                let micros = at.saturating_duration_since(*ack).as_micros();
                hist.record(u64::try_from(micros).unwrap_or(u64::MAX).max(1))
                    .ok();
                delivered += 1;
            }
        }
    }
    let expected = acked.len() as u64 * sockets as u64;
    println!(
        "delivered {delivered} of {expected} updates ({:.2}%); ack→update p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        100.0 * delivered as f64 / expected.max(1) as f64,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.9) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.value_at_quantile(0.999) as f64 / 1000.0,
        hist.max() as f64 / 1000.0,
    );
}
