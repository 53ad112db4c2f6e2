//! Search measurements on this machine: indexing rate, query latency over a large index,
//! and freshness (post published → found) under a steady post load through a real NATS.
//!
//! `cargo bench -p starling-search --bench search`; env `POSTS` (default 1,000,000),
//! `QUERIES` (default 2,000), `RATE` posts/s and `SECONDS` for the freshness run (200, 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use starling_bus::{Bus, new_event_id};
use starling_schema::Id;
use starling_schema::events::{Envelope, Event};
use starling_schema::ids::now_ms;
use starling_schema::model::{Post, Visibility};
use starling_schema::settings::{NatsSettings, SearchSettings};
use starling_search::{Change, Indexer, SearchIndex, StatusQuery};
use starling_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A Zipf-ish vocabulary: a few common words, many rare ones.
fn vocabulary() -> Vec<String> {
    let base = [
        "coffee", "garden", "rust", "music", "train", "weather", "photo", "cat", "dog", "book",
        "movie", "travel", "city", "river", "mountain", "code", "bread", "night", "morning",
        "game",
    ];
    let mut words: Vec<String> = base.iter().map(|w| w.to_string()).collect();
    for i in 0..20_000 {
        words.push(format!("w{i:05}x"));
    }
    words
}

fn word<'a>(rng: &mut StdRng, vocab: &'a [String]) -> &'a str {
    // Squaring skews toward the front of the list.
    let r: f64 = rng.r#gen();
    let i = ((r * r * r) * vocab.len() as f64) as usize;
    &vocab[i.min(vocab.len() - 1)]
}

fn post(id: Id, text: String, tag: Option<String>) -> Post {
    Post {
        id,
        author_id: Id(id.0 % 1000),
        text,
        spoiler_text: String::new(),
        sensitive: false,
        visibility: Visibility::Public,
        in_reply_to_id: None,
        in_reply_to_account_id: None,
        reblog_of: None,
        mentions: vec![],
        hashtags: tag.into_iter().collect(),
        language: None,
        created_at_ms: id.unix_ms(),
        edited_at_ms: None,
        poll_id: None,
    }
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    let posts = env("POSTS", 1_000_000);
    let queries = env("QUERIES", 2_000);
    let dir = tempfile::tempdir()?;
    let index = SearchIndex::open(&dir.path().join("bulk"))?;
    let vocab = vocabulary();
    let mut rng = StdRng::seed_from_u64(7);

    // --- indexing rate -------------------------------------------------------------------
    let mut writer = index.writer(256)?;
    let start_ms = now_ms() - posts; // one post per millisecond, ending now
    let started = Instant::now();
    for i in 0..posts {
        let n = 8 + (i % 12) as usize;
        let text: Vec<&str> = (0..n).map(|_| word(&mut rng, &vocab)).collect();
        let tag = (i % 10 == 0).then(|| format!("tag{}", i % 500));
        let id = Id(((start_ms + i) << 16) | 1);
        index.apply(
            &writer,
            &Change::Post(Box::new(post(id, text.join(" "), tag))),
        )?;
        if (i + 1) % 200_000 == 0 {
            index.commit(&mut writer)?;
        }
    }
    index.commit(&mut writer)?;
    let took = started.elapsed();
    println!(
        "indexed {posts} posts in {:.1} s: {:.0} posts/s (docs {})",
        took.as_secs_f64(),
        posts as f64 / took.as_secs_f64(),
        index.num_docs()
    );
    drop(writer);

    // --- query latency -------------------------------------------------------------------
    let mut h = Histogram::<u64>::new(3)?;
    let mut hits = 0usize;
    for i in 0..queries {
        let q = match i % 4 {
            0 => word(&mut rng, &vocab).to_owned(),
            1 => format!("{} {}", word(&mut rng, &vocab), word(&mut rng, &vocab)),
            2 => format!("#tag{}", i % 500),
            _ => vocab[rng.gen_range(0..20)].clone(),
        };
        let mut sq = StatusQuery::parse(&q);
        sq.limit = 20;
        let t = Instant::now();
        hits += index.statuses(&sq)?.len();
        h.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "{queries} status queries over {posts} posts: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({hits} hits)",
        pct(&h, 0.5),
        pct(&h, 0.99),
        h.max() as f64 / 1000.0
    );
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..500 {
        let t = Instant::now();
        index.hashtags(&format!("tag{}", i % 50), 10, 0)?;
        h.record(t.elapsed().as_micros() as u64)?;
    }
    println!(
        "hashtag prefix queries: p50 {:.2} ms, p99 {:.2} ms",
        pct(&h, 0.5),
        pct(&h, 0.99)
    );

    // --- freshness under a steady load ---------------------------------------------------
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(freshness(dir.path().join("live")))
}

async fn freshness(path: std::path::PathBuf) -> anyhow::Result<()> {
    let rate = env("RATE", 200);
    let seconds = env("SECONDS", 10);
    let nats = NatsServer::start()?;
    let bus = Bus::connect(&NatsSettings {
        url: nats.url(),
        ..NatsSettings::default()
    })
    .await?;
    while bus.ensure_stream().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let settings = SearchSettings {
        path: path.clone(),
        consumer: "search-bench".into(),
        ..SearchSettings::default()
    };
    let index = SearchIndex::open(&path)?;
    let shutdown = CancellationToken::new();
    let indexer = Indexer::new(index.clone(), &settings, 1);
    let task = tokio::spawn(indexer.run(bus.clone(), shutdown.clone()));
    let h = Arc::new(std::sync::Mutex::new(Histogram::<u64>::new(3)?));
    let mut checkers = tokio::task::JoinSet::new();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut tick = tokio::time::interval(interval);
    let total = rate * seconds;
    for i in 0..total {
        tick.tick().await;
        let marker = format!("fresh{i}z");
        let id = Id((now_ms() << 16) | (i & 0xffff));
        let p = post(id, format!("steady load {marker}"), None);
        let published = Instant::now();
        bus.publish(&Envelope::new(
            new_event_id(),
            Event::PostCreated { post: p },
            now_ms(),
        ))
        .await?;
        // Every 10th post is watched until it is searchable.
        if i % 10 == 0 {
            let (index, h) = (index.clone(), h.clone());
            checkers.spawn(async move {
                let q = StatusQuery::parse(&marker);
                loop {
                    if index.statuses(&q).is_ok_and(|r| !r.is_empty()) {
                        let ms = published.elapsed().as_micros() as u64;
                        if let Ok(mut h) = h.lock() {
                            let _ = h.record(ms);
                        }
                        return;
                    }
                    if published.elapsed() > Duration::from_secs(30) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
    }
    while checkers.join_next().await.is_some() {}
    shutdown.cancel();
    let _ = task.await;
    let h = h.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!(
        "freshness at {rate} posts/s for {seconds} s (commit every {} ms): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} sampled)",
        settings.commit_interval_ms,
        pct(&h, 0.5),
        pct(&h, 0.99),
        h.max() as f64 / 1000.0,
        h.len()
    );
    Ok(())
}
