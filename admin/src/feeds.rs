//! `feeds build | clear | inspect`: home timelines in Redis.

use anyhow::Context;
use serde::Serialize;
use starling_schema::Id;
use starling_schema::model::{Order, Window};

use crate::command::FeedsCommand;
use crate::{AccountPages, AdminContext, Outcome, Progress, concurrently};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: FeedsCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        FeedsCommand::Build {
            user, concurrency, ..
        } => each_feed(ctx, user, concurrency, false, Op::Build, progress).await,
        FeedsCommand::Clear {
            user,
            concurrency,
            dry_run,
            ..
        } => each_feed(ctx, user, concurrency, dry_run, Op::Clear, progress).await,
        FeedsCommand::Inspect { user } => inspect(ctx, &user).await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Build,
    Clear,
}

impl Op {
    async fn apply(self, ctx: &AdminContext, user: Id) -> anyhow::Result<()> {
        match self {
            Op::Build => ctx
                .timelines
                .rebuild(&ctx.store, user)
                .await
                .with_context(|| format!("rebuilding the timeline of {user}")),
            Op::Clear => ctx
                .timelines
                .clear(user)
                .await
                .with_context(|| format!("clearing the timeline of {user}")),
        }
    }
}

/// Build or clear one user's timeline (`user`) or everyone's (`None`).
async fn each_feed(
    ctx: &AdminContext,
    user: Option<String>,
    concurrency: usize,
    dry_run: bool,
    op: Op,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let verb = match op {
        Op::Build => "rebuilt",
        Op::Clear => "cleared",
    };
    if let Some(user) = user {
        let account = ctx.account(&user).await?;
        if !dry_run {
            op.apply(ctx, account.id).await?;
        }
        let summary = format!(
            "{}{verb} the home timeline of {}",
            if dry_run { "would have " } else { "" },
            account.username
        );
        return Outcome::new(
            summary,
            serde_json::json!({ "timelines": 1, "dry_run": dry_run }),
        );
    }
    progress.start(
        match op {
            Op::Build => "rebuilding timelines",
            Op::Clear => "clearing timelines",
        },
        None,
    );
    let mut done = 0u64;
    let mut pages = AccountPages::new(ctx);
    while let Some(page) = pages.next().await? {
        let n = page.len() as u64;
        if !dry_run {
            concurrently(page, concurrency, |a| op.apply(ctx, a.id)).await?;
        }
        done += n;
        progress.advance(n);
    }
    progress.finish();
    let summary = if dry_run {
        format!("would have {verb} {done} home timelines (dry run)")
    } else {
        format!("{verb} {done} home timelines")
    };
    Outcome::new(
        summary,
        serde_json::json!({ "timelines": done, "dry_run": dry_run }),
    )
}

#[derive(Serialize)]
struct Inspected {
    user: Id,
    username: String,
    shard: usize,
    shard_addr: String,
    exists: bool,
    length: usize,
    bytes: u64,
    newest: Option<Id>,
    oldest: Option<Id>,
}

async fn inspect(ctx: &AdminContext, user: &str) -> anyhow::Result<Outcome> {
    let account = ctx.account(user).await?;
    let t = &ctx.timelines;
    let shard = t.shard_of(account.id);
    let memory = t
        .memory(account.id)
        .await
        .context("measuring the timeline")?;
    let newest = t
        .range(account.id, Window::newest(1))
        .await
        .context("reading the timeline")?
        .and_then(|ids| ids.first().copied());
    let oldest_window = Window {
        order: Order::OldestFirst,
        ..Window::newest(1)
    };
    let oldest = t
        .range(account.id, oldest_window)
        .await
        .context("reading the timeline")?
        .and_then(|ids| ids.first().copied());
    let (bytes, length) = memory.unwrap_or((0, 0));
    let report = Inspected {
        user: account.id,
        username: account.username.clone(),
        shard,
        shard_addr: t.shard_addr(shard).unwrap_or_default().to_owned(),
        exists: memory.is_some(),
        length,
        bytes,
        newest,
        oldest,
    };
    let show = |id: Option<Id>| id.map_or_else(|| "-".to_owned(), |i| i.to_string());
    let lines = vec![
        format!("shard:   {} ({})", report.shard, report.shard_addr),
        format!("exists:  {}", report.exists),
        format!("length:  {}", report.length),
        format!("bytes:   {}", report.bytes),
        format!("newest:  {}", show(report.newest)),
        format!("oldest:  {}", show(report.oldest)),
    ];
    let summary = if report.exists {
        format!(
            "home timeline of {}: {} posts, {} bytes on shard {}",
            account.username, length, bytes, shard
        )
    } else {
        format!(
            "{} has no home timeline in Redis (it is built on the next read)",
            account.username
        )
    };
    Ok(Outcome::new(summary, report)?.with_lines(lines))
}
