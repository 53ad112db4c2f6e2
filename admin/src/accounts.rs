//! `accounts create | list | show | suspend | unsuspend | delete`.

use anyhow::Context;
use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::Serialize;
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{Account, AccountCounts, NewAccount, Role, Window};
use starling_store::{MAX_BATCH, MAX_PAGE, Store};

use crate::command::{AccountsCommand, RoleArg};
use crate::{AdminContext, Forget, Outcome, Progress};

/// Length of a generated password.
const RANDOM_PASSWORD_CHARS: usize = 24;

pub(crate) async fn run(
    ctx: &AdminContext,
    command: AccountsCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        AccountsCommand::Create {
            user,
            email,
            password,
            random_password,
            role,
        } => create(ctx, user, email, password, random_password, role, progress).await,
        AccountsCommand::List { limit } => list(ctx, limit).await,
        AccountsCommand::Show { user } => show(ctx, &user).await,
        AccountsCommand::Suspend { user } => set_suspended(ctx, &user, true).await,
        AccountsCommand::Unsuspend { user } => set_suspended(ctx, &user, false).await,
        AccountsCommand::Delete { user, dry_run } => delete(ctx, &user, dry_run, progress).await,
    }
}

#[derive(Serialize)]
struct Created {
    account: Account,
    /// Only when generated: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

async fn create(
    ctx: &AdminContext,
    username: String,
    email: Option<String>,
    password: Option<String>,
    random_password: bool,
    role: RoleArg,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let (password, generated) = match (password, random_password) {
        (Some(p), false) => (p, false),
        (None, true) => {
            let p: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(RANDOM_PASSWORD_CHARS)
                .map(char::from)
                .collect();
            (p, true)
        }
        _ => anyhow::bail!("give exactly one of --password or --random-password"),
    };
    let account = ctx
        .store
        .create_account(NewAccount {
            username,
            email,
            password: password.clone(),
            display_name: None,
            role: match role {
                RoleArg::User => Role::User,
                RoleArg::Admin => Role::Admin,
            },
            bot: false,
        })
        .await
        .context("creating the account")?;
    ctx.publish(Event::AccountCreated {
        account: account.clone(),
    })
    .await?;
    if let Err(e) = ctx.timelines.create_empty(account.id).await {
        progress.note(&format!(
            "the home timeline was not created ({e}); it is built on first read"
        ));
    }
    let mut lines = Vec::new();
    if generated {
        lines.push(format!("password: {password} (shown once)"));
    }
    let summary = format!(
        "created account {} (id {}, role {:?})",
        account.username, account.id, account.role
    );
    Ok(Outcome::new(
        summary,
        Created {
            account,
            password: generated.then_some(password),
        },
    )?
    .with_lines(lines))
}

async fn list(ctx: &AdminContext, limit: Option<usize>) -> anyhow::Result<Outcome> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut accounts: Vec<Account> = Vec::new();
    let mut after = None;
    while accounts.len() < limit {
        let page = ctx
            .store
            .scan_accounts(after, MAX_BATCH)
            .await
            .context("scanning accounts")?;
        accounts.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    accounts.truncate(limit);
    let lines = accounts
        .iter()
        .map(|a| {
            format!(
                "{:<20} {:<30} {:<6}{}",
                a.id,
                a.username,
                role_name(a.role),
                if a.suspended { " suspended" } else { "" }
            )
        })
        .collect();
    Ok(Outcome::new(format!("{} accounts", accounts.len()), &accounts)?.with_lines(lines))
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Admin => "admin",
    }
}

#[derive(Serialize)]
struct Shown {
    account: Account,
    counts: AccountCounts,
    tokens: usize,
    timeline_shard: usize,
}

async fn show(ctx: &AdminContext, user: &str) -> anyhow::Result<Outcome> {
    let account = ctx.account(user).await?;
    let counts = ctx
        .store
        .account_counts(&[account.id])
        .await
        .context("reading counts")?
        .into_iter()
        .next()
        .unwrap_or_default();
    let tokens = ctx
        .store
        .tokens_of(account.id)
        .await
        .context("listing tokens")?
        .len();
    let shard = ctx.timelines.shard_of(account.id);
    let lines = vec![
        format!("id:          {}", account.id),
        format!("username:    {}", account.username),
        format!("role:        {}", role_name(account.role)),
        format!("suspended:   {}", account.suspended),
        format!("followers:   {}", counts.followers),
        format!("following:   {}", counts.following),
        format!("statuses:    {}", counts.statuses),
        format!("tokens:      {tokens}"),
        format!(
            "shard:       {shard} ({})",
            ctx.timelines.shard_addr(shard).unwrap_or("?")
        ),
    ];
    let summary = format!("account {} ({})", account.username, account.id);
    Ok(Outcome::new(
        summary,
        Shown {
            account,
            counts,
            tokens,
            timeline_shard: shard,
        },
    )?
    .with_lines(lines))
}

