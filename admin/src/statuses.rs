//! `statuses remove | purge`: moderation. A removed status is tombstoned in the store and
//! its `post.deleted` event makes fan-out take it out of every timeline and the indexers out
//! of every search index.

use anyhow::Context;
use serde::Serialize;
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::ids::now_ms;
use starling_schema::model::Post;
use starling_store::{MAX_BATCH, Store};

use crate::command::StatusesCommand;
use crate::{AdminContext, Outcome, Progress, concurrently};

const DAY_MS: u64 = 86_400_000;

pub(crate) async fn run(
    ctx: &AdminContext,
    command: StatusesCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        StatusesCommand::Remove { id } => remove(ctx, &id).await,
        StatusesCommand::Purge {
            older_than,
            dry_run,
            concurrency,
        } => purge(ctx, older_than, dry_run, concurrency, progress).await,
    }
}

/// Tombstone one post and publish its delete, so fan-out and the indexers forget it.
/// The post if it was live.
pub(crate) async fn delete(ctx: &AdminContext, id: Id) -> anyhow::Result<Option<Post>> {
    let Some(post) = ctx
        .store
        .delete_post(id)
        .await
        .context("deleting a status")?
    else {
        return Ok(None);
    };
    ctx.publish(Event::PostDeleted {
        post_id: post.id,
        author_id: post.author_id,
        visibility: post.visibility,
        reblog_of: post.reblog_of,
        mentions: post.mentions.clone(),
    })
    .await?;
    Ok(Some(post))
}

async fn remove(ctx: &AdminContext, id: &str) -> anyhow::Result<Outcome> {
    let id: Id = id
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{id:?} is not a status id"))?;
    let post = delete(ctx, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no status {id} (unknown or already removed)"))?;
    Outcome::new(
        format!("removed status {id} by account {}", post.author_id),
        &post,
    )
}

#[derive(Serialize)]
struct Purged {
    scanned: u64,
    removed: u64,
    dry_run: bool,
}

async fn purge(
    ctx: &AdminContext,
    days: u64,
    dry_run: bool,
    concurrency: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(days > 0, "--older-than must be at least 1 day");
    let cutoff = now_ms().saturating_sub(days.saturating_mul(DAY_MS));
    progress.start("scanning statuses", None);
    let (mut scanned, mut removed) = (0u64, 0u64);
    let mut after = None;
    loop {
        let page = ctx
            .store
            .scan_posts(after, MAX_BATCH)
            .await
            .context("scanning statuses")?;
        scanned += page.items.len() as u64;
        let old: Vec<Id> = page
            .items
            .iter()
            .filter(|p| p.created_at_ms < cutoff)
            .map(|p| p.id)
            .collect();
        if dry_run {
            removed += old.len() as u64;
        } else {
            let gone = concurrently(old, concurrency, |id| async move {
                Ok(delete(ctx, id).await?.is_some())
            })
            .await?;
            removed += gone.into_iter().filter(|g| *g).count() as u64;
        }
        progress.advance(page.items.len() as u64);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    progress.finish();
    let summary = if dry_run {
        format!("would remove {removed} of {scanned} statuses older than {days} days (dry run)")
    } else {
        format!("removed {removed} of {scanned} statuses older than {days} days")
    };
    Outcome::new(
        summary,
        Purged {
            scanned,
            removed,
            dry_run,
        },
    )
}
