//! `shards status | rebalance`: the Redis shards that hold home timelines.
//!
//! Rebalancing computes the ring with the shard added (or removed) and walks every
//! timeline on the current shards (`SCAN`); a timeline whose owner changes is moved whole
//! (`DUMP`/`RESTORE`, then deleted at the source), and the others are left alone. A
//! re-run finds nothing more to move. Posts fanned out to a timeline while it moves may
//! miss it; run it while fan-out is quiet, or `feeds build` the users afterwards.

use anyhow::Context;
use serde::Serialize;
use starling_timeline::{Ring, Timelines};

use crate::command::ShardsCommand;
use crate::{AccountPages, AdminContext, Outcome, Progress, concurrently};

/// Keys asked per `SCAN` step.
const SCAN_COUNT: usize = 1_000;

pub(crate) async fn run(
    ctx: &AdminContext,
    command: ShardsCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        ShardsCommand::Status => status(ctx, progress).await,
        ShardsCommand::Rebalance {
            add,
            remove,
            dry_run,
            concurrency,
        } => rebalance(ctx, add, remove, dry_run, concurrency, progress).await,
    }
}

#[derive(Serialize)]
struct ShardStatus {
    index: usize,
    addr: String,
    reachable: bool,
    error: Option<String>,
    keys: u64,
    used_memory: u64,
    /// Accounts the ring assigns to this shard.
    users: u64,
}

async fn status(ctx: &AdminContext, progress: &dyn Progress) -> anyhow::Result<Outcome> {
    let t = &ctx.timelines;
    let mut shards = Vec::with_capacity(t.shard_count());
    for index in 0..t.shard_count() {
        let (reachable, error, keys, used_memory) = match t.shard_info(index).await {
            Ok(info) => (true, None, info.keys, info.used_memory),
            Err(e) => (false, Some(e.to_string()), 0, 0),
        };
        shards.push(ShardStatus {
            index,
            addr: t.shard_addr(index).unwrap_or_default().to_owned(),
            reachable,
            error,
            keys,
            used_memory,
            users: 0,
        });
    }
    progress.start("assigning accounts", None);
    let mut total = 0u64;
    let mut pages = AccountPages::new(ctx);
    while let Some(page) = pages.next().await? {
        for account in &page {
            if let Some(s) = shards.get_mut(t.shard_of(account.id)) {
                s.users += 1;
            }
        }
        total += page.len() as u64;
        progress.advance(page.len() as u64);
    }
    progress.finish();
    let lines = shards
        .iter()
        .map(|s| {
            format!(
                "{} {:<32} {:<11} keys {:<9} memory {:<12} users {}{}",
                s.index,
                s.addr,
                if s.reachable { "up" } else { "UNREACHABLE" },
                s.keys,
                s.used_memory,
                s.users,
                s.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let down = shards.iter().filter(|s| !s.reachable).count();
    let summary = format!(
        "{} shards, {} reachable, {total} accounts",
        shards.len(),
        shards.len() - down
    );
    let mut outcome = Outcome::new(summary, &shards)?.with_lines(lines);
    outcome.failed = down > 0;
    Ok(outcome)
}

#[derive(Serialize)]
struct Rebalanced {
    shards: Vec<String>,
    scanned: u64,
    moved: u64,
    dry_run: bool,
}

async fn rebalance(
    ctx: &AdminContext,
    add: Option<String>,
    remove: Option<String>,
    dry_run: bool,
    concurrency: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let source = &ctx.timelines;
    let mut next = ctx.settings.redis.shards.clone();
    match (add, remove) {
        (Some(addr), None) => {
            if source.shard_index(&addr).is_none() {
                next.push(addr);
            } else {
                progress.note("that shard is already in redis.shards; moving what the ring says");
            }
        }
        (None, Some(addr)) => {
            let i = source
                .shard_index(&addr)
                .with_context(|| format!("{addr} is not in redis.shards"))?;
            next.remove(i);
            anyhow::ensure!(!next.is_empty(), "cannot remove the last shard");
        }
        _ => anyhow::bail!("give exactly one of --add ADDR or --remove ADDR"),
    }
    let mut settings = ctx.settings.redis.clone();
    settings.shards = next.clone();
    let target = Timelines::connect(&settings)
        .await
        .context("connecting to the shards of the new ring")?;
    for (i, ping) in target.ping_all().await.into_iter().enumerate() {
        ping.with_context(|| {
            format!(
                "shard {} of the new ring is unreachable",
                target.shard_addr(i).unwrap_or("?")
            )
        })?;
    }
    let target = &target;
    progress.start(
        if dry_run {
            "timelines checked"
        } else {
            "timelines checked (moving those whose shard changes)"
        },
        None,
    );
    let (mut scanned, mut moved) = (0u64, 0u64);
    for shard in 0..source.shard_count() {
        let addr = source.shard_addr(shard).unwrap_or_default().to_owned();
        let mut cursor = 0;
        loop {
            let page = source
                .scan_timelines(shard, cursor, SCAN_COUNT)
                .await
                .with_context(|| format!("listing the timelines on {addr}"))?;
            scanned += page.users.len() as u64;
            let moving: Vec<_> = page
                .users
                .iter()
                .map(|u| (*u, target.shard_of(*u)))
                .filter(|(_, to)| target.shard_addr(*to) != Some(addr.as_str()))
                .collect();
            if dry_run {
                moved += moving.len() as u64;
            } else {
                let done = concurrently(moving, concurrency, |(user, to)| async move {
                    source
                        .move_timeline(user, shard, target, to)
                        .await
                        .with_context(|| format!("moving the timeline of {user}"))
                })
                .await?;
                moved += done.into_iter().filter(|d| *d).count() as u64;
            }
            progress.advance(page.users.len() as u64);
            cursor = page.next;
            if cursor == 0 {
                break;
            }
        }
    }
    progress.finish();
    let ring = Ring::new(&next, settings.virtual_nodes);
    let names: Vec<String> = (0..ring.shard_count())
        .filter_map(|i| ring.shard_name(i).map(|n| format!("{n:?}")))
        .collect();
    let line = format!("shards = [{}]", names.join(", "));
    let lines = vec![
        "now set, under [redis] in the config of every node, and restart them:".to_owned(),
        format!("  {line}"),
        "(credentials, if your shard URLs carry them, are left out above)".to_owned(),
    ];
    let summary = if dry_run {
        format!("would move {moved} of {scanned} timelines (dry run)")
    } else {
        format!("moved {moved} of {scanned} timelines")
    };
    Ok(Outcome::new(
        summary,
        Rebalanced {
            shards: next,
            scanned,
            moved,
            dry_run,
        },
    )?
    .with_lines(lines))
}
