//! `tokens issue | list | revoke`.

use anyhow::Context;
use serde::Serialize;
use starling_schema::ids::now_ms;
use starling_schema::model::{NewApp, NewToken, TokenInfo};
use starling_store::{AnyStore, Store};

use crate::command::TokensCommand;
use crate::{AdminContext, Forget, Outcome};

/// The app that tokens issued by an operator belong to.
pub(crate) const APP_NAME: &str = "starling-admin";
/// The scopes benchmark users and `tokens issue` get by default.
pub(crate) const DEFAULT_SCOPES: [&str; 3] = ["read", "write", "follow"];
const DAY_MS: u64 = 86_400_000;

pub(crate) async fn run(ctx: &AdminContext, command: TokensCommand) -> anyhow::Result<Outcome> {
    match command {
        TokensCommand::Issue {
            user,
            scopes,
            expires,
        } => issue(ctx, &user, scopes, expires).await,
        TokensCommand::List { user } => list(ctx, &user).await,
        TokensCommand::Revoke {
            token,
            all,
            dry_run,
        } => revoke(ctx, token, all, dry_run).await,
    }
}

/// Register the app operator-issued tokens belong to (one per command run).
pub(crate) async fn admin_app(
    store: &AnyStore,
    scopes: &[String],
) -> anyhow::Result<starling_schema::Id> {
    let app = store
        .create_app(NewApp {
            name: APP_NAME.to_owned(),
            website: None,
            redirect_uris: vec!["urn:ietf:wg:oauth:2.0:oob".to_owned()],
            scopes: scopes.to_vec(),
        })
        .await
        .context("registering the starling-admin app")?;
    Ok(app.app.id)
}

#[derive(Serialize)]
struct Issued {
    token: String,
    info: TokenInfo,
}

async fn issue(
    ctx: &AdminContext,
    user: &str,
    scopes: Vec<String>,
    expires_days: Option<u64>,
) -> anyhow::Result<Outcome> {
    const KNOWN: [&str; 5] = ["read", "write", "follow", "push", "admin"];
    let scopes: Vec<String> = scopes
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    anyhow::ensure!(!scopes.is_empty(), "give at least one scope");
    for s in &scopes {
        let top = s.split(':').next().unwrap_or_default();
        anyhow::ensure!(
            KNOWN.contains(&top),
            "unknown scope {s:?} (known: read, write, follow, push, admin and their sub-scopes)"
        );
    }
    let account = ctx.account(user).await?;
    anyhow::ensure!(
        !account.suspended,
        "{} is suspended; unsuspend it first",
        account.username
    );
    let app = admin_app(&ctx.store, &scopes).await?;
    let issued = ctx
        .store
        .issue_token(NewToken {
            account_id: Some(account.id),
            app_id: Some(app),
            scopes,
            expires_at_ms: expires_days.map(|d| now_ms().saturating_add(d.saturating_mul(DAY_MS))),
        })
        .await
        .context("issuing the token")?;
    let summary = format!(
        "issued a token for {} (hash {}); it is shown once",
        account.username, issued.info.token_hash
    );
    let lines = vec![issued.token.clone()];
    Ok(Outcome::new(
        summary,
        Issued {
            token: issued.token,
            info: issued.info,
        },
    )?
    .with_lines(lines))
}

async fn list(ctx: &AdminContext, user: &str) -> anyhow::Result<Outcome> {
    let account = ctx.account(user).await?;
    let tokens = ctx
        .store
        .tokens_of(account.id)
        .await
        .context("listing tokens")?;
    let now = now_ms();
    let lines = tokens
        .iter()
        .map(|t| {
            format!(
                "{}  {:<22} created {}{}",
                t.token_hash,
                t.scopes.join(","),
                t.created_at_ms,
                match t.expires_at_ms {
                    Some(at) if at <= now => " expired".to_owned(),
                    Some(at) => format!(" expires {at}"),
                    None => String::new(),
                }
            )
        })
        .collect();
    Ok(Outcome::new(
        format!("{} tokens of {}", tokens.len(), account.username),
        &tokens,
    )?
    .with_lines(lines))
}

fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[derive(Serialize)]
struct Revoked {
    revoked: Vec<String>,
    dry_run: bool,
}

async fn revoke(
    ctx: &AdminContext,
    token: Option<String>,
    all: Option<String>,
    dry_run: bool,
) -> anyhow::Result<Outcome> {
    let single = token.is_some();
    let hashes: Vec<String> = match (token, all) {
        (Some(token), None) => {
            let token = token.trim().to_owned();
            // A hash from `tokens list`, or the token itself.
            let by_token = ctx
                .store
                .token(&token)
                .await
                .context("looking up the token")?;
            match by_token {
                Some(info) => vec![info.token_hash],
                None if is_digest(&token) => vec![token],
                None => {
                    anyhow::bail!("no such token (give the token or its hash from `tokens list`)")
                }
            }
        }
        (None, Some(user)) => {
            let account = ctx.account(&user).await?;
            ctx.store
                .tokens_of(account.id)
                .await
                .context("listing tokens")?
                .into_iter()
                .map(|t| t.token_hash)
                .collect()
        }
        _ => anyhow::bail!("give a token or --all USER"),
    };
    let mut revoked = Vec::new();
    for hash in hashes {
        let gone = dry_run
            || ctx
                .store
                .revoke_token(&hash)
                .await
                .context("revoking a token")?;
        if gone {
            if !dry_run {
                ctx.forget(Forget::Token(hash.clone())).await;
            }
            revoked.push(hash);
        }
    }
    if single && revoked.is_empty() {
        anyhow::bail!("no such token");
    }
    let summary = if dry_run {
        format!("would revoke {} tokens (dry run)", revoked.len())
    } else {
        format!(
            "revoked {} tokens (api nodes may accept them for up to 10 s from their cache)",
            revoked.len()
        )
    };
    Outcome::new(summary, Revoked { revoked, dry_run })
}
