//! The operator's commands behind `starling admin <noun> <verb>`: accounts, tokens, the
//! follow graph (with the bulk import that seeds benchmarks), home timelines, Redis shards,
//! moderation of statuses and the `doctor` health check.
//!
//! Each command is a plain async function over an [`AdminContext`] (the store, the timeline
//! shards, the event bus and the settings) that reports progress through [`Progress`] and
//! returns an [`Outcome`]: a one-line summary, lines for people and a JSON value for
//! scripts. The binary runs them directly when it can open the store, or hands them to the
//! running server over its admin socket ([`socket`]) when the embedded store belongs to
//! that server; both paths run the very same function. Changes other nodes must learn of
//! are published as events, exactly as the API publishes them.
//!
//! This crate is a client of the system: it depends on schema, store, timeline, bus and
//! search, and never on the HTTP api or fan-out crates.

mod accounts;
mod announcements;
mod command;
mod counters;
mod doctor;
mod feeds;
mod graph;
pub mod reindex;
mod search;
mod shards;
pub mod socket;
mod statuses;
mod tokens;

use std::sync::Mutex;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use starling_bus::{Bus, Channel, Publisher};
use starling_schema::Id;
use starling_schema::events::{Event, LiveEvent};
use starling_schema::model::Account;
use starling_schema::settings::Settings;
use starling_store::{AnyStore, Store};
use starling_timeline::Timelines;

pub use command::{
    AccountsCommand, AdminCommand, Bulk, CountersCommand, FeedsCommand, GraphCommand, RoleArg,
    SearchCommand, SearchPart, ShardsCommand, StatusesCommand, TokensCommand,
};
pub use graph::TokenLine;

/// Something an API node in this process may hold in a cache and must drop at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forget {
    Account(Id),
    /// By the token's hash.
    Token(String),
}

/// How a server running the commands drops what its API caches (suspended accounts, revoked
/// tokens) at once, even when NATS is down; every api node also hears of it through NATS.
pub type ForgetHook =
    std::sync::Arc<dyn Fn(Forget) -> futures::future::BoxFuture<'static, ()> + Send + Sync>;

/// Everything a command may touch.
#[derive(Clone)]
pub struct AdminContext {
    pub settings: Settings,
    pub store: AnyStore,
    pub timelines: Timelines,
    pub bus: Bus,
    pub publisher: Publisher<AnyStore>,
    /// Set when the commands run inside a server with an API.
    pub forget: Option<ForgetHook>,
}

impl AdminContext {
    /// Connect to everything the settings name. Redis shards or NATS being down is not
    /// fatal here: commands that need them fail with a clear message, the others work, and
    /// events wait in the store's outbox until a node publishes them.
    pub async fn connect(settings: Settings, store: AnyStore) -> anyhow::Result<AdminContext> {
        let timelines = Timelines::connect(&settings.redis)
            .await
            .context("connecting to the Redis shards")?;
        let bus = Bus::connect(&settings.nats)
            .await
            .context("connecting to NATS")?;
        let publisher = Publisher::new(bus.clone(), store.clone(), &settings.nats);
        Ok(AdminContext {
            settings,
            store,
            timelines,
            bus,
            publisher,
            forget: None,
        })
    }

    /// Tell this process's API, and every api node through NATS, to drop what it caches of
    /// `what` and close the streams it no longer allows (a revoked token's, a suspended or
    /// deleted account's).
    pub(crate) async fn forget(&self, what: Forget) {
        let event = match &what {
            Forget::Account(id) => LiveEvent::AccountChanged { account: *id },
            Forget::Token(hash) => LiveEvent::Revoked {
                token_hash: hash.clone(),
            },
        };
        if let Some(hook) = &self.forget {
            hook(what).await;
        }
        if let Err(e) = self.bus.publish_live(&Channel::Revoked, &event).await {
            tracing::warn!(error = %e, "could not tell the api nodes; their caches forget within their lifetimes");
        }
    }

