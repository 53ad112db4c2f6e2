//! The roles of a Starling process and how they start and stop together. The `starling`
//! binary is a thin command line over this; integration tests start whole nodes with it,
//! several in one process when they test multi-node behaviour.

pub use starling_admin::reindex;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use starling_bus::{Bus, Publisher};
use starling_fanout::Fanout;
use starling_schema::settings::{Settings, StoreBackend};
use starling_search::{Indexer, SearchIndex};
use starling_store::AnyStore;
use starling_timeline::Timelines;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a process does. One binary runs any set of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The Mastodon client API, and the outbox that republishes its events.
    Api,
    /// Fan-out workers on the shared durable consumer.
    Fanout,
    /// This node's search indexer, on its own durable consumer, writing `search.path`.
    Indexer,
}

impl Role {
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<Role>> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let role = match part {
                "api" => Role::Api,
                "fanout" => Role::Fanout,
                "indexer" => Role::Indexer,
                "all" => return Ok(Role::all()),
                other => {
                    anyhow::bail!("unknown role {other:?} (known: api, fanout, indexer, all)")
                }
            };
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        anyhow::ensure!(!roles.is_empty(), "no roles given");
        Ok(roles)
    }

    pub fn all() -> Vec<Role> {
        vec![Role::Api, Role::Fanout, Role::Indexer]
    }
}

/// A started node. Dropping it does not stop it; call [`Node::stop`].
pub struct Node {
    /// Where the API listens, if this node runs it.
    pub addr: Option<SocketAddr>,
    pub store: AnyStore,
    pub timelines: Timelines,
    pub bus: Bus,
    /// The search index, opened when this node runs the api or the indexer.
    pub search: Option<SearchIndex>,
    shutdown: CancellationToken,
    http: Option<actix_web::dev::ServerHandle>,
    /// The api's context, when this node runs the api (its live streams close on stop).
    api: Option<Arc<starling_api::Api>>,
    tasks: Vec<JoinHandle<()>>,
}

/// Start `roles` with `settings`, opening the configured store.
pub async fn start(settings: Settings, roles: &[Role]) -> anyhow::Result<Node> {
    let store = AnyStore::open(&settings)
        .await
        .context("opening the store")?;
    start_with_store(settings, roles, store).await
}

