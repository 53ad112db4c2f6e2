//! The core path measured on this machine, all parts co-located: post accept latency and
//! home read latency at steady open-loop rates (latency counted from the intended send
//! time, so a stalled server cannot hide its queue), fan-out inserts per second against the
//! pipelined ZADD ceiling of the same Redis (`redis-benchmark -P 32`), and Redis bytes per
//! timeline entry.
//!
//! `cargo bench -p starling --bench core_path` (env: POST_RATE, READ_RATE, SECONDS,
//! FOLLOWERS to change the load). The full harness with sweeps and charts is
//! `starling-bench`; this is the quick check for the core path.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use starling::Role;
use starling_schema::Id;
use starling_schema::model::{ImportAccount, NewToken, Window};
use starling_store::{AnyStore, Store};

use tokio::sync::Mutex;

mod common;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Seeded {
    tokens: Vec<String>,
    ids: Vec<Id>,
}

async fn seed(
    store: &AnyStore,
    node: &starling::Node,
    users: usize,
    follows_each: usize,
) -> Seeded {
    let mut ids = Vec::new();
    for start in (0..users).step_by(1000) {
        let batch = (start..users.min(start + 1000))
            .map(|i| ImportAccount {
                username: format!("bench{i}"),
                display_name: None,
                bot: false,
            })
            .collect();
        ids.extend(
            store
                .import_accounts(batch)
                .await
                .expect("import")
                .into_iter()
                .map(|a| a.id),
        );
    }
    let mut tokens = Vec::new();
    for id in &ids {
        let t = store
            .issue_token(NewToken {
                account_id: Some(*id),
                app_id: None,
                scopes: vec!["read".into(), "write".into(), "follow".into()],
                expires_at_ms: None,
            })
            .await
            .expect("token");
        tokens.push(t.token);
        node.timelines.create_empty(*id).await.expect("timeline");
    }
    // A deterministic sparse graph: user i follows the next `follows_each` users.
    for (i, id) in ids.iter().enumerate() {
        for k in 1..=follows_each {
            store.follow(*id, ids[(i + k * 7) % ids.len()]).await.ok();
        }
    }
    Seeded { tokens, ids }
}

/// Send `rate` requests per second for `seconds`, each from its intended start time.
async fn open_loop<F, Fut>(rate: u64, seconds: u64, make: F) -> (Histogram<u64>, u64)
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("histogram")));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let intended = start + interval * i as u32;
        tokio::time::sleep_until(intended.into()).await;
        let fut = make(i);
        let hist = hist.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let ok = fut.await;
            let micros = intended.elapsed().as_micros() as u64;
            if !ok {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            hist.lock().await.record(micros.max(1)).ok();
        }));
    }
    for t in tasks {
        t.await.ok();
    }
    let hist = hist.lock().await.clone();
    (hist, errors.load(std::sync::atomic::Ordering::Relaxed))
}

fn report(name: &str, rate: u64, h: &Histogram<u64>, errors: u64) {
    println!(
        "{name:<28} target {rate:>6}/s  n={:<7} p50 {:>8.2} ms  p99 {:>8.2} ms  p99.9 {:>8.2} ms  max {:>8.2} ms  errors {errors}",
        h.len(),
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.value_at_quantile(0.999) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    );
}

