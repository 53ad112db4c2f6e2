//! `graph import | follow | unfollow | stats`.
//!
//! The import reads a DeathStarBench-style edge list (`u v` per line: u follows v), makes
//! sure an account exists for every node, adds the follows in store batches
//! ([`Store::import_follows`], which keeps the counts right and skips what exists), and can
//! hand every node a token. Re-running it adds nothing twice: existing accounts and follows
//! are skipped, and tokens from an earlier run's file are kept while they still work.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{ImportAccount, NewToken};
use starling_schema::validate::username_key;
use starling_store::{MAX_BATCH, MAX_PAGE, Store};

use crate::command::{Bulk, GraphCommand};
use crate::tokens::{DEFAULT_SCOPES, admin_app};
use crate::{AccountPages, AdminContext, Outcome, Progress, chunked, concurrently};

pub(crate) async fn run(
    ctx: &AdminContext,
    command: GraphCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        GraphCommand::Import {
            file,
            undirected,
            create_accounts,
            tokens_out,
            dry_run,
            bulk,
        } => {
            let options = Import {
                undirected,
                prefix: create_accounts,
                tokens_out,
                dry_run,
                bulk,
            };
            import(ctx, &file, &options, progress).await
        }
        GraphCommand::Follow { a, b } => follow(ctx, &a, &b, true).await,
        GraphCommand::Unfollow { a, b } => follow(ctx, &a, &b, false).await,
        GraphCommand::Stats { top } => stats(ctx, top, progress).await,
    }
}

/// One line of `--tokens-out`: what the benchmark harness reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLine {
    pub node: String,
    pub id: String,
    pub username: String,
    pub token: String,
}

struct Import {
    undirected: bool,
    prefix: Option<String>,
    tokens_out: Option<std::path::PathBuf>,
    dry_run: bool,
    bulk: Bulk,
}

/// Parse an edge list: `u v` per line (more columns ignored), blank lines and lines
/// starting with `#` or `%` skipped.
pub(crate) fn parse_edges(text: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    let mut edges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('%') {
            continue;
        }
        let mut parts = line.split(|c: char| c.is_whitespace() || c == ',');
        let mut node = |what: &str| -> anyhow::Result<u64> {
            let field = parts.by_ref().find(|p| !p.is_empty()).with_context(|| {
                format!("line {}: missing the {what} node (expected `u v`)", n + 1)
            })?;
            field
                .parse()
                .with_context(|| format!("line {}: {field:?} is not a node number", n + 1))
        };
        let u = node("first")?;
        let v = node("second")?;
        edges.push((u, v));
    }
    Ok(edges)
}

#[derive(Serialize, Default)]
struct Imported {
    nodes: u64,
    edges_read: u64,
    follows_offered: u64,
    follows_new: u64,
    accounts_created: u64,
    tokens_issued: u64,
    tokens_kept: u64,
    seconds: f64,
    /// Seconds spent on each phase.
    accounts_seconds: f64,
    follows_seconds: f64,
    tokens_seconds: f64,
    edges_per_second: f64,
    dry_run: bool,
}

