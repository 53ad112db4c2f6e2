//! The command tree: `starling admin <noun> <verb>`. The same types are the command line
//! (clap) and the request sent over the admin socket (serde).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminCommand {
    /// Create, list, show, suspend and delete accounts.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// Issue, list and revoke access tokens.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// The follow graph: bulk import, follow, unfollow, statistics.
    Graph {
        #[command(subcommand)]
        command: GraphCommand,
    },
    /// Home timelines in Redis: rebuild, clear, inspect.
    Feeds {
        #[command(subcommand)]
        command: FeedsCommand,
    },
    /// The Redis timeline shards: status, rebalance onto a new ring.
    Shards {
        #[command(subcommand)]
        command: ShardsCommand,
    },
    /// Moderation of statuses.
    Statuses {
        #[command(subcommand)]
        command: StatusesCommand,
    },
    /// This node's search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
    /// Follower, following and status counts.
    Counters {
        #[command(subcommand)]
        command: CountersCommand,
    },
    /// Announcements shown to every user by apps (`/api/v1/announcements`).
    Announcements {
        #[command(subcommand)]
        command: AnnouncementsCommand,
    },
    /// Media uploads and their files: usage, orphans.
    Media {
        #[command(subcommand)]
        command: MediaCommand,
    },
    /// Web Push: delivery counts, and a test push to a user's devices.
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
    /// Check the store, every Redis shard, NATS and its consumers; exit non-zero if
    /// something is wrong.
    Doctor,
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaCommand {
    /// Uploads by state and the bytes in storage.
    Usage,
    /// Remove uploads never attached to a post and files no upload or profile names, made
    /// more than `--older-than` hours ago.
    RemoveOrphans {
        /// Only what is older than this many hours (younger uploads may still be posted).
        #[arg(long = "older-than", default_value_t = 24)]
        older_than_hours: u64,
        /// Count what would be removed without removing it.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PushCommand {
    /// Delivery counts of every push worker, and the push consumer's backlog.
    Stats,
    /// Send a test notification to each of USER's push subscriptions now.
    Test { user: String },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementsCommand {
    /// Publish an announcement to every user.
    Create {
        /// The text (plain; links become anchors).
        text: String,
        /// When the event it announces starts (RFC 3339, e.g. 2026-12-01T10:00:00Z).
        #[arg(long)]
        starts_at: Option<String>,
        /// When it ends; apps stop showing it then (RFC 3339).
        #[arg(long)]
        ends_at: Option<String>,
        /// The event lasts whole days.
        #[arg(long)]
        all_day: bool,
    },
    /// List every announcement, newest first, ended ones included.
    List,
    /// Delete an announcement.
    Delete { id: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleArg {
    User,
    Admin,
}

/// Options of commands that go over many items.
#[derive(Clone, Copy, Debug, Args, Serialize, Deserialize)]
pub struct Bulk {
    /// Store or Redis requests in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Items per store request.
    #[arg(long, default_value_t = 5_000)]
    pub batch_size: usize,
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountsCommand {
    /// Create a local account.
    Create {
        user: String,
        #[arg(long)]
        email: Option<String>,
        /// The password (visible to other local users in the process list; prefer
        /// --random-password).
        #[arg(long, conflicts_with = "random_password")]
        password: Option<String>,
        /// Generate a password and print it once.
        #[arg(long)]
        random_password: bool,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
    },
    /// List accounts.
    List {
        /// Stop after this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one account: counts, tokens, timeline shard.
    Show { user: String },
    /// Suspend an account: its tokens and password stop working and it is hidden.
    Suspend { user: String },
    /// Lift a suspension.
    Unsuspend { user: String },
    /// Delete an account and everything of it: posts (with events so every node forgets
    /// them), follows both ways, tokens, its timeline and search documents.
    Delete {
        user: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokensCommand {
    /// Issue an access token for an account (printed once).
    Issue {
        user: String,
        /// Comma-separated scopes.
        #[arg(long, default_value = "read,write,follow", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Days until the token expires (default: never).
        #[arg(long, value_name = "DAYS")]
        expires: Option<u64>,
    },
    /// List an account's tokens (by hash; tokens themselves are never stored).
    List { user: String },
    /// Revoke one token (the token or its hash), or every token of an account.
    Revoke {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        token: Option<String>,
        /// Revoke every token of this account.
        #[arg(long, value_name = "USER")]
        all: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphCommand {
    /// Bulk-load an edge list (`u v` per line: u follows v; `#`/`%` comments) into the
    /// store. Safe to re-run: nothing is duplicated.
    Import {
        file: PathBuf,
        /// Also add `v follows u` for every line.
        #[arg(long)]
        undirected: bool,
        /// Node n is account `{PREFIX}{n}`, created if missing (no password). Without it,
        /// node n is the account with id n.
        #[arg(long, value_name = "PREFIX")]
        create_accounts: Option<String>,
        /// Write `{"node","id","username","token"}` per line, one token per node (kept
        /// from an earlier run's file when still valid).
        #[arg(long, value_name = "FILE")]
        tokens_out: Option<PathBuf>,
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        bulk: Bulk,
    },
    /// A follows B (as if A followed through the API).
    Follow { a: String, b: String },
    /// A stops following B.
    Unfollow { a: String, b: String },
    /// Accounts, edges, follower-count distribution and the most followed accounts.
    Stats {
        /// How many top accounts to show.
        #[arg(long, default_value_t = 10)]
        top: usize,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedsCommand {
    /// Rebuild home timelines from the store.
    Build {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Forget home timelines (each is rebuilt on its owner's next read).
    Clear {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        user: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        #[arg(long)]
        dry_run: bool,
    },
    /// One home timeline: shard, length, bytes, newest and oldest post ids.
    Inspect { user: String },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardsCommand {
    /// Each shard: reachable, keys, memory, and how many accounts the ring assigns it.
    Status,
    /// Move exactly the timelines whose shard changes when ADDR joins or leaves the ring;
    /// then put the printed `shards` line in the config. Safe to re-run.
    Rebalance {
        #[arg(
            long,
            value_name = "ADDR",
            required_unless_present = "remove",
            conflicts_with = "remove"
        )]
        add: Option<String>,
        #[arg(long, value_name = "ADDR")]
        remove: Option<String>,
        #[arg(long)]
        dry_run: bool,
        /// Timelines moved at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusesCommand {
    /// Remove a status everywhere (store, timelines, search) and emit its delete.
    Remove { id: String },
    /// Remove every status older than DAYS.
    Purge {
        #[arg(long, value_name = "DAYS")]
        older_than: u64,
        #[arg(long)]
        dry_run: bool,
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountersCommand {
    /// Recompute every account's counts from the store and fix those that drifted.
    Recount {
        #[arg(long)]
        dry_run: bool,
        /// Accounts recounted at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchPart {
    Statuses,
    Accounts,
}

#[derive(Clone, Debug, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchCommand {
    /// Rebuild the index from the store, resuming an interrupted rebuild. The indexer role
    /// must not run on this index meanwhile.
    Reindex {
        #[arg(long, value_enum)]
        only: Option<SearchPart>,
        /// Start over instead of resuming.
        #[arg(long)]
        restart: bool,
    },
    /// Documents in the index, and whether a rebuild was left unfinished.
    Stats,
}

impl AdminCommand {
    /// The noun, for logs (never the arguments: they may hold a password).
    pub fn noun(&self) -> &'static str {
        match self {
            AdminCommand::Accounts { .. } => "accounts",
            AdminCommand::Tokens { .. } => "tokens",
            AdminCommand::Graph { .. } => "graph",
            AdminCommand::Feeds { .. } => "feeds",
            AdminCommand::Shards { .. } => "shards",
            AdminCommand::Statuses { .. } => "statuses",
            AdminCommand::Search { .. } => "search",
            AdminCommand::Counters { .. } => "counters",
            AdminCommand::Announcements { .. } => "announcements",
            AdminCommand::Media { .. } => "media",
            AdminCommand::Push { .. } => "push",
            AdminCommand::Doctor => "doctor",
        }
    }

    /// Make file paths absolute, so a server running elsewhere (its own working directory)
    /// reads and writes the files the operator named.
    pub fn absolutize(&mut self) -> std::io::Result<()> {
        if let AdminCommand::Graph {
            command: GraphCommand::Import {
                file, tokens_out, ..
            },
        } = self
        {
            *file = std::path::absolute(&*file)?;
            if let Some(out) = tokens_out {
                *out = std::path::absolute(&*out)?;
            }
        }
        Ok(())
    }
}
