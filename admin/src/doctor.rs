//! `doctor`: is every part of the installation answering, and is anything piling up?

use serde::Serialize;
use starling_store::{SCHEMA_VERSION, Store};

use crate::{AdminContext, Outcome};

/// Events waiting for a consumer beyond which `doctor` calls it behind.
const PENDING_WARN: u64 = 100_000;

#[derive(Serialize)]
struct Check {
    part: String,
    ok: bool,
    detail: String,
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    out.join(": ")
}

pub(crate) async fn run(ctx: &AdminContext) -> anyhow::Result<Outcome> {
    let mut checks = Vec::new();
    let mut check = |part: String, ok: bool, detail: String| {
        checks.push(Check { part, ok, detail });
    };
    match ctx.store.ping().await {
        Ok(()) => check(
            "store".into(),
            true,
            format!("answers; this build writes schema version {SCHEMA_VERSION}"),
        ),
        Err(e) => check("store".into(), false, e.to_string()),
    }
    let t = &ctx.timelines;
    for i in 0..t.shard_count() {
        let name = format!("redis shard {i} ({})", t.shard_addr(i).unwrap_or("?"));
        match t.shard_info(i).await {
            Ok(info) => check(
                name,
                true,
                format!("{} keys, {} bytes used", info.keys, info.used_memory),
            ),
            Err(e) => check(name, false, e.to_string()),
        }
    }
    let nats = &ctx.settings.nats;
    match ctx.bus.ping().await {
        Ok(()) => check(format!("nats ({})", nats.url), true, "answers".into()),
        Err(e) => check(format!("nats ({})", nats.url), false, e.to_string()),
    }
    let part = format!(
        "media storage ({})",
        starling_media::storage::AnyStorage::describe(&ctx.settings.media)
    );
    match starling_media::storage::AnyStorage::from_settings(&ctx.settings.media) {
        Ok(storage) => match starling_media::storage::MediaStorage::check(&storage).await {
            Ok(()) => check(part, true, "writes, reads back and removes a file".into()),
            Err(e) => check(part, false, format!("{e}: {}", chain(&e))),
        },
        Err(e) => check(part, false, format!("{e}: {}", chain(&e))),
    }
    let consumers = [
        ctx.settings.fanout.consumer.clone(),
        ctx.settings.search.consumer_name(ctx.settings.node_id),
        ctx.settings.media.consumer.clone(),
    ];
    for name in consumers {
        let part = format!("consumer {name} on stream {}", nats.stream);
        match ctx.bus.consumer_stats(&name).await {
            Ok(s) => check(
                part,
                s.pending < PENDING_WARN,
                format!(
                    "{} pending, {} unacked, {} redelivered{}",
                    s.pending,
                    s.ack_pending,
                    s.redelivered,
                    if s.pending >= PENDING_WARN {
                        " (falling behind: is its role running?)"
                    } else {
                        ""
                    }
                ),
            ),
            Err(e) => check(part, false, format!("{e} (has its role ever run?)")),
        }
    }
    let path = ctx.settings.search.path.clone();
    let index =
        tokio::task::spawn_blocking(move || starling_search::SearchIndex::open(&path)).await;
    let part = format!("search index ({})", ctx.settings.search.path.display());
    match index {
        Ok(Ok(index)) => check(part, true, format!("opens; {} documents", index.num_docs())),
        Ok(Err(e)) => check(part, false, e.to_string()),
        Err(e) => check(part, false, e.to_string()),
    }
    let bad: Vec<&Check> = checks.iter().filter(|c| !c.ok).collect();
    let lines = checks
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.part,
                c.detail
            )
        })
        .collect();
    let summary = if bad.is_empty() {
        format!("all {} checks passed", checks.len())
    } else {
        format!(
            "{} of {} checks failed: {}",
            bad.len(),
            checks.len(),
            bad.iter()
                .map(|c| c.part.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let failed = !bad.is_empty();
    let mut outcome = Outcome::new(summary, &checks)?.with_lines(lines);
    outcome.failed = failed;
    Ok(outcome)
}