async fn import(
    ctx: &AdminContext,
    file: &Path,
    options: &Import,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let text = tokio::fs::read_to_string(file)
        .await
        .with_context(|| format!("reading {}", file.display()))?;
    let parsed = parse_edges(&text).with_context(|| format!("parsing {}", file.display()))?;
    drop(text);
    let mut nodes: Vec<u64> = parsed.iter().flat_map(|(u, v)| [*u, *v]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let mut report = Imported {
        nodes: nodes.len() as u64,
        edges_read: parsed.len() as u64,
        dry_run: options.dry_run,
        ..Imported::default()
    };
    let concurrency = options.bulk.concurrency.max(1);
    if options.dry_run {
        report.follows_offered = parsed.len() as u64 * if options.undirected { 2 } else { 1 };
        let summary = format!(
            "would import {} nodes and {} follows from {} (dry run)",
            report.nodes,
            report.follows_offered,
            file.display()
        );
        return Outcome::new(summary, report);
    }

    // Accounts: node → account id.
    let phase = Instant::now();
    let ids: HashMap<u64, Id> = match &options.prefix {
        Some(prefix) => {
            let (ids, created) =
                ensure_accounts(ctx, prefix, &nodes, concurrency, progress).await?;
            report.accounts_created = created;
            ids
        }
        None => existing_accounts(ctx, &nodes, concurrency).await?,
    };

    report.accounts_seconds = phase.elapsed().as_secs_f64();
    // Follows, in store batches.
    let phase = Instant::now();
    let mut edges: Vec<(Id, Id)> = Vec::with_capacity(parsed.len() * 2);
    for (u, v) in &parsed {
        if let (Some(a), Some(b)) = (ids.get(u), ids.get(v)) {
            edges.push((*a, *b));
            if options.undirected {
                edges.push((*b, *a));
            }
        }
    }
    drop(parsed);
    report.follows_offered = edges.len() as u64;
    let batch = options.bulk.batch_size.clamp(1, MAX_PAGE);
    progress.start("follows", Some(edges.len() as u64));
    let store = &ctx.store;
    let new = concurrently(chunked(edges, batch), concurrency, |chunk| async move {
        let n = chunk.len() as u64;
        let added = store
            .import_follows(chunk)
            .await
            .context("importing follows")?;
        progress.advance(n);
        Ok(added)
    })
    .await?;
    progress.finish();
    report.follows_new = new.iter().sum();
    report.follows_seconds = phase.elapsed().as_secs_f64();

    let phase = Instant::now();
    if let Some(out) = &options.tokens_out {
        let prefix = options.prefix.as_deref().unwrap_or_default();
        let (issued, kept) =
            write_tokens(ctx, out, prefix, &nodes, &ids, concurrency, progress).await?;
        report.tokens_issued = issued;
        report.tokens_kept = kept;
    }
    report.tokens_seconds = phase.elapsed().as_secs_f64();
    report.seconds = started.elapsed().as_secs_f64();
    report.edges_per_second = report.follows_offered as f64 / report.seconds.max(1e-9);
    if report.follows_new > 0 {
        progress.note(
            "home timelines that existed before the import do not show the new follows' posts \
             yet: run `starling admin feeds build --all` (missing timelines are built on read)",
        );
    }
    let summary = format!(
        "imported {} nodes ({} accounts created), {} follows new of {} in {:.1} s ({:.0} edges/s){}",
        report.nodes,
        report.accounts_created,
        report.follows_new,
        report.follows_offered,
        report.seconds,
        report.edges_per_second,
        if options.tokens_out.is_some() {
            format!(
                ", {} tokens issued, {} kept",
                report.tokens_issued, report.tokens_kept
            )
        } else {
            String::new()
        }
    );
    Outcome::new(summary, report)
}

/// Create the accounts `{prefix}{node}` that are missing; returns every node's account id
/// and how many were created.
async fn ensure_accounts(
    ctx: &AdminContext,
    prefix: &str,
    nodes: &[u64],
    concurrency: usize,
    progress: &dyn Progress,
) -> anyhow::Result<(HashMap<u64, Id>, u64)> {
    progress.start("accounts", Some(nodes.len() as u64));
    let store = &ctx.store;
    let chunks = concurrently(
        chunked(nodes.to_vec(), MAX_BATCH),
        concurrency,
        |chunk| async move {
            let names: Vec<String> = chunk.iter().map(|n| format!("{prefix}{n}")).collect();
            let created = store
                .import_accounts(
                    names
                        .iter()
                        .map(|u| ImportAccount {
                            username: u.clone(),
                            display_name: None,
                            bot: false,
                        })
                        .collect(),
                )
                .await
                .with_context(|| format!("creating accounts {}…", names[0]))?
                .len();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let found = store
                .accounts_by_usernames(&refs)
                .await
                .context("looking up accounts")?;
            let by_key: HashMap<String, Id> = found
                .into_iter()
                .map(|a| (username_key(&a.username), a.id))
                .collect();
            let mut ids = Vec::with_capacity(chunk.len());
            for (node, name) in chunk.iter().zip(&names) {
                let id = by_key
                    .get(&username_key(name))
                    .with_context(|| format!("account {name} vanished during the import"))?;
                ids.push((*node, *id));
            }
            progress.advance(chunk.len() as u64);
            anyhow::Ok((ids, created as u64))
        },
    )
    .await?;
    progress.finish();
    let mut map = HashMap::with_capacity(nodes.len());
    let mut created = 0;
    for (ids, n) in chunks {
        map.extend(ids);
        created += n;
    }
    Ok((map, created))
}

/// Without a prefix, node n is the account with id n; every one must exist.
async fn existing_accounts(
    ctx: &AdminContext,
    nodes: &[u64],
    concurrency: usize,
) -> anyhow::Result<HashMap<u64, Id>> {
    let store = &ctx.store;
    let found = concurrently(
        chunked(nodes.to_vec(), MAX_BATCH),
        concurrency,
        |chunk| async move {
            let ids: Vec<Id> = chunk.iter().map(|n| Id(*n)).collect();
            let found = store
                .accounts_by_ids(&ids)
                .await
                .context("looking up accounts")?;
            anyhow::Ok(found.into_iter().map(|a| a.id).collect::<Vec<Id>>())
        },
    )
    .await?;
    let map: HashMap<u64, Id> = found.into_iter().flatten().map(|id| (id.0, id)).collect();
    if let Some(missing) = nodes.iter().find(|n| !map.contains_key(n)) {
        anyhow::bail!(
            "node {missing} is not an account id ({} of {} nodes are); \
             use --create-accounts PREFIX to create accounts for the nodes",
            map.len(),
            nodes.len()
        );
    }
    Ok(map)
}

/// Read an earlier `--tokens-out` file: node → line. A missing file is empty.
fn read_token_file(path: &Path) -> anyhow::Result<HashMap<String, TokenLine>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut lines = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: TokenLine = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not a token line", path.display(), n + 1))?;
        lines.insert(parsed.node.clone(), parsed);
    }
    Ok(lines)
}

