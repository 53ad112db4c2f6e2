//! One round of who-to-follow over a follow graph, measured: `seed` imports the accounts and
//! follows of an edge list (`u v` per line, u follows v, as `starling-bench graph` writes it)
//! into an embedded store with the store's bulk imports (what `starling admin graph import`
//! calls); `run` opens that store and a Redis, runs one whole round with `workers` suggestion
//! jobs sharing it (as that many discovery processes would), and prints the wall time, the
//! users computed and this process's peak resident memory (VmHWM from /proc/self/status).
//!
//! ```sh
//! cargo run --release -p starling-discovery --example suggest_bench -- seed g.txt DIR
//! cargo run --release -p starling-discovery --example suggest_bench -- run DIR redis://127.0.0.1:PORT [workers]
//! ```

use std::time::Instant;

use anyhow::Context;
use starling_discovery::{RoundReport, SuggestionJob};
use starling_schema::Id;
use starling_schema::model::ImportAccount;
use starling_schema::settings::{DiscoverySettings, EmbeddedSettings, Limits, RedisSettings};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_timeline::Timelines;

fn vm(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn open(dir: &str) -> anyhow::Result<EmbeddedStore> {
    let settings = EmbeddedSettings {
        path: dir.into(),
        fsync: false,
        cache_mib: 256,
    };
    Ok(EmbeddedStore::open(&settings, 0, Limits::default())?)
}

async fn seed(edges: &str, dir: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(edges).context("reading the edge list")?;
    let mut pairs = Vec::new();
    let mut users = 0u32;
    for line in text.lines() {
        let mut cols = line.split_whitespace();
        let (Some(u), Some(v)) = (cols.next(), cols.next()) else {
            continue;
        };
        let (u, v): (u32, u32) = (u.parse()?, v.parse()?);
        users = users.max(u + 1).max(v + 1);
        pairs.push((u, v));
    }
    let store = open(dir)?;
    let started = Instant::now();
    let mut ids: Vec<Id> = Vec::with_capacity(users as usize);
    for chunk in (0..users)
        .collect::<Vec<_>>()
        .chunks(starling_store::MAX_BATCH)
    {
        let batch = chunk
            .iter()
            .map(|n| ImportAccount {
                username: format!("g{n}"),
                display_name: None,
                bot: false,
            })
            .collect();
        ids.extend(store.import_accounts(batch).await?.iter().map(|a| a.id));
    }
    anyhow::ensure!(
        ids.len() == users as usize,
        "accounts already there? use an empty DIR"
    );
    for chunk in pairs.chunks(starling_store::MAX_PAGE) {
        let edges = chunk
            .iter()
            .map(|&(u, v)| (ids[u as usize], ids[v as usize]))
            .collect();
        store.import_follows(edges).await?;
    }
    println!(
        "seeded {users} accounts and {} follows in {:.1} s",
        pairs.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(dir: &str, redis: &str, workers: usize) -> anyhow::Result<()> {
    let store = open(dir)?;
    let timelines = Timelines::connect(&RedisSettings {
        shards: vec![redis.to_owned()],
        ..RedisSettings::default()
    })
    .await?;
    let settings = DiscoverySettings::default();
    println!(
        "before the round: VmHWM {}, VmRSS {}",
        vm("VmHWM"),
        vm("VmRSS")
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers.max(1) {
        let job = SuggestionJob::new(store.clone(), timelines.clone(), &settings);
        let timelines = timelines.clone();
        tasks.push(tokio::spawn(async move {
            let mut batches = 0usize;
            loop {
                match job.step().await? {
                    RoundReport::Batch { .. } => batches += 1,
                    RoundReport::Idle => {
                        let round = timelines.suggestion_round().await?;
                        if round.is_some_and(|r| r.finished_ms.is_some()) {
                            return Ok::<usize, anyhow::Error>(batches);
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    }
                }
            }
        }));
    }
    let mut batches = Vec::new();
    for t in tasks {
        batches.push(t.await??);
    }
    let elapsed = started.elapsed();
    let round = timelines
        .suggestion_round()
        .await?
        .context("no round was recorded")?;
    let info = timelines.shard_info(0).await?;
    let sample: Vec<usize> = {
        let page = store.scan_accounts(None, 1_000).await?;
        let mut sizes = Vec::new();
        for a in page.items {
            sizes.push(timelines.suggestions(a.id).await?.map_or(0, |l| l.len()));
        }
        sizes
    };
    let with_any = sample.iter().filter(|n| **n > 0).count();
    println!(
        "round of {} users in {:.1} s ({:.0} users/s) with {} job(s) (batches per job {:?})",
        round.users,
        elapsed.as_secs_f64(),
        round.users as f64 / elapsed.as_secs_f64(),
        workers,
        batches
    );
    println!(
        "after the round: VmHWM {}, VmRSS {}; Redis used_memory {} bytes, {} keys",
        vm("VmHWM"),
        vm("VmRSS"),
        info.used_memory,
        info.keys
    );
    println!(
        "first 1000 users: {with_any} have suggestions, {:.1} each on average",
        sample.iter().sum::<usize>() as f64 / sample.len().max(1) as f64
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed", edges, dir] => seed(edges, dir).await,
        ["run", dir, redis] => run(dir, redis, 1).await,
        ["run", dir, redis, workers] => run(dir, redis, workers.parse()?).await,
        _ => anyhow::bail!("usage: suggest_bench seed EDGES DIR | run DIR REDIS_URL [WORKERS]"),
    }
}
