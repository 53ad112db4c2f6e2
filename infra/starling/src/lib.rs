//! The roles of a Starling process and how they start and stop together. The `starling`
//! binary is a thin command line over this; integration tests start whole nodes with it,
//! several in one process when they test multi-node behaviour.

pub use starling_admin::reindex;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use anyhow::Context;
use starling_bus::{Backoff, Bus, Publisher};
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
    /// Media workers on the shared durable consumer `media.consumer`: process uploads,
    /// remove the files of deleted posts and of uploads never attached.
    Media,
    /// Web Push workers on the shared durable consumer `push.consumer`.
    Push,
    /// Trends (a shared durable consumer, `discovery.consumer`) and the who-to-follow job
    /// (rounds shared through Redis by every discovery process).
    Discovery,
}

impl Role {
    pub fn parse_list(s: &str) -> anyhow::Result<Vec<Role>> {
        let mut roles = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let role = match part {
                "api" => Role::Api,
                "fanout" => Role::Fanout,
                "indexer" => Role::Indexer,
                "media" => Role::Media,
                "push" => Role::Push,
                "discovery" => Role::Discovery,
                "all" => return Ok(Role::all()),
                other => {
                    anyhow::bail!(
                        "unknown role {other:?} (known: api, fanout, indexer, media, push, discovery, all)"
                    )
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
        vec![
            Role::Api,
            Role::Fanout,
            Role::Indexer,
            Role::Media,
            Role::Push,
            Role::Discovery,
        ]
    }
}

/// A started node. Dropping it does not stop it; call [`Node::stop`].
pub struct Node {
    /// Where the API listens, if this node runs it.
    pub addr: Option<SocketAddr>,
    /// Where `/metrics` listens on its own port, if `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub store: AnyStore,
    pub timelines: Timelines,
    pub bus: Bus,
    /// The search index, opened when this node runs the api or the indexer.
    pub search: Option<SearchIndex>,
    shutdown: CancellationToken,
    http: Option<actix_web::dev::ServerHandle>,
    /// The api's context, when this node runs the api (its live streams close on stop).
    api: Option<Arc<starling_api::Api>>,
    /// The node's publisher and its outbox, once a role needed one.
    publisher: Option<Publisher<AnyStore>>,
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
/// Each role has its own starter below; this connects what they share and calls them.
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
    let mut node = Node {
        addr: None,
        metrics_addr: None,
        store,
        timelines,
        bus,
        search: None,
        shutdown: CancellationToken::new(),
        http: None,
        api: None,
        publisher: None,
        tasks: Vec::new(),
    };
    node.keep_stream();
    if roles.contains(&Role::Api) || roles.contains(&Role::Indexer) {
        node.open_search(&settings).await?;
    }
    if roles.contains(&Role::Api) {
        node.start_api(&settings)?;
    }
    if settings.store.backend == StoreBackend::Embedded {
        node.start_admin_socket(&settings).await;
    }
    if roles.contains(&Role::Fanout) {
        node.start_fanout(&settings);
    }
    if roles.contains(&Role::Indexer) {
        node.start_indexer(&settings)?;
    }
    if roles.contains(&Role::Media) {
        node.start_media(&settings)?;
    }
    if roles.contains(&Role::Push) {
        node.start_push(&settings);
    }
    if roles.contains(&Role::Discovery) {
        node.start_discovery(&settings);
    }
    if !settings.metrics.listen.is_empty() {
        node.start_metrics(&settings)?;
    }
    tracing::info!(?roles, addr = ?node.addr, "starling started");
    Ok(node)
}

/// The role starters. Each adds its tasks to the node, so [`Node::stop`] stops them all.
impl Node {
    /// Publishers need the stream to exist (until it does their events wait in the outbox),
    /// so every node makes sure of it, retrying while NATS is down. Fan-out workers and
    /// indexers wait for it on their own.
    fn keep_stream(&mut self) {
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                match bus.ensure_stream().await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "JetStream stream not ready yet; retrying")
                    }
                }
                if !backoff.wait(&shutdown).await {
                    return;
                }
            }
        }));
    }

    /// Open the search index at `search.path` (the api reads it, the indexer writes it).
    async fn open_search(&mut self, settings: &Settings) -> anyhow::Result<SearchIndex> {
        if let Some(search) = &self.search {
            return Ok(search.clone());
        }
        let path = settings.search.path.clone();
        let search = tokio::task::spawn_blocking(move || SearchIndex::open(&path))
            .await
            .context("opening the search index")?
            .with_context(|| {
                format!(
                    "opening the search index at {}",
                    settings.search.path.display()
                )
            })?;
        self.search = Some(search.clone());
        Ok(search)
    }

    /// This node's publisher, and the task draining its outbox (one per node).
    fn publisher(&mut self, settings: &Settings) -> Publisher<AnyStore> {
        if let Some(publisher) = &self.publisher {
            return publisher.clone();
        }
        let publisher = Publisher::new(self.bus.clone(), self.store.clone(), &settings.nats);
        let drain = publisher.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(
            async move { drain.run_outbox(shutdown).await },
        ));
        self.publisher = Some(publisher.clone());
        publisher
    }

    /// The api role: the Mastodon client API on `api.listen`, its live streams, and the
    /// outbox that republishes its events. Needs the search index open.
    fn start_api(&mut self, settings: &Settings) -> anyhow::Result<()> {
        let search = self
            .search
            .clone()
            .context("the api needs the search index open")?;
        let publisher = self.publisher(settings);
        let listener = TcpListener::bind(&settings.api.listen)
            .with_context(|| format!("listening on {}", settings.api.listen))?;
        self.addr = Some(
            listener
                .local_addr()
                .context("reading the listen address")?,
        );
        let api = Arc::new(starling_api::Api::new(
            self.store.clone(),
            self.timelines.clone(),
            self.bus.clone(),
            publisher,
            settings.clone(),
            search,
            media_storage(settings)?,
        ));
        starling_api::streaming::Hub::start(&api);
        self.api = Some(api.clone());
        let server = starling_api::server(api, listener).context("starting the HTTP server")?;
        self.http = Some(server.handle());
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "HTTP server failed");
            }
        }));
        Ok(())
    }

    /// The embedded store belongs to this process: `starling admin` reaches it through the
    /// admin socket beside the data. Several nodes of one process share one socket.
    async fn start_admin_socket(&mut self, settings: &Settings) {
        let path = starling_admin::socket::socket_path(&settings.store.embedded.path);
        let listener = match starling_admin::socket::bind(&path).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::info!(error = %format!("{e:#}"), "not serving the admin socket");
                return;
            }
        };
        let forget = self.api.clone().map(|api: Arc<starling_api::Api>| {
            let hook: starling_admin::ForgetHook = Arc::new(move |what| {
                let api = api.clone();
                Box::pin(async move {
                    match what {
                        starling_admin::Forget::Account(id) => api.forget_account(id).await,
                        starling_admin::Forget::Token(hash) => api.forget_token(&hash).await,
                    }
                })
            });
            hook
        });
        let ctx = starling_admin::AdminContext {
            settings: settings.clone(),
            store: self.store.clone(),
            timelines: self.timelines.clone(),
            bus: self.bus.clone(),
            publisher: self.publisher(settings),
            forget,
        };
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(starling_admin::socket::serve(
            listener, path, ctx, shutdown,
        )));
    }

    /// `/metrics` and `/health` on `metrics.listen`, for a process that runs no api.
    fn start_metrics(&mut self, settings: &Settings) -> anyhow::Result<()> {
        use actix_web::{App, HttpResponse, HttpServer, web};
        async fn metrics() -> HttpResponse {
            match prometheus::TextEncoder::new().encode_to_string(&prometheus::gather()) {
                Ok(text) => HttpResponse::Ok()
                    .content_type("text/plain; version=0.0.4")
                    .body(text),
                Err(e) => HttpResponse::InternalServerError()
                    .json(serde_json::json!({ "error": e.to_string() })),
            }
        }
        let listener = TcpListener::bind(&settings.metrics.listen)
            .with_context(|| format!("listening for metrics on {}", settings.metrics.listen))?;
        self.metrics_addr = Some(
            listener
                .local_addr()
                .context("reading the metrics address")?,
        );
        let server = HttpServer::new(|| {
            App::new().route("/metrics", web::get().to(metrics)).route(
                "/health",
                web::get().to(|| async { HttpResponse::Ok().json(serde_json::json!({})) }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .context("starting the metrics server")?
        .run();
        let handle = server.handle();
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            tokio::select! {
                result = server => if let Err(e) = result {
                    tracing::error!(error = %e, "metrics server failed");
                },
                () = shutdown.cancelled() => handle.stop(true).await,
            }
        }));
        Ok(())
    }

    /// The fan-out role: workers on the shared durable consumer `fanout.consumer`.
    fn start_fanout(&mut self, settings: &Settings) {
        let fanout = Fanout::new(
            self.store.clone(),
            self.timelines.clone(),
            settings.fanout.clone(),
        )
        .with_live(self.bus.clone())
        .with_announcements(self.publisher(settings));
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        // Waits for NATS and the stream on its own.
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = fanout.run(bus, shutdown).await {
                tracing::error!(error = %e, "fan-out stopped");
            }
        }));
    }

    /// The indexer role: this node's own durable consumer, writing the search index at
    /// `search.path`. Needs the search index open.
    fn start_indexer(&mut self, settings: &Settings) -> anyhow::Result<()> {
        let search = self
            .search
            .clone()
            .context("the indexer needs the search index open")?;
        let indexer = Indexer::new(search, &settings.search, settings.node_id);
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        // Waits for NATS and the stream on its own, like fan-out.
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = indexer.run(bus, shutdown).await {
                tracing::error!(error = %e, "search indexer stopped");
            }
        }));
        Ok(())
    }
}