/// Give every node a working token, keeping those of an earlier file that still work, and
/// write the file whole (beside it first, then renamed). Returns (issued, kept).
#[allow(clippy::too_many_arguments)]
async fn write_tokens(
    ctx: &AdminContext,
    out: &Path,
    prefix: &str,
    nodes: &[u64],
    ids: &HashMap<u64, Id>,
    concurrency: usize,
    progress: &dyn Progress,
) -> anyhow::Result<(u64, u64)> {
    let earlier = read_token_file(out)?;
    let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    let app = admin_app(&ctx.store, &scopes).await?;
    progress.start("tokens", Some(nodes.len() as u64));
    let store = &ctx.store;
    let earlier = &earlier;
    let scopes = &scopes;
    let lines: Vec<(u64, TokenLine, bool)> =
        concurrently(nodes.iter().copied(), concurrency, |node| async move {
            let id = *ids.get(&node).context("a node without an account")?;
            let username = format!("{prefix}{node}");
            if let Some(line) = earlier.get(&node.to_string())
                && line.id == id.to_string()
            {
                let info = store.token(&line.token).await.context("checking a token")?;
                if info.is_some_and(|i| i.account_id == Some(id)) {
                    progress.advance(1);
                    return anyhow::Ok((node, line.clone(), false));
                }
            }
            let issued = store
                .issue_token(NewToken {
                    account_id: Some(id),
                    app_id: Some(app),
                    scopes: scopes.clone(),
                    expires_at_ms: None,
                })
                .await
                .context("issuing a token")?;
            progress.advance(1);
            Ok((
                node,
                TokenLine {
                    node: node.to_string(),
                    id: id.to_string(),
                    username,
                    token: issued.token,
                },
                true,
            ))
        })
        .await?;
    progress.finish();
    let sorted: BTreeMap<u64, &TokenLine> = lines.iter().map(|(n, l, _)| (*n, l)).collect();
    let mut body = String::with_capacity(sorted.len() * 140);
    for line in sorted.values() {
        body.push_str(&serde_json::to_string(line).context("encoding a token line")?);
        body.push('\n');
    }
    let tmp = out.with_extension("tmp");
    write_private(&tmp, body.as_bytes()).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    let issued = lines.iter().filter(|(_, _, new)| *new).count() as u64;
    Ok((issued, lines.len() as u64 - issued))
}

/// Write a file only its owner can read: it holds bearer tokens.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    // `mode` applies only to a new file: an existing one is made private too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

