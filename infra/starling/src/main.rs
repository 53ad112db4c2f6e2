//! `starling`: the one binary of a Starling installation. Subcommands share the settings
//! loader (defaults < `--config` TOML < `STARLING_*` environment < flags).
//!
//! `serve` runs roles (api, fanout, indexer, media, push, discovery), `migrate` applies the store schema
//! (idempotent), `config` prints the effective settings, `search reindex` rebuilds this
//! node's search index from the store.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use figment::value::Value;
use starling_schema::settings::{LogFormat, Settings, StoreBackend};
use starling_store::AnyStore;

#[derive(Parser)]
#[command(
    name = "starling",
    version,
    about = "Starling: a self-hostable social feed backend"
)]
struct Cli {
    /// TOML settings file (see infra/starling.example.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// This process's node id (settings key `node_id`).
    #[arg(long, global = true)]
    node_id: Option<u32>,
    /// Store backend: `embedded` or `scylla` (settings key `store.backend`).
    #[arg(long, global = true)]
    store: Option<String>,
    /// Embedded store directory (settings key `store.embedded.path`).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log filter (settings key `log.filter`).
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run roles until SIGINT/SIGTERM, then stop gracefully.
    Serve {
        /// Comma-separated roles: api, fanout, indexer, media, push, discovery (default: all).
        #[arg(long, default_value = "all")]
        roles: String,
        /// Address for the API (settings key `api.listen`).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply the store schema (idempotent) and print its version.
    Migrate,
    /// Print the effective settings as JSON (secrets hidden).
    Config,
    /// The operator's commands (like Mastodon's tootctl). They talk to the store, Redis and
    /// NATS directly, or through the running server when it holds the embedded store.
    Admin {
        /// Print the result as JSON (for scripts).
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: starling_admin::AdminCommand,
    },
    /// The search index.
    Search {
        #[command(subcommand)]
        command: SearchCommand,
    },
}

#[derive(Subcommand)]
enum SearchCommand {
    /// Rebuild this node's index (`search.path`) from the store, resuming an interrupted
    /// rebuild. Stop the indexer role on this index first.
    Reindex {
        /// Rebuild only statuses or only accounts.
        #[arg(long, value_enum)]
        only: Option<Only>,
        /// Start over instead of resuming an interrupted rebuild.
        #[arg(long)]
        restart: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Only {
    Statuses,
    Accounts,
}

/// A spinner with a count and a rate: the store cannot say how many rows a scan will find.
struct Bar(Option<indicatif::ProgressBar>);

impl starling::reindex::Progress for Bar {
    fn start(&mut self, what: starling::reindex::What, resumed: bool) {
        let bar = indicatif::ProgressBar::new_spinner();
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {prefix}: {human_pos} indexed ({per_sec}, {elapsed})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
        bar.set_style(style);
        let name = match what {
            starling::reindex::What::Statuses => "statuses",
            starling::reindex::What::Accounts => "accounts",
        };
        bar.set_prefix(if resumed {
            format!("{name} (resumed)")
        } else {
            name.to_owned()
        });
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.0 = Some(bar);
    }

    fn advance(&mut self, docs: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(docs);
        }
    }

    fn finish(&mut self, _what: starling::reindex::What, docs: u64) {
        if let Some(bar) = self.0.take() {
            bar.set_position(docs);
            bar.finish();
        }
    }
}

impl Cli {
    fn flags(&self) -> Vec<(&'static str, Value)> {
        let mut flags = Vec::new();
        if let Command::Serve {
            listen: Some(l), ..
        } = &self.command
        {
            flags.push(("api.listen", Value::from(l.as_str())));
        }
        if let Some(n) = self.node_id {
            flags.push(("node_id", Value::from(n)));
        }
        if let Some(s) = &self.store {
            flags.push(("store.backend", Value::from(s.as_str())));
        }
        if let Some(d) = &self.data_dir {
            flags.push(("store.embedded.path", Value::from(d.display().to_string())));
        }
        if let Some(l) = &self.log {
            flags.push(("log.filter", Value::from(l.as_str())));
        } else if matches!(self.command, Command::Admin { .. }) {
            // Commands speak through their output; logs only when something is wrong.
            flags.push(("log.filter", Value::from("warn,fjall=error,lsm_tree=error")));
        }
        flags
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log.filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = cli.flags();
    let settings = Settings::load(cli.config.as_deref(), &flags).context("loading settings")?;
    init_logging(&settings);
    match cli.command {
        Command::Admin { json, command } => return admin(settings, command, json).await,
        Command::Serve { roles, .. } => {
            let roles = starling::Role::parse_list(&roles)?;
            let node = starling::start(settings, &roles).await?;
            if let Some(addr) = node.addr {
                println!("starling listening on http://{addr}");
            }
            wait_for_signal().await;
            tracing::info!("stopping: finishing requests and fan-out in flight");
            node.stop().await;
        }
        Command::Migrate => {
            let version = AnyStore::migrate(&settings)
                .await
                .context("applying the schema")?;
            println!("store schema is at version {version}");
        }
        Command::Search {
            command: SearchCommand::Reindex { only, restart },
        } => {
            let store = AnyStore::open(&settings)
                .await
                .context("opening the store")?;
            let what = match only {
                None => vec![],
                Some(Only::Statuses) => vec![starling::reindex::What::Statuses],
                Some(Only::Accounts) => vec![starling::reindex::What::Accounts],
            };
            let total =
                starling::reindex::run(&settings, &store, &what, restart, &mut Bar(None)).await?;
            println!(
                "search index at {} rebuilt: {total} documents",
                settings.search.path.display()
            );
        }
        Command::Config => {
            let shown = settings.redacted();
            println!(
                "{}",
                serde_json::to_string_pretty(&shown).context("printing settings")?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run an admin command through the running server's socket if one answers, else directly.
async fn admin(
    settings: Settings,
    mut command: starling_admin::AdminCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    use starling_admin::socket;
    command.absolutize().context("resolving file paths")?;
    let bars = Bars::default();
    let mut remote = None;
    if settings.store.backend == StoreBackend::Embedded {
        let path = socket::socket_path(&settings.store.embedded.path);
        remote = socket::connect(&path).await;
    }
    let outcome = match remote {
        Some(stream) => socket::call(stream, &command, &bars).await,
        None => {
            let store = AnyStore::open(&settings).await.context(
                "opening the store (if `starling serve` runs on it, its admin socket did not answer)",
            )?;
            let ctx = starling_admin::AdminContext::connect(settings, store).await?;
            starling_admin::run(&ctx, command, &bars).await
        }
    };
    bars.clear();
    let outcome = outcome?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome.data).context("printing the result")?
        );
    } else {
        for line in &outcome.lines {
            println!("{line}");
        }
        println!("{}", outcome.summary);
    }
    if outcome.failed {
        if json {
            eprintln!("starling: {}", outcome.summary);
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Admin progress as indicatif bars on stderr (hidden when stderr is not a terminal).
#[derive(Default)]
struct Bars(std::sync::Mutex<Option<indicatif::ProgressBar>>);

impl Bars {
    fn clear(&self) {
        if let Ok(mut bar) = self.0.lock()
            && let Some(bar) = bar.take()
        {
            bar.finish_and_clear();
        }
    }
}

impl starling_admin::Progress for Bars {
    fn event(&self, event: starling_admin::ProgressEvent) {
        use starling_admin::ProgressEvent;
        let Ok(mut slot) = self.0.lock() else { return };
        match event {
            ProgressEvent::Start { task, total } => {
                if let Some(old) = slot.take() {
                    old.finish();
                }
                let (bar, template) = match total {
                    Some(n) => (
                        indicatif::ProgressBar::new(n),
                        "{prefix}: [{bar:30}] {human_pos}/{human_len} ({per_sec}, eta {eta})",
                    ),
                    None => (
                        indicatif::ProgressBar::new_spinner(),
                        "{spinner} {prefix}: {human_pos} ({per_sec}, {elapsed})",
                    ),
                };
                let style = indicatif::ProgressStyle::with_template(template)
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                bar.set_style(style.progress_chars("=> "));
                bar.set_prefix(task);
                bar.enable_steady_tick(std::time::Duration::from_millis(200));
                *slot = Some(bar);
            }
            ProgressEvent::Advance { by } => {
                if let Some(bar) = slot.as_ref() {
                    bar.inc(by);
                }
            }
            ProgressEvent::Finish => {
                if let Some(bar) = slot.take() {
                    bar.finish();
                }
            }
            ProgressEvent::Note { message } => match slot.as_ref() {
                Some(bar) => bar.suspend(|| eprintln!("note: {message}")),
                None => eprintln!("note: {message}"),
            },
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("starling: {e:#}");
            ExitCode::FAILURE
        }
    }
}
