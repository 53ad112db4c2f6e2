//! Seeding a server with a graph: accounts with tokens, follows, and a few posts per user.
//!
//! Small graphs go through the public API, as clients would (sign-up, follow, post),
//! `concurrency` requests at a time. Large graphs (where password hashing alone would take
//! an hour) go through `starling admin graph import`, which writes the store directly and
//! issues tokens; only the pre-populated posts then go through the API. Either way the
//! result is a [`State`] saved for later runs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::client::Api;
use crate::graph::Graph;
use crate::state::{State, User, read_tokens_file};
use crate::workload::post_text;

pub struct SeedOptions {
    pub prefix: String,
    pub concurrency: usize,
    pub posts_per_user: u32,
    pub graph_source: String,
    /// Where the state file goes; the edge file and tokens file go beside it.
    pub state_path: PathBuf,
    /// Path to the `starling` binary for the admin bulk import; `None` seeds over the API.
    pub admin: Option<AdminImport>,
    pub seed: u64,
    pub progress: bool,
}

pub struct AdminImport {
    pub starling: PathBuf,
    pub config: Option<PathBuf>,
}

fn bar(len: u64, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>10} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
    ) {
        pb.set_style(style);
    }
    pb.set_message(what.to_owned());
    pb
}

fn sibling(state: &Path, ext: &str) -> PathBuf {
    state.with_extension(ext)
}

pub async fn seed(api: &Api, graph: &Graph, opts: &SeedOptions) -> anyhow::Result<State> {
    let edge_path = sibling(&opts.state_path, "edges");
    graph.write_edge_file(&edge_path)?;
    let (users, seeded_by) = match &opts.admin {
        Some(admin) => (
            admin_import(graph, &edge_path, admin, opts).await?,
            "admin-import",
        ),
        None => (seed_over_api(api, graph, opts).await?, "api"),
    };
    anyhow::ensure!(!users.is_empty(), "seeding created no users");
    let users = Arc::new(users);
    if opts.posts_per_user > 0 {
        posts(api, &users, opts).await?;
    }
    let state = State {
        base_url: api.base.clone(),
        graph_source: opts.graph_source.clone(),
        graph: graph.summary(),
        edge_file: edge_path
            .file_name()
            .map(PathBuf::from)
            .unwrap_or(edge_path.clone()),
        seeded_by: seeded_by.into(),
        posts_per_user: opts.posts_per_user,
        celebrity: graph.most_followed(),
        users: Arc::try_unwrap(users).unwrap_or_else(|arc| (*arc).clone()),
    };
    state.save(&opts.state_path)?;
    Ok(state)
}