async fn follow(ctx: &AdminContext, a: &str, b: &str, on: bool) -> anyhow::Result<Outcome> {
    let follower = ctx.account(a).await?;
    let followee = ctx.account(b).await?;
    let (changed, event, verb) = if on {
        let changed = ctx
            .store
            .follow(follower.id, followee.id)
            .await
            .context("following")?;
        let event = Event::Followed {
            follower_id: follower.id,
            followee_id: followee.id,
        };
        (changed, event, "follows")
    } else {
        let changed = ctx
            .store
            .unfollow(follower.id, followee.id)
            .await
            .context("unfollowing")?;
        let event = Event::Unfollowed {
            follower_id: follower.id,
            followee_id: followee.id,
        };
        (changed, event, "no longer follows")
    };
    if changed {
        // Fan-out merges (or removes) the followee's posts in the follower's timeline.
        ctx.publish(event).await?;
    }
    let summary = format!(
        "{} {verb} {}{}",
        follower.username,
        followee.username,
        if changed { "" } else { " (unchanged)" }
    );
    Outcome::new(summary, serde_json::json!({ "changed": changed }))
}

#[derive(Serialize)]
struct Top {
    id: Id,
    username: String,
    followers: u64,
}

#[derive(Serialize)]
struct Stats {
    accounts: u64,
    edges: u64,
    /// Accounts per follower-count bucket, in bucket order.
    follower_distribution: Vec<(String, u64)>,
    top: Vec<Top>,
}

/// Follower-count buckets: 0, 1–9, 10–99, … as powers of ten.
const BUCKETS: [&str; 8] = [
    "0",
    "1-9",
    "10-99",
    "100-999",
    "1k-9.9k",
    "10k-99k",
    "100k-999k",
    "1M+",
];

fn bucket(followers: u64) -> usize {
    if followers == 0 {
        return 0;
    }
    let digits = followers.ilog10() as usize + 1;
    digits.min(BUCKETS.len() - 1)
}

async fn stats(
    ctx: &AdminContext,
    top_n: usize,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    progress.start("accounts", None);
    let mut accounts = 0u64;
    let mut edges = 0u64;
    let mut buckets = [0u64; BUCKETS.len()];
    let mut top: Vec<Top> = Vec::new();
    let mut pages = AccountPages::new(ctx);
    while let Some(page) = pages.next().await? {
        let ids: Vec<Id> = page.iter().map(|a| a.id).collect();
        let counts = ctx
            .store
            .account_counts(&ids)
            .await
            .context("reading counts")?;
        for (account, c) in page.into_iter().zip(counts) {
            accounts += 1;
            edges += c.following;
            buckets[bucket(c.followers)] += 1;
            top.push(Top {
                id: account.id,
                username: account.username,
                followers: c.followers,
            });
        }
        top.sort_unstable_by(|a, b| b.followers.cmp(&a.followers).then(a.id.cmp(&b.id)));
        top.truncate(top_n);
        progress.advance(ids.len() as u64);
    }
    progress.finish();
    let stats = Stats {
        accounts,
        edges,
        follower_distribution: BUCKETS
            .iter()
            .zip(buckets)
            .map(|(name, n)| ((*name).to_owned(), n))
            .collect(),
        top,
    };
    let mut lines = vec!["followers  accounts".to_owned()];
    for (name, n) in &stats.follower_distribution {
        lines.push(format!("{name:>9}  {n}"));
    }
    lines.push("most followed:".to_owned());
    for t in &stats.top {
        lines.push(format!("  {:<30} {}", t.username, t.followers));
    }
    let summary = format!("{accounts} accounts, {edges} follows");
    Ok(Outcome::new(summary, stats)?.with_lines(lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_lists_skip_comments_and_blank_lines() {
        let text = "# DeathStarBench socfb\n% matrix market header\n\n1 2\n  2\t3 \n3,1\n";
        assert_eq!(parse_edges(text).unwrap(), vec![(1, 2), (2, 3), (3, 1)]);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let err = parse_edges("1 2\n3\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let err = parse_edges("1 x\n").unwrap_err();
        assert!(format!("{err:#}").contains("\"x\""), "{err:#}");
    }

    #[test]
    fn follower_buckets_are_decades() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(9), 1);
        assert_eq!(bucket(10), 2);
        assert_eq!(bucket(999), 3);
        assert_eq!(bucket(1_000), 4);
        assert_eq!(bucket(5_000_000), 7);
    }
}