/// Start `roles` on an already open store (several nodes of one test share an embedded one).
pub async fn start_with_store(
    settings: Settings,
    roles: &[Role],
    store: AnyStore,
) -> anyhow::Result<Node> {
    let timelines = Timelines::connect(&settings.redis)
        .await
        .context("connecting to the Redis shards")?;
    let bus = Bus::connect(&settings.nats)
        .await
        .context("connecting to NATS")?;
    let shutdown = CancellationToken::new();
    let mut tasks = Vec::new();

    // Publishers need the stream to exist (until it does their events wait in the outbox),
    // so every node makes sure of it, retrying while NATS is down. Fan-out workers wait
    // for it on their own.
    {
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                match bus.ensure_stream().await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "JetStream stream not ready yet; retrying")
                    }
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }));
    }

    let search = if roles.contains(&Role::Api) || roles.contains(&Role::Indexer) {
        let path = settings.search.path.clone();
        Some(
            tokio::task::spawn_blocking(move || SearchIndex::open(&path))
                .await
                .context("opening the search index")?
                .with_context(|| {
                    format!(
                        "opening the search index at {}",
                        settings.search.path.display()
                    )
                })?,
        )
    } else {
        None
    };

    let mut http = None;
    let mut addr = None;
    let mut admin_publisher = None;
    let mut api_context = None;
    if let (true, Some(search)) = (roles.contains(&Role::Api), &search) {
        let publisher = Publisher::new(bus.clone(), store.clone(), &settings.nats);
        admin_publisher = Some(publisher.clone());
        {
            let publisher = publisher.clone();
            let shutdown = shutdown.clone();
            tasks.push(tokio::spawn(
                async move { publisher.run_outbox(shutdown).await },
            ));
        }
        let listener = TcpListener::bind(&settings.api.listen)
            .with_context(|| format!("listening on {}", settings.api.listen))?;
        addr = Some(
            listener
                .local_addr()
                .context("reading the listen address")?,
        );
        let api = Arc::new(starling_api::Api::new(
            store.clone(),
            timelines.clone(),
            bus.clone(),
            publisher,
            settings.clone(),
            search.clone(),
        ));
        starling_api::streaming::Hub::start(&api);
        api_context = Some(api.clone());
        let server = starling_api::server(api, listener).context("starting the HTTP server")?;
        http = Some(server.handle());
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
    }
    // The embedded store belongs to this process: `starling admin` reaches it through the
    // admin socket beside the data. Several nodes of one process share one socket.
    if settings.store.backend == StoreBackend::Embedded {
        let path = starling_admin::socket::socket_path(&settings.store.embedded.path);
        match starling_admin::socket::bind(&path).await {
            Ok(listener) => {
                let publisher = match &admin_publisher {
                    Some(p) => p.clone(),
                    None => {
                        let publisher = Publisher::new(bus.clone(), store.clone(), &settings.nats);
                        let drain = publisher.clone();
                        let shutdown = shutdown.clone();
                        tasks.push(tokio::spawn(
                            async move { drain.run_outbox(shutdown).await },
                        ));
                        publisher
                    }
                };
                let ctx = starling_admin::AdminContext {
                    settings: settings.clone(),
                    store: store.clone(),
                    timelines: timelines.clone(),
                    bus: bus.clone(),
                    publisher,
                    forget: api_context.clone().map(|api: Arc<starling_api::Api>| {
                        let hook: starling_admin::ForgetHook = Arc::new(move |what| {
                            let api = api.clone();
                            Box::pin(async move {
                                match what {
                                    starling_admin::Forget::Account(id) => {
                                        api.forget_account(id).await
                                    }
                                    starling_admin::Forget::Token(hash) => {
                                        api.forget_token(&hash).await
                                    }
                                }
                            })
                        });
                        hook
                    }),
                };
                let shutdown = shutdown.clone();
                tasks.push(tokio::spawn(starling_admin::socket::serve(
                    listener, path, ctx, shutdown,
                )));
            }
            Err(e) => tracing::info!(error = %format!("{e:#}"), "not serving the admin socket"),
        }
    }
    if roles.contains(&Role::Fanout) {
        let fanout = Fanout::new(store.clone(), timelines.clone(), settings.fanout.clone())
            .with_live(bus.clone());
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = fanout.run(bus, shutdown).await {
                tracing::error!(error = %e, "fan-out stopped");
            }
        }));
    }
    if let (true, Some(search)) = (roles.contains(&Role::Indexer), &search) {
        let indexer = Indexer::new(search.clone(), &settings.search, settings.node_id);
        let bus = bus.clone();
        let shutdown = shutdown.clone();
        // Waits for NATS and the stream on its own, like fan-out.
        tasks.push(tokio::spawn(async move {
            if let Err(e) = indexer.run(bus, shutdown).await {
                tracing::error!(error = %e, "search indexer stopped");
            }
        }));
    }
    tracing::info!(?roles, ?addr, "starling started");
    Ok(Node {
        addr,
        store,
        timelines,
        bus,
        search,
        shutdown,
        http,
        api: api_context,
        tasks,
    })
}

impl Node {
    /// Graceful stop: stop accepting requests and finish those in flight, then let fan-out
    /// and the indexer finish and ack their events in flight, then stop the outbox.
    pub async fn stop(self) {
        // Live streams never finish on their own: close them so the HTTP server can drain.
        if let Some(api) = &self.api {
            api.hub.close_all();
        }
        if let Some(http) = &self.http {
            http.stop(true).await;
        }
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Stop at once, as a crash would: nothing in flight is finished or acked.
    pub fn kill(self) {
        if let Some(http) = &self.http {
            drop(http.stop(false));
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}
