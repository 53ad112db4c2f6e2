//! `counters recount`: recompute every account's follower, following and status counts
//! from the rows they count, and fix those that drifted.

use anyhow::Context;
use serde::Serialize;
use starling_schema::Id;
use starling_schema::model::{AccountCounts, Page, Window};
use starling_store::{MAX_PAGE, Store};

use crate::command::CountersCommand;
use crate::{AccountPages, AdminContext, Outcome, Progress, concurrently};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: CountersCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        CountersCommand::Recount {
            dry_run,
            concurrency,
        } => recount(ctx, dry_run, concurrency, progress).await,
    }
}

/// Count every item of a paged list.
async fn count_pages<T, F, Fut>(mut read: F) -> anyhow::Result<u64>
where
    F: FnMut(Window) -> Fut,
    Fut: Future<Output = Result<Page<T>, starling_store::StoreError>>,
{
    let mut n = 0u64;
    let mut window = Window::oldest(MAX_PAGE);
    loop {
        let page = read(window).await?;
        n += page.items.len() as u64;
        match page.next {
            Some(next) => window = next,
            None => return Ok(n),
        }
    }
}

/// What the rows say `id`'s counts are.
async fn recounted(ctx: &AdminContext, id: Id) -> anyhow::Result<AccountCounts> {
    let store = &ctx.store;
    let followers = count_pages(|w| store.followers(id, w))
        .await
        .context("counting followers")?;
    let following = count_pages(|w| store.following(id, w))
        .await
        .context("counting follows")?;
    let statuses = count_pages(|w| store.posts_by_author(id, w))
        .await
        .context("counting statuses")?;
    Ok(AccountCounts {
        followers,
        following,
        statuses,
        last_status_at_ms: None,
    })
}

#[derive(Serialize)]
struct Recounted {
    accounts: u64,
    fixed: u64,
    dry_run: bool,
}

async fn recount(
    ctx: &AdminContext,
    dry_run: bool,
    concurrency: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    progress.start("accounts recounted", None);
    let (mut accounts, mut fixed) = (0u64, 0u64);
    let mut pages = AccountPages::new(ctx);
    while let Some(page) = pages.next().await? {
        let ids: Vec<Id> = page.iter().map(|a| a.id).collect();
        let stored = ctx
            .store
            .account_counts(&ids)
            .await
            .context("reading counts")?;
        let pairs: Vec<(Id, AccountCounts)> = ids.iter().copied().zip(stored).collect();
        let changed = concurrently(pairs, concurrency, |(id, have)| async move {
            let want = recounted(ctx, id).await?;
            let differs = (want.followers, want.following, want.statuses)
                != (have.followers, have.following, have.statuses);
            if differs && !dry_run {
                ctx.store
                    .set_account_counts(id, want)
                    .await
                    .context("writing counts")?;
            }
            anyhow::Ok(differs)
        })
        .await?;
        accounts += ids.len() as u64;
        fixed += changed.into_iter().filter(|c| *c).count() as u64;
        progress.advance(ids.len() as u64);
    }
    progress.finish();
    let summary = if dry_run {
        format!("{fixed} of {accounts} accounts have wrong counts (dry run)")
    } else {
        format!("recounted {accounts} accounts; fixed {fixed}")
    };
    Outcome::new(
        summary,
        Recounted {
            accounts,
            fixed,
            dry_run,
        },
    )
}