async fn seed_over_api(api: &Api, graph: &Graph, opts: &SeedOptions) -> anyhow::Result<Vec<User>> {
    let app_token = api.app_token().await?;
    // One password for every synthetic user: these accounts exist to be benchmarked.
    let password = format!("bench password {}", opts.seed);
    let pb = bar(u64::from(graph.users), "accounts", opts.progress);
    let mut users: Vec<User> = futures::stream::iter(0..graph.users)
        .map(|node| {
            let (api, app_token, password, pb) = (api, &app_token, &password, &pb);
            let username = format!("{}{node}", opts.prefix);
            async move {
                let (id, token) = api.register(app_token, &username, password).await?;
                pb.inc(1);
                anyhow::Ok(User {
                    node,
                    id,
                    username,
                    token,
                })
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    pb.finish();
    users.sort_by_key(|u| u.node);

    let pb = bar(graph.edges.len() as u64, "follows", opts.progress);
    let failures: Vec<String> = futures::stream::iter(graph.edges.iter().copied())
        .map(|(u, v)| {
            let (users, pb) = (&users, &pb);
            async move {
                let r = api
                    .follow(&users[u as usize].token, &users[v as usize].id)
                    .await;
                pb.inc(1);
                r.err().map(|e| format!("{u} -> {v}: {e}"))
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await;
    pb.finish();
    none_failed(&failures, "follows")?;
    Ok(users)
}

async fn admin_import(
    graph: &Graph,
    edge_path: &Path,
    admin: &AdminImport,
    opts: &SeedOptions,
) -> anyhow::Result<Vec<User>> {
    let tokens_path = sibling(&opts.state_path, "tokens.jsonl");
    let mut cmd = tokio::process::Command::new(&admin.starling);
    if let Some(config) = &admin.config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(["admin", "graph", "import"])
        .arg(edge_path)
        .arg("--create-accounts")
        .arg(&opts.prefix)
        .arg("--tokens-out")
        .arg(&tokens_path);
    eprintln!(
        "seeding {} users and {} follows with {} admin graph import",
        graph.users,
        graph.edges.len(),
        admin.starling.display()
    );
    let status = cmd
        .status()
        .await
        .with_context(|| format!("running {}", admin.starling.display()))?;
    anyhow::ensure!(
        status.success(),
        "`starling admin graph import` failed: {status}"
    );
    let text = std::fs::read_to_string(&tokens_path)
        .with_context(|| format!("reading {}", tokens_path.display()))?;
    let users = read_tokens_file(&text)?;
    // The tokens stay in the (private) state file only.
    std::fs::remove_file(&tokens_path).ok();
    Ok(users)
}

async fn posts(api: &Api, users: &Arc<Vec<User>>, opts: &SeedOptions) -> anyhow::Result<()> {
    let total = users.len() as u64 * u64::from(opts.posts_per_user);
    let names: Arc<Vec<String>> = Arc::new(users.iter().map(|u| u.username.clone()).collect());
    let pb = bar(total, "posts", opts.progress);
    let failures: Vec<String> = futures::stream::iter(0..total)
        .map(|i| {
            let (users, names, pb) = (users.clone(), names.clone(), &pb);
            let seed = opts.seed;
            async move {
                let user = &users[(i % users.len() as u64) as usize];
                let text = post_text(&mut StdRng::seed_from_u64(seed ^ i), &names, 256);
                let mut last = None;
                // A post is retried once: a busy server during seeding is not a result.
                for _ in 0..2 {
                    match api.post(&user.token, &text).await {
                        Ok(_) => {
                            last = None;
                            break;
                        }
                        Err(e) => {
                            last = Some(e);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                pb.inc(1);
                last.map(|e| format!("{}: {e}", user.username))
            }
        })
        .buffer_unordered(opts.concurrency.max(1))
        .filter_map(|r| async move { r })
        .collect()
        .await;
    pb.finish();
    none_failed(&failures, "posts")
}

fn none_failed(failures: &[String], what: &str) -> anyhow::Result<()> {
    match failures.first() {
        None => Ok(()),
        Some(first) => anyhow::bail!("{} {what} failed, first: {first}", failures.len()),
    }
}

/// What `lists` makes.
#[derive(Clone, Copy)]
pub struct ListOptions {
    /// Share of users who own lists.
    pub share: f64,
    pub per_user: usize,
    /// Most members per list.
    pub members: usize,
    pub seed: u64,
    pub concurrency: usize,
}

/// Give a `share` of the seeded users `per_user` lists each, holding up to `members` of
/// their followees apiece (split between the lists; users following nobody get none), so
/// fan-out writes list feeds alongside homes. Deterministic for a given `seed`. Returns
/// how many lists were made.
pub async fn lists(
    api: &Api,
    graph: &Graph,
    users: &[User],
    opts: &ListOptions,
) -> anyhow::Result<usize> {
    let ListOptions {
        share,
        per_user,
        members,
        seed,
        concurrency,
    } = *opts;
    use rand::Rng;
    let mut followees: Vec<Vec<u32>> = vec![Vec::new(); users.len()];
    for (u, v) in &graph.edges {
        if let Some(f) = followees.get_mut(*u as usize) {
            f.push(*v);
        }
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let owners: Vec<usize> = (0..users.len())
        .filter(|_| rng.gen_bool(share.clamp(0.0, 1.0)))
        .filter(|i| !followees[*i].is_empty())
        .collect();
    let made: Vec<anyhow::Result<usize>> = futures::stream::iter(owners)
        .map(|i| {
            let (users, followees) = (users, &followees);
            async move {
                let owner = &users[i];
                let mut made = 0;
                for n in 0..per_user {
                    let list = api
                        .create_list(&owner.token, &format!("bench list {n}"))
                        .await
                        .map_err(|e| anyhow::anyhow!("creating a list: {e}"))?;
                    let ids: Vec<&str> = followees[i]
                        .iter()
                        .skip(n)
                        .step_by(per_user.max(1))
                        .take(members)
                        .filter_map(|v| users.get(*v as usize).map(|u| u.id.as_str()))
                        .collect();
                    // An owner following fewer accounts than it has lists keeps an empty one
                    // (the API refuses an empty member list).
                    if !ids.is_empty() {
                        api.add_list_members(&owner.token, &list, &ids)
                            .await
                            .map_err(|e| anyhow::anyhow!("adding list members: {e}"))?;
                    }
                    made += 1;
                }
                anyhow::Ok(made)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    made.into_iter().sum()
}