/// The media storage backend of `media.backend` (checked, not yet contacted).
fn media_storage(settings: &Settings) -> anyhow::Result<starling_media::storage::AnyStorage> {
    starling_media::storage::AnyStorage::from_settings(&settings.media).with_context(|| {
        format!(
            "media storage ({})",
            starling_media::storage::AnyStorage::describe(&settings.media)
        )
    })
}

impl Node {
    /// The media role: workers on the shared durable consumer `media.consumer`.
    fn start_media(&mut self, settings: &Settings) -> anyhow::Result<()> {
        let worker = starling_media::worker::MediaWorker::new(
            self.store.clone(),
            media_storage(settings)?,
            settings.media.clone(),
        );
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        // Waits for NATS and the stream on its own, like fan-out.
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = worker.run(bus, shutdown).await {
                tracing::error!(error = %e, "media worker stopped");
            }
        }));
        Ok(())
    }

    /// The push role: workers on the shared durable consumer `push.consumer`, sending Web
    /// Push messages for new notifications. Waits for the store (the VAPID key) and NATS.
    fn start_push(&mut self, settings: &Settings) {
        let store = self.store.clone();
        let timelines = self.timelines.clone();
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        let settings = settings.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut backoff = Backoff::default();
            let vapid = loop {
                match starling_push::vapid_key(&store, &settings.push).await {
                    Ok(key) => break key,
                    Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
                        tracing::warn!(error = %e, "push worker waiting for the store");
                        if !backoff.wait(&shutdown).await {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "push worker not started");
                        return;
                    }
                }
            };
            let subject = starling_push::vapid_subject(&settings.push, &settings.api.public_url);
            let deliverer = match starling_push::Deliverer::new(vapid, subject, &settings.push) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "push worker not started");
                    return;
                }
            };
            let worker = starling_push::PushWorker::new(
                store,
                deliverer,
                &settings.push,
                &settings.api.public_url,
            )
            .with_counters(timelines);
            if let Err(e) = worker.run(bus, shutdown).await {
                tracing::error!(error = %e, "push worker stopped");
            }
        }));
    }
}

impl Node {
    /// The discovery role: the trends worker on the shared durable consumer
    /// `discovery.consumer`, and the suggestion job.
    fn start_discovery(&mut self, settings: &Settings) {
        let trends = starling_discovery::TrendsWorker::new(
            self.store.clone(),
            self.timelines.clone(),
            &settings.discovery,
        );
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            if let Err(e) = trends.run(bus, shutdown).await {
                tracing::error!(error = %e, "trends worker stopped");
            }
        }));
        let job = starling_discovery::SuggestionJob::new(
            self.store.clone(),
            self.timelines.clone(),
            &settings.discovery,
        );
        let shutdown = self.shutdown.clone();
        self.tasks
            .push(tokio::spawn(async move { job.run(shutdown).await }));
    }
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