    /// Publish an event as the API would: back once JetStream has it or the outbox keeps it.
    pub(crate) async fn publish(&self, event: Event) -> anyhow::Result<()> {
        let kind = event.type_name();
        self.publisher
            .publish(event)
            .await
            .with_context(|| format!("publishing a {kind} event"))
    }

    /// An account by username (any case) or by numeric id.
    pub(crate) async fn account(&self, user: &str) -> anyhow::Result<Account> {
        let found = self
            .store
            .accounts_by_usernames(&[user])
            .await
            .context("looking up the account")?;
        if let Some(account) = found.into_iter().next() {
            return Ok(account);
        }
        if let Ok(id) = user.parse::<Id>() {
            let found = self
                .store
                .accounts_by_ids(&[id])
                .await
                .context("looking up the account")?;
            if let Some(account) = found.into_iter().next() {
                return Ok(account);
            }
        }
        anyhow::bail!("no account {user:?} (give a username or an account id)")
    }
}

/// One step of progress, as sent over the admin socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ProgressEvent {
    /// A task begins; `total` when it is known.
    Start { task: String, total: Option<u64> },
    /// `by` more units of the current task are done.
    Advance { by: u64 },
    /// The current task is done.
    Finish,
    /// Something the operator should read (a warning, a next step).
    Note { message: String },
}

/// Where commands report progress: a progress bar, the admin socket, or nothing.
pub trait Progress: Send + Sync {
    fn event(&self, event: ProgressEvent);

    fn start(&self, task: &str, total: Option<u64>) {
        self.event(ProgressEvent::Start {
            task: task.to_owned(),
            total,
        });
    }
    fn advance(&self, by: u64) {
        self.event(ProgressEvent::Advance { by });
    }
    fn finish(&self) {
        self.event(ProgressEvent::Finish);
    }
    fn note(&self, message: &str) {
        self.event(ProgressEvent::Note {
            message: message.to_owned(),
        });
    }
}

/// Progress that goes nowhere.
pub struct Quiet;

impl Progress for Quiet {
    fn event(&self, _event: ProgressEvent) {}
}

/// Progress kept in memory (tests; the notes of a run).
#[derive(Default)]
pub struct Recorded(pub Mutex<Vec<ProgressEvent>>);

impl Progress for Recorded {
    fn event(&self, event: ProgressEvent) {
        if let Ok(mut events) = self.0.lock() {
            events.push(event);
        }
    }
}

/// What a command did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The one line printed last.
    pub summary: String,
    /// Details for people, printed before the summary (a listing, a table).
    pub lines: Vec<String>,
    /// The same for scripts (`--json`).
    pub data: serde_json::Value,
    /// The command found something wrong (`doctor`): the process exits non-zero.
    pub failed: bool,
}

impl Outcome {
    pub(crate) fn new(summary: impl Into<String>, data: impl Serialize) -> anyhow::Result<Self> {
        Ok(Outcome {
            summary: summary.into(),
            lines: Vec::new(),
            data: serde_json::to_value(data).context("encoding the result")?,
            failed: false,
        })
    }

    pub(crate) fn with_lines(mut self, lines: Vec<String>) -> Self {
        self.lines = lines;
        self
    }
}

/// Run one command.
pub async fn run(
    ctx: &AdminContext,
    command: AdminCommand,
    progress: &dyn Progress,
) -> anyhow::Result<Outcome> {
    match command {
        AdminCommand::Accounts { command } => accounts::run(ctx, command, progress).await,
        AdminCommand::Tokens { command } => tokens::run(ctx, command).await,
        AdminCommand::Graph { command } => graph::run(ctx, command, progress).await,
        AdminCommand::Feeds { command } => feeds::run(ctx, command, progress).await,
        AdminCommand::Shards { command } => shards::run(ctx, command, progress).await,
        AdminCommand::Statuses { command } => statuses::run(ctx, command, progress).await,
        AdminCommand::Search { command } => search::run(ctx, command, progress).await,
        AdminCommand::Counters { command } => counters::run(ctx, command, progress).await,
        AdminCommand::Announcements { command } => announcements::run(ctx, command).await,
        AdminCommand::Doctor => doctor::run(ctx).await,
    }
}