fn zadd_ceiling(port: u16) -> Option<f64> {
    let out = std::process::Command::new("redis-benchmark")
        .args([
            "-p",
            &port.to_string(),
            "-P",
            "32",
            "-n",
            "2000000",
            "-r",
            "100000",
            "-q",
            "-t",
            "zadd",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Progress lines end in \r; the last one is "ZADD: 812345.67 requests per second, ...".
    let line = text
        .split(['\r', '\n'])
        .rev()
        .find(|l| l.contains("requests per second"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let post_rate = env("POST_RATE", 200);
    let read_rate = env("READ_RATE", 1000);
    let seconds = env("SECONDS", 10);
    let followers = env("FOLLOWERS", 50_000) as usize;

    let local = common::start(&Role::all()).await;
    let (node, store, redis) = (local.node, local.store, local.redis);
    let base = format!("http://{}", node.addr.expect("addr"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("client");
    while !client
        .get(format!("{base}/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!(
        "machine: {} cores; all parts on this machine (1 Redis, NATS, embedded store, api + fanout)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let seeded = Arc::new(seed(&store, &node, 1000, 20).await);

    // Warm up hydration caches and connections.
    let _ = open_loop(200, 2, |i| {
        read(client.clone(), base.clone(), seeded.clone(), i)
    })
    .await;

    let (h, e) = open_loop(post_rate, seconds, |i| {
        post(client.clone(), base.clone(), seeded.clone(), i)
    })
    .await;
    report("post accept", post_rate, &h, e);
    let (h, e) = open_loop(read_rate, seconds, |i| {
        read(client.clone(), base.clone(), seeded.clone(), i)
    })
    .await;
    report("home read (20 statuses)", read_rate, &h, e);

    // Fan-out: one author with many followers whose timelines exist.
    let star = store
        .import_accounts(vec![ImportAccount {
            username: "star".into(),
            display_name: None,
            bot: false,
        }])
        .await
        .expect("star")[0]
        .id;
    let fans: Vec<Id> = {
        let mut fans = Vec::new();
        for start in (0..followers).step_by(1000) {
            let batch = (start..followers.min(start + 1000))
                .map(|i| ImportAccount {
                    username: format!("fan{i}"),
                    display_name: None,
                    bot: false,
                })
                .collect();
            fans.extend(
                store
                    .import_accounts(batch)
                    .await
                    .expect("fans")
                    .into_iter()
                    .map(|a| a.id),
            );
        }
        fans
    };
    for f in &fans {
        store.follow(*f, star).await.expect("follow");
        node.timelines.create_empty(*f).await.expect("timeline");
    }
    let star_token = store
        .issue_token(NewToken {
            account_id: Some(star),
            app_id: None,
            scopes: vec!["write".into()],
            expires_at_ms: None,
        })
        .await
        .expect("token")
        .token;
    let posts = 10;
    let last_fan = *fans.last().expect("fans");
    let started = Instant::now();
    let mut last_post = None;
    for i in 0..posts {
        let res: serde_json::Value = client
            .post(format!("{base}/api/v1/statuses"))
            .bearer_auth(&star_token)
            .json(&serde_json::json!({ "status": format!("to all my fans {i}") }))
            .send()
            .await
            .expect("post")
            .json()
            .await
            .expect("json");
        last_post = res["id"].as_str().and_then(|s| s.parse().ok()).map(Id);
    }
    let last_post = last_post.expect("posted");
    loop {
        let page = node
            .timelines
            .range(last_fan, Window::newest(1))
            .await
            .expect("range");
        if page.is_some_and(|ids| ids.first() == Some(&last_post)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "fan-out did not finish"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let inserts = (followers as f64 + 1.0) * posts as f64;
    let rate = inserts / elapsed;
    println!(
        "fan-out: {posts} posts x {followers} followers = {inserts:.0} inserts in {elapsed:.2} s = {rate:.0} inserts/s"
    );
    if let Some(ceiling) = zadd_ceiling(redis.servers()[0].port()) {
        println!(
            "redis-benchmark -P 32 ZADD on the same Redis: {ceiling:.0}/s; fan-out reaches {:.0}% of it",
            100.0 * rate / ceiling
        );
    }
    if let Ok(Some((bytes, entries))) = node.timelines.memory(seeded.ids[0]).await {
        let full = node.timelines.memory(last_fan).await.ok().flatten();
        println!(
            "timeline memory: {bytes} bytes for {entries} entries; a fan's timeline: {full:?}"
        );
    }
    // A full timeline: cap entries.
    let probe = fans[0];
    let many: Vec<Id> = (1..=800u64).map(|i| Id((1u64 << 40) + i)).collect();
    node.timelines.merge(probe, &many).await.expect("merge");
    if let Ok(Some((bytes, entries))) = node.timelines.memory(probe).await {
        println!(
            "full timeline: {bytes} bytes / {entries} entries = {:.1} bytes per entry",
            bytes as f64 / entries as f64
        );
    }
    node.stop().await;
}

async fn post(client: reqwest::Client, base: String, s: Arc<Seeded>, i: u64) -> bool {
    let token = &s.tokens[(i as usize * 31) % s.tokens.len()];
    client
        .post(format!("{base}/api/v1/statuses"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "status": format!("benchmark post {i} with some text #bench") }))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

async fn read(client: reqwest::Client, base: String, s: Arc<Seeded>, i: u64) -> bool {
    let token = &s.tokens[(i as usize * 17) % s.tokens.len()];
    match client
        .get(format!("{base}/api/v1/timelines/home?limit=20"))
        .bearer_auth(token)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}