async fn set_suspended(ctx: &AdminContext, user: &str, suspended: bool) -> anyhow::Result<Outcome> {
    let account = ctx.account(user).await?;
    let account = ctx
        .store
        .moderate_account(account.id, Some(suspended), None)
        .await
        .context("updating the account")?;
    ctx.forget(Forget::Account(account.id)).await;
    // Search nodes drop (or restore) the account's document.
    ctx.publish(Event::AccountUpdated {
        account: account.clone(),
    })
    .await?;
    let verb = if suspended {
        "suspended"
    } else {
        "unsuspended"
    };
    Outcome::new(
        format!("{verb} {} ({})", account.username, account.id),
        &account,
    )
}

#[derive(Serialize, Default)]
struct Deleted {
    account: Option<Account>,
    posts: u64,
    followers: u64,
    following: u64,
    tokens: u64,
    dry_run: bool,
}

/// Every id of a paged list (followers), a page at a time.
async fn all_followers(ctx: &AdminContext, id: Id) -> anyhow::Result<Vec<Id>> {
    let mut out = Vec::new();
    let mut window = Window::oldest(MAX_PAGE);
    loop {
        let page = ctx
            .store
            .followers(id, window)
            .await
            .context("reading followers")?;
        out.extend(page.items);
        match page.next {
            Some(next) => window = next,
            None => return Ok(out),
        }
    }
}

async fn delete(
    ctx: &AdminContext,
    user: &str,
    dry_run: bool,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let account = ctx.account(user).await?;
    let id = account.id;
    let counts = ctx
        .store
        .account_counts(&[id])
        .await
        .context("reading counts")?
        .into_iter()
        .next()
        .unwrap_or_default();
    let token_hashes: Vec<String> = ctx
        .store
        .tokens_of(id)
        .await
        .context("listing tokens")?
        .into_iter()
        .map(|t| t.token_hash)
        .collect();
    let tokens = token_hashes.len() as u64;
    let mut report = Deleted {
        account: Some(account.clone()),
        followers: counts.followers,
        following: counts.following,
        tokens,
        dry_run,
        ..Deleted::default()
    };
    if dry_run {
        report.posts = counts.statuses;
        let summary = format!(
            "would delete {} ({id}): {} posts, {} followers, {} follows, {} tokens (dry run)",
            account.username, counts.statuses, counts.followers, counts.following, tokens
        );
        return Outcome::new(summary, report);
    }
    // Followers first: once the follows are gone, fan-out can no longer find whose
    // timelines hold the posts, so they are taken out here as well as by the events.
    let followers = all_followers(ctx, id).await?;
    progress.start("deleting posts", Some(counts.statuses));
    let mut removed = Vec::new();
    loop {
        let page = ctx
            .store
            .posts_by_author(id, Window::newest(MAX_BATCH))
            .await
            .context("reading the account's posts")?;
        if page.items.is_empty() {
            break;
        }
        for post in page.items {
            if let Some(post) = crate::statuses::delete(ctx, post.id).await? {
                removed.push(post.id);
                progress.advance(1);
            }
        }
    }
    progress.finish();
    report.posts = removed.len() as u64;
    if !removed.is_empty() && !followers.is_empty() {
        progress.start(
            "removing posts from followers' timelines",
            Some(removed.len() as u64),
        );
        let mut failed = None;
        for post in &removed {
            for chunk in followers.chunks(MAX_BATCH) {
                if let Err(e) = ctx.timelines.remove(*post, chunk).await {
                    failed = Some(e);
                }
            }
            progress.advance(1);
        }
        progress.finish();
        if let Some(e) = failed {
            progress.note(&format!(
                "some timelines could not be cleaned ({e}); readers never see deleted posts, \
                 and `feeds build --all` rewrites them"
            ));
        }
    }
    ctx.store
        .delete_account(id)
        .await
        .context("deleting the account")?;
    ctx.forget(Forget::Account(id)).await;
    for hash in token_hashes {
        ctx.forget(Forget::Token(hash)).await;
    }
    if let Err(e) = ctx.timelines.clear(id).await {
        progress.note(&format!(
            "the account's own timeline could not be removed ({e}); it expires with its shard"
        ));
    }
    ctx.publish(Event::AccountDeleted { account_id: id })
        .await?;
    let summary = format!(
        "deleted {} ({id}): {} posts, {} followers, {} follows, {} tokens",
        account.username, report.posts, report.followers, report.following, report.tokens
    );
    Outcome::new(summary, report)
}