/// Every account, a store page at a time.
pub(crate) struct AccountPages<'a> {
    ctx: &'a AdminContext,
    after: Option<Id>,
    done: bool,
}

impl<'a> AccountPages<'a> {
    pub(crate) fn new(ctx: &'a AdminContext) -> Self {
        AccountPages {
            ctx,
            after: None,
            done: false,
        }
    }

    /// The next page, or `None` when every account was seen.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Vec<Account>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .ctx
            .store
            .scan_accounts(self.after, starling_store::MAX_BATCH)
            .await
            .context("scanning accounts")?;
        match page.next {
            Some(next) => self.after = Some(next),
            None => self.done = true,
        }
        Ok(Some(page.items))
    }
}

/// Run `f` over `items` with at most `limit` in flight; results in completion order. The
/// first error stops the run.
pub(crate) async fn concurrently<I, T, F, Fut>(
    items: I,
    limit: usize,
    mut f: F,
) -> anyhow::Result<Vec<T>>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    use futures::StreamExt;
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut out = Vec::new();
    for item in items {
        if pending.len() >= limit.max(1)
            && let Some(done) = pending.next().await
        {
            out.push(done?);
        }
        pending.push(f(item));
    }
    while let Some(done) = pending.next().await {
        out.push(done?);
    }
    Ok(out)
}

/// `items` split into owned chunks of at most `size`.
pub(crate) fn chunked<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let size = size.max(1);
    let mut out = Vec::with_capacity(items.len().div_ceil(size));
    let mut iter = items.into_iter().peekable();
    while iter.peek().is_some() {
        out.push(iter.by_ref().take(size).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_owned_and_cover_everything_in_order() {
        let chunks = chunked((0..7).collect::<Vec<u32>>(), 3);
        assert_eq!(chunks, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6]]);
        assert!(chunked(Vec::<u32>::new(), 3).is_empty());
        assert_eq!(chunked(vec![1], 0), vec![vec![1]], "a zero size means one");
    }

    #[tokio::test]
    async fn concurrently_runs_everything_and_stops_at_the_first_error() {
        let mut got = concurrently(0..10u32, 3, |i| async move { Ok(i * 2) })
            .await
            .unwrap();
        got.sort_unstable();
        assert_eq!(got, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        let err = concurrently(0..10u32, 3, |i| async move {
            anyhow::ensure!(i != 4, "four");
            Ok(i)
        })
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "four");
    }

    #[test]
    fn requests_round_trip_through_json() {
        let command = AdminCommand::Graph {
            command: GraphCommand::Import {
                file: "/tmp/edges.txt".into(),
                undirected: true,
                create_accounts: Some("u".into()),
                tokens_out: None,
                dry_run: false,
                bulk: Bulk {
                    concurrency: 2,
                    batch_size: 100,
                },
            },
        };
        let json = serde_json::to_string(&command).unwrap();
        let back: AdminCommand = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn relative_paths_become_absolute_before_they_travel() {
        let mut command = AdminCommand::Graph {
            command: GraphCommand::Import {
                file: "edges.txt".into(),
                undirected: false,
                create_accounts: None,
                tokens_out: Some("out/tokens.jsonl".into()),
                dry_run: true,
                bulk: Bulk {
                    concurrency: 1,
                    batch_size: 1,
                },
            },
        };
        command.absolutize().unwrap();
        let AdminCommand::Graph {
            command: GraphCommand::Import {
                file, tokens_out, ..
            },
        } = command
        else {
            panic!("still an import");
        };
        assert!(file.is_absolute() && file.ends_with("edges.txt"));
        assert!(tokens_out.unwrap().is_absolute());
    }
}
