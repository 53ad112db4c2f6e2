//! Live streams: Mastodon's streaming API over WebSocket (`/api/v1/streaming`) and
//! server-sent events (`/api/v1/streaming/user` and the other stream paths).
//!
//! Every api node runs a [`Hub`] holding this node's connections. A connection subscribes
//! to streams (`user`, `user:notification`, `public`, `public:local`, `hashtag`,
//! `hashtag:local`); each stream maps to a live NATS subject ([`Channel`]) that the node
//! subscribes to while at least one of its connections wants it, so a node receives the
//! events of the users connected to it and no one else's. One dispatcher task per subject
//! renders each event once (a status for the user it concerns, or for nobody on public
//! streams) and queues it on every interested connection. Each connection's queue is
//! bounded (`streaming.buffer`): a client that falls that far behind is disconnected, never
//! buffered without limit. The hub also keeps connected users marked online in Redis (so
//! fan-out sends live events only for them) and closes the streams of revoked tokens,
//! whichever node revoked them.

mod sse;
mod ws;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web;
use serde_json::json;
use starling_bus::{Channel, LiveSubscription};
use starling_schema::events::LiveEvent;
use starling_schema::model::Post;
use starling_schema::policy::{self, Relation, Surface};
use starling_schema::settings::StreamingSettings;
use starling_schema::{ErrorKind, Id};
use starling_store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::hydrate;

mod metrics;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/streaming", web::get().to(ws::connect))
        .route("/api/v1/streaming/", web::get().to(ws::connect))
        .route("/api/v1/streaming/health", web::get().to(health))
        .route("/api/v1/streaming/{stream:.+}", web::get().to(sse::connect));
}

async fn health() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain")
        .body("OK")
}

/// One stream a connection can subscribe to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Sub {
    User,
    UserNotification,
    Public,
    PublicLocal,
    Hashtag(String),
    HashtagLocal(String),
    /// The user's direct conversations (`conversation` events).
    Direct,
    /// One of the user's lists (`update`/`delete` as posts enter and leave it).
    List(Id),
}

/// Why a subscription was refused, as the WebSocket error message Mastodon sends.
#[derive(Debug, PartialEq, Eq)]
pub struct SubError {
    pub status: u16,
    pub message: &'static str,
}

impl SubError {
    pub fn json(&self) -> String {
        json!({ "error": self.message, "status": self.status }).to_string()
    }

    fn into_api(self) -> ApiError {
        let kind = match self.status {
            401 => ErrorKind::Unauthorized,
            429 => ErrorKind::TooManyRequests,
            503 => ErrorKind::Unavailable,
            _ => ErrorKind::Invalid,
        };
        ApiError::new(kind, self.message)
    }
}

const UNKNOWN_STREAM: SubError = SubError {
    status: 400,
    message: "Unknown stream type",
};
const NO_TAG: SubError = SubError {
    status: 400,
    message: "No tag for stream provided",
};
const BAD_TAG: SubError = SubError {
    status: 400,
    message: "Invalid hashtag: at most 100 letters, digits or underscores",
};
const TOO_MANY_SUBS: SubError = SubError {
    status: 429,
    message: "Too many subscriptions on this connection",
};
const NO_LIST: SubError = SubError {
    status: 400,
    message: "Missing list name parameter",
};
const BAD_LIST: SubError = SubError {
    status: 400,
    message: "Invalid list id",
};
/// Mastodon's answer for a list that is not the user's (or does not exist).
const NOT_YOUR_LIST: SubError = SubError {
    status: 401,
    message: "Not authorized to stream this list",
};
const NO_TOKEN: SubError = SubError {
    status: 401,
    message: "Missing access token",
};

impl Sub {
    /// A stream by its Mastodon name (`user`, `public:local`, `hashtag` with `tag`, `list`
    /// with `list`, ...). Whether a list is the user's is checked on subscribing.
    pub fn parse(stream: &str, tag: Option<&str>, list: Option<&str>) -> Result<Sub, SubError> {
        let tag = || match tag.map(str::trim).filter(|t| !t.is_empty()) {
            None => Err(NO_TAG),
            Some(t) => match Channel::hashtag(t) {
                Some(Channel::Hashtag(t)) => Ok(t),
                _ => Err(BAD_TAG),
            },
        };
        Ok(match stream {
            "user" => Sub::User,
            "user:notification" => Sub::UserNotification,
            "public" => Sub::Public,
            "public:local" => Sub::PublicLocal,
            "hashtag" => Sub::Hashtag(tag()?),
            "hashtag:local" => Sub::HashtagLocal(tag()?),
            "direct" => Sub::Direct,
            "list" => match list.map(str::trim).filter(|l| !l.is_empty()) {
                None => return Err(NO_LIST),
                Some(l) => Sub::List(l.parse().map_err(|_| BAD_LIST)?),
            },
            _ => return Err(UNKNOWN_STREAM),
        })
    }

    /// The `stream` array of its messages: `["user"]`, `["hashtag", "rust"]`.
    pub fn names(&self) -> Vec<String> {
        match self {
            Sub::User => vec!["user".into()],
            Sub::UserNotification => vec!["user:notification".into()],
            Sub::Public => vec!["public".into()],
            Sub::PublicLocal => vec!["public:local".into()],
            Sub::Hashtag(t) => vec!["hashtag".into(), t.clone()],
            Sub::HashtagLocal(t) => vec!["hashtag:local".into(), t.clone()],
            Sub::Direct => vec!["direct".into()],
            Sub::List(l) => vec!["list".into(), l.to_string()],
        }
    }

    /// The live subject that carries it, for a connection signed in as `user`.
    fn channel(&self, user: Option<Id>) -> Result<Channel, SubError> {
        match self {
            // A user's own streams all ride their user subject.
            Sub::User | Sub::UserNotification | Sub::Direct | Sub::List(_) => {
                user.map(Channel::User).ok_or(NO_TOKEN)
            }
            Sub::Public | Sub::PublicLocal => Ok(Channel::Public),
            Sub::Hashtag(t) | Sub::HashtagLocal(t) => Channel::hashtag(t).ok_or(NO_TAG),
        }
    }

    /// Whether it carries this kind of event.
    fn wants(&self, event: &LiveEvent) -> bool {
        let timeline = matches!(
            self,
            Sub::User | Sub::Public | Sub::PublicLocal | Sub::Hashtag(_) | Sub::HashtagLocal(_)
        );
        match event {
            LiveEvent::Update { .. }
            | LiveEvent::StatusUpdate { .. }
            | LiveEvent::Delete { .. } => timeline,
            LiveEvent::Notification { .. } => matches!(self, Sub::User | Sub::UserNotification),
            LiveEvent::ListUpdate { list, .. } | LiveEvent::ListDelete { list, .. } => {
                *self == Sub::List(*list)
            }
            LiveEvent::Conversation { .. } => *self == Sub::Direct,
            LiveEvent::Revoked { .. }
            | LiveEvent::Forget { .. }
            | LiveEvent::Shunned { .. }
            | LiveEvent::AccountChanged { .. } => false,
        }
    }
}

/// One event ready for a connection: its stream, its name and its payload (a JSON
/// document, or a bare id for `delete`).
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub stream: Arc<Vec<String>>,
    pub event: &'static str,
    pub payload: Arc<str>,
}

impl Outgoing {
    /// The WebSocket message: the payload travels as a JSON string.
    pub fn ws_text(&self) -> String {
        json!({ "stream": *self.stream, "event": self.event, "payload": *self.payload }).to_string()
    }

    /// The server-sent event.
    pub fn sse_text(&self) -> String {
        format!("event: {}\ndata: {}\n\n", self.event, self.payload)
    }
}

/// One open stream (a WebSocket, which may carry several subscriptions, or an SSE response).
pub struct Conn {
    id: u64,
    user: Option<Id>,
    /// The client's address as rate limits key it.
    ip: Option<String>,
    token_hash: Option<String>,
    tx: mpsc::Sender<Outgoing>,
    /// Cancelled to disconnect it: too slow, token revoked, node stopping.
    pub closed: CancellationToken,
    /// Its subscriptions (changed under the registry's lock), so closing it visits only the
    /// channels it is on.
    subs: Mutex<Vec<Sub>>,
}

impl Conn {
    /// Queue an event without waiting; a full queue means the client is not keeping up.
    fn offer(&self, out: Outgoing) {
        match self.tx.try_send(out) {
            Ok(()) => metrics::delivered(),
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.closed.is_cancelled() {
                    tracing::info!(
                        conn = self.id,
                        "disconnecting a stream that fell too far behind"
                    );
                    metrics::dropped_slow();
                    self.closed.cancel();
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// Removes its connection from the hub when the transport lets go of it.
pub struct ConnGuard {
    api: Arc<Api>,
    pub conn: Arc<Conn>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.api.hub.remove(self.conn.id);
    }
}

struct ChannelState {
    subs: Vec<(Arc<Conn>, Sub)>,
    /// The dispatcher owning the NATS subscription: aborting it unsubscribes.
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Registry {
    conns: HashMap<u64, Arc<Conn>>,
    channels: HashMap<Channel, ChannelState>,
    /// Open streams per user and per client address, for `max_per_user` and `max_per_ip`.
    per_user: HashMap<Id, usize>,
    per_ip: HashMap<String, usize>,
}

fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// This node's live connections and the subjects they need.
pub struct Hub {
    settings: StreamingSettings,
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    open: AtomicUsize,
    /// Cancelled when the node stops: every connection closes.
    shutdown: CancellationToken,
    /// The NATS connection user-chosen subscriptions go on, apart from the one publishing
    /// and fan-out use (made on the first subscription).
    live: tokio::sync::OnceCell<starling_bus::Bus>,
}

impl Hub {
    pub fn new(settings: StreamingSettings) -> Hub {
        Hub {
            settings,
            registry: Mutex::default(),
            next_id: AtomicU64::new(1),
            open: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
            live: tokio::sync::OnceCell::new(),
        }
    }

    async fn live_bus<'a>(&'a self, api: &'a Api) -> &'a starling_bus::Bus {
        let made = self
            .live
            .get_or_try_init(|| api.bus.live_connection())
            .await;
        match made {
            Ok(bus) => bus,
            Err(e) => {
                tracing::warn!(error = %e, "no separate NATS connection for streams; sharing the main one");
                &api.bus
            }
        }
    }

    /// Close every stream (the node is stopping).
    pub fn close_all(&self) {
        self.shutdown.cancel();
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.settings.heartbeat_secs.max(1))
    }

    fn presence_ttl(&self) -> Duration {
        Duration::from_secs(self.settings.presence_ttl_secs.max(3))
    }

    /// Start the hub's background work: renewing presence and closing revoked tokens'
    /// streams. Both end when the node stops.
    pub fn start(api: &Arc<Api>) {
        tokio::spawn(renew_presence(api.clone()));
        tokio::spawn(watch_revocations(api.clone()));
    }

    /// Register a new connection for `user` (signed in with the token of `token_hash`) from
    /// the client address `ip`; 429 when that user or address holds its most streams.
    pub async fn open(
        api: &Arc<Api>,
        user: Option<Id>,
        ip: Option<String>,
        token_hash: Option<String>,
    ) -> ApiResult<(ConnGuard, mpsc::Receiver<Outgoing>)> {
        let hub = &api.hub;
        if hub.shutdown.is_cancelled() {
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "the server is stopping",
            ));
        }
        let max = hub.settings.max_connections.max(1);
        if hub.open.fetch_add(1, Ordering::AcqRel) >= max {
            hub.open.fetch_sub(1, Ordering::AcqRel);
            metrics::refused();
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "too many streaming connections on this server, try again later",
            ));
        }
        let (tx, rx) = mpsc::channel(hub.settings.buffer.max(1));
        let conn = Arc::new(Conn {
            id: hub.next_id.fetch_add(1, Ordering::Relaxed),
            user,
            ip,
            token_hash,
            tx,
            closed: hub.shutdown.child_token(),
            subs: Mutex::default(),
        });
        let over = if let Ok(mut reg) = hub.registry.lock() {
            let by_user = user.map_or(0, |u| reg.per_user.get(&u).copied().unwrap_or(0));
            let by_ip = conn
                .ip
                .as_ref()
                .map_or(0, |ip| reg.per_ip.get(ip).copied().unwrap_or(0));
            if by_user >= hub.settings.max_per_user.max(1) {
                Some("too many open streams for this account")
            } else if by_ip >= hub.settings.max_per_ip.max(1) {
                Some("too many open streams from this address")
            } else {
                if let Some(u) = user {
                    *reg.per_user.entry(u).or_default() += 1;
                }
                if let Some(ip) = &conn.ip {
                    *reg.per_ip.entry(ip.clone()).or_default() += 1;
                }
                reg.conns.insert(conn.id, conn.clone());
                None
            }
        } else {
            None
        };
        if let Some(why) = over {
            hub.open.fetch_sub(1, Ordering::AcqRel);
            metrics::refused();
            return Err(ApiError::new(ErrorKind::TooManyRequests, why));
        }
        let guard = ConnGuard {
            api: api.clone(),
            conn: conn.clone(),
        };
        metrics::opened();
        // Online before the first subscription, so a post made right after the client sees
        // its stream open reaches it.
        if let Some(user) = user
            && let Err(e) = api.timelines.mark_online(&[user], hub.presence_ttl()).await
        {
            tracing::warn!(error = %e, "could not mark a streaming user online; live updates may lag until presence is renewed");
        }
        Ok((guard, rx))
    }

    /// Subscribe a connection to a stream. Back once this node receives the stream's
    /// subject, so nothing published after that is missed.
    pub async fn subscribe(api: &Arc<Api>, conn: &Arc<Conn>, sub: Sub) -> Result<(), SubError> {
        let channel = sub.channel(conn.user)?;
        if let (Sub::List(list), Some(user)) = (&sub, conn.user) {
            let owned = api.store.lists_of(user).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read a user's lists for a list stream");
                SubError {
                    status: 503,
                    message: "Streaming is unavailable, try again later",
                }
            })?;
            if !owned.iter().any(|l| l.id == *list) {
                return Err(NOT_YOUR_LIST);
            }
        }
        let hub = &api.hub;
        let held = conn.subs.lock().map_or(0, |s| s.len());
        if held >= hub.settings.max_subscriptions.max(1) {
            return Err(TOO_MANY_SUBS);
        }
        if hub.attach(&channel, conn, &sub) {
            return Ok(());
        }
        let live = hub.live_bus(api).await;
        let subscription = live.subscribe_live(&channel).await.map_err(|e| {
            tracing::warn!(error = %e, "cannot subscribe to a live subject");
            SubError {
                status: 503,
                message: "Streaming is unavailable, try again later",
            }
        })?;
        // The server has the subscription once a round trip after it has completed.
        if let Err(e) = live.flush().await {
            tracing::warn!(error = %e, "flushing a live subscription failed");
        }
        let mut reg = hub.registry.lock().map_err(|_| SubError {
            status: 503,
            message: "Streaming is unavailable, try again later",
        })?;
        if !reg.conns.contains_key(&conn.id) {
            return Ok(()); // Closed meanwhile; the subscription drops here.
        }
        match reg.channels.get_mut(&channel) {
            // Another connection subscribed meanwhile: share its dispatcher.
            Some(state) => add_sub(&mut state.subs, conn, sub),
            None => {
                let task = tokio::spawn(dispatch(api.clone(), channel.clone(), subscription));
                let mut state = ChannelState {
                    subs: Vec::new(),
                    task,
                };
                add_sub(&mut state.subs, conn, sub);
                reg.channels.insert(channel, state);
            }
        }
        Ok(())
    }

    /// Join an existing channel; false if this node does not receive it yet.
    fn attach(&self, channel: &Channel, conn: &Arc<Conn>, sub: &Sub) -> bool {
        let Ok(mut reg) = self.registry.lock() else {
            return false;
        };
        match reg.channels.get_mut(channel) {
            Some(state) => {
                add_sub(&mut state.subs, conn, sub.clone());
                true
            }
            None => false,
        }
    }

    pub fn unsubscribe(&self, conn: &Conn, sub: &Sub) {
        let Ok(channel) = sub.channel(conn.user) else {
            return;
        };
        if let Ok(mut reg) = self.registry.lock() {
            detach(&mut reg, &channel, |(c, s)| c.id == conn.id && s == sub);
            if let Ok(mut subs) = conn.subs.lock() {
                subs.retain(|s| s != sub);
            }
        }
    }

    fn remove(&self, id: u64) {
        let Ok(mut reg) = self.registry.lock() else {
            return;
        };
        let Some(conn) = reg.conns.remove(&id) else {
            return;
        };
        conn.closed.cancel();
        self.open.fetch_sub(1, Ordering::AcqRel);
        if let Some(u) = conn.user {
            release(&mut reg.per_user, u);
        }
        if let Some(ip) = conn.ip.clone() {
            release(&mut reg.per_ip, ip);
        }
        metrics::closed();
        let subs = conn.subs.lock().map(|s| s.clone()).unwrap_or_default();
        for sub in subs {
            if let Ok(channel) = sub.channel(conn.user) {
                detach(&mut reg, &channel, |(c, _)| c.id == id);
            }
        }
    }

    /// The subscribers of `channel` that want `event`.
    fn subscribers(&self, channel: &Channel, event: &LiveEvent) -> Vec<(Arc<Conn>, Sub)> {
        let Ok(reg) = self.registry.lock() else {
            return Vec::new();
        };
        reg.channels
            .get(channel)
            .map(|state| {
                state
                    .subs
                    .iter()
                    .filter(|(c, s)| s.wants(event) && !c.closed.is_cancelled())
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    fn users(&self) -> Vec<Id> {
        let Ok(reg) = self.registry.lock() else {
            return Vec::new();
        };
        let mut users: Vec<Id> = reg.conns.values().filter_map(|c| c.user).collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Close every stream of `user`; how many were open.
    fn close_user(&self, user: Id) -> usize {
        let Ok(reg) = self.registry.lock() else {
            return 0;
        };
        let mut closed = 0;
        for conn in reg.conns.values().filter(|c| c.user == Some(user)) {
            conn.closed.cancel();
            closed += 1;
        }
        closed
    }

    fn revoke(&self, token_hash: &str) -> usize {
        let Ok(reg) = self.registry.lock() else {
            return 0;
        };
        let mut closed = 0;
        for conn in reg.conns.values() {
            if conn.token_hash.as_deref() == Some(token_hash) {
                conn.closed.cancel();
                closed += 1;
            }
        }
        closed
    }
}

fn add_sub(subs: &mut Vec<(Arc<Conn>, Sub)>, conn: &Arc<Conn>, sub: Sub) {
    if subs.iter().any(|(c, s)| c.id == conn.id && *s == sub) {
        return;
    }
    if let Ok(mut own) = conn.subs.lock() {
        own.push(sub.clone());
    }
    subs.push((conn.clone(), sub));
}

/// Drop the matching subscriptions of `channel`; the last one out stops its dispatcher,
/// which unsubscribes this node from the subject.
fn detach(reg: &mut Registry, channel: &Channel, matches: impl Fn(&(Arc<Conn>, Sub)) -> bool) {
    let empty = match reg.channels.get_mut(channel) {
        Some(state) => {
            state.subs.retain(|s| !matches(s));
            state.subs.is_empty()
        }
        None => false,
    };
    if empty && let Some(state) = reg.channels.remove(channel) {
        state.task.abort();
    }
}

/// Receive one live subject and queue each event on the connections that want it.
async fn dispatch(api: Arc<Api>, channel: Channel, mut subscription: LiveSubscription) {
    while let Some(event) = subscription.next().await {
        let subs = api.hub.subscribers(&channel, &event);
        if subs.is_empty() {
            continue;
        }
        if let Err(e) = deliver(&api, &channel, &event, &subs).await {
            tracing::warn!(error = %e, ?channel, "a live event could not be delivered");
        }
    }
}

async fn deliver(
    api: &Api,
    channel: &Channel,
    event: &LiveEvent,
    subs: &[(Arc<Conn>, Sub)],
) -> ApiResult<()> {
    let viewer = match channel {
        Channel::User(user) => Some(*user),
        _ => None,
    };
    // The post shown and, for a reblog, its original: each connection asks the policy.
    let (name, payload, shown): (&'static str, Arc<str>, Option<Shown>) = match event {
        LiveEvent::Update { id }
        | LiveEvent::StatusUpdate { id }
        | LiveEvent::ListUpdate { id, .. } => {
            let edited = matches!(event, LiveEvent::StatusUpdate { .. });
            if edited {
                // The edit's `Forget` may not have reached this node yet: render it afresh.
                api.forget_post(*id).await;
            }
            let Some(post) = api.posts_by_ids(&[*id]).await?.into_iter().next() else {
                return Ok(()); // Deleted meanwhile.
            };
            let original = original_of(api, &post).await?;
            // Filter hook (issue 11): a user stream applies its user's `home` filters.
            let verdicts = crate::filters::judge(
                api,
                viewer,
                starling_schema::startup::FilterContext::Home,
                std::slice::from_ref(&post),
            )
            .await?;
            if verdicts.hides(post.id) {
                return Ok(());
            }
            let Some(mut status) = hydrate::statuses(api, viewer, std::slice::from_ref(&post))
                .await?
                .pop()
            else {
                return Ok(());
            };
            verdicts.mark_one(&mut status);
            let name = if edited { "status.update" } else { "update" };
            (name, status.0.into(), Some((post, original)))
        }
        LiveEvent::Delete { id } | LiveEvent::ListDelete { id, .. } => {
            ("delete", id.to_string().into(), None)
        }
        LiveEvent::Conversation { id } => {
            let Some(user) = viewer else { return Ok(()) };
            let Some(conversation) = api.store.conversation(user, *id).await? else {
                return Ok(()); // Removed or gone meanwhile.
            };
            // Only when the user may see its newest post (the visibility policy).
            let Some(post) = api
                .posts_by_ids(&[conversation.last_status_id])
                .await?
                .into_iter()
                .next()
            else {
                return Ok(());
            };
            if hydrate::filter_for(api, Some(user), vec![post])
                .await?
                .is_empty()
            {
                return Ok(());
            }
            let rendered = crate::routes::conversations::render(
                api,
                user,
                std::slice::from_ref(&conversation),
            )
            .await?;
            let Some(json) = rendered.into_iter().next() else {
                return Ok(());
            };
            ("conversation", json.0.into(), None)
        }
        LiveEvent::Notification { id } => {
            let Some(user) = viewer else { return Ok(()) };
            let Some(notification) = notification_json(api, user, *id).await? else {
                return Ok(());
            };
            ("notification", notification.0.into(), None)
        }
        LiveEvent::Revoked { .. }
        | LiveEvent::Forget { .. }
        | LiveEvent::Shunned { .. }
        | LiveEvent::AccountChanged { .. } => {
            return Ok(());
        }
    };
    for (conn, sub) in subs {
        if let Some((post, original)) = &shown
            && !stream_shows(api, channel, conn.user, post, original.as_deref()).await?
        {
            continue;
        }
        conn.offer(Outgoing {
            stream: Arc::new(sub.names()),
            event: name,
            payload: payload.clone(),
        });
    }
    Ok(())
}

/// A post a stream would show, and for a reblog its original (if it is still there).
type Shown = (Arc<Post>, Option<Arc<Post>>);

/// A reblog's original, if it is still there.
async fn original_of(api: &Api, post: &Post) -> ApiResult<Option<Arc<Post>>> {
    let Some(original) = post.reblog_of else {
        return Ok(None);
    };
    Ok(api.posts_by_ids(&[original]).await?.into_iter().next())
}

/// Whether a stream of `user` (`None`: anonymous) shows `post`, asked of the visibility
/// policy: never a post, nor a reblog of one, whose author blocks or is blocked by the user
/// or is muted by them (the user's whole block and mute sets, kept warm by the node and by
/// block and mute events from every node). A user stream carries what fan-out delivered (the
/// user follows the author, or is mentioned); public and hashtag streams carry public posts.
async fn stream_shows(
    api: &Api,
    channel: &Channel,
    user: Option<Id>,
    post: &Post,
    original: Option<&Post>,
) -> ApiResult<bool> {
    let shunned = match user {
        Some(u) => api.shunned(u).await?,
        None => Arc::default(),
    };
    let follows = matches!(channel, Channel::User(_));
    let sees = |p: &Post| {
        let rel = Relation::in_feed(
            follows && p.author_id == post.author_id,
            shunned.contains(&p.author_id),
        );
        policy::may_see(p, user, &rel, Surface::Feed)
    };
    Ok(sees(post) && original.is_none_or(sees))
}

async fn notification_json(
    api: &Api,
    user: Id,
    id: Id,
) -> ApiResult<Option<crate::entities::Json>> {
    let Some(n) = api.store.notification(user, id).await? else {
        return Ok(None);
    };
    Ok(crate::routes::notifications::render(api, user, &[n])
        .await?
        .pop())
}

/// Keep this node's streaming users marked online, renewing every third of the lapse time.
async fn renew_presence(api: Arc<Api>) {
    let ttl = api.hub.presence_ttl();
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = api.hub.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let users = api.hub.users();
        for chunk in users.chunks(10_000) {
            if let Err(e) = api.timelines.mark_online(chunk, ttl).await {
                tracing::warn!(error = %e, users = chunk.len(), "renewing presence failed");
            }
        }
    }
}

/// An operator changed `account` on some node: forget it here, and close its streams if it
/// is now suspended or gone (its tokens are refused from now on).
async fn account_changed(api: &Api, account: Id) {
    api.forget_account(account).await;
    let usable = match api.account(account).await {
        Ok(found) => found.is_some_and(|a| !a.suspended),
        Err(e) => {
            tracing::warn!(error = %e, %account, "cannot read a changed account; keeping its streams");
            true
        }
    };
    if !usable {
        let n = api.hub.close_user(account);
        if n > 0 {
            tracing::info!(streams = n, %account, "closed the streams of a suspended or deleted account");
        }
    }
}

/// Close this node's streams of tokens revoked on any node, and forget them at once; forget
/// posts deleted on any node, accounts edited on any node, and the block and mute sets that
/// a block or mute on any node changed.
async fn watch_revocations(api: Arc<Api>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match api.bus.subscribe_live(&Channel::Revoked).await {
            Ok(mut subscription) => loop {
                tokio::select! {
                    () = api.hub.shutdown.cancelled() => return,
                    event = subscription.next() => match event {
                        Some(LiveEvent::Forget { post_id }) => api.forget_post(post_id).await,
                        Some(LiveEvent::Revoked { token_hash }) => {
                            api.forget_token(&token_hash).await;
                            let n = api.hub.revoke(&token_hash);
                            if n > 0 {
                                tracing::info!(streams = n, "closed the streams of a revoked token");
                            }
                        }
                        Some(LiveEvent::Shunned { accounts }) => {
                            api.forget_shunned(&accounts).await;
                        }
                        Some(LiveEvent::AccountChanged { account }) => {
                            account_changed(&api, account).await;
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot watch token revocations; retrying"),
        }
        tokio::select! {
            () = api.hub.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_parse_by_their_mastodon_names() {
        assert_eq!(Sub::parse("user", None, None), Ok(Sub::User));
        assert_eq!(
            Sub::parse("user:notification", None, None),
            Ok(Sub::UserNotification)
        );
        assert_eq!(Sub::parse("public:local", None, None), Ok(Sub::PublicLocal));
        assert_eq!(
            Sub::parse("hashtag", Some("#Rust"), None),
            Ok(Sub::Hashtag("rust".into()))
        );
        assert_eq!(Sub::parse("hashtag", None, None), Err(NO_TAG));
        assert_eq!(
            Sub::parse("hashtag", Some(&"a".repeat(5_000)), None),
            Err(BAD_TAG)
        );
        assert_eq!(Sub::parse("hashtag", Some("a.b"), None), Err(BAD_TAG));
        assert_eq!(Sub::parse("list", None, None), Err(NO_LIST));
        assert_eq!(Sub::parse("list", None, Some(" ")), Err(NO_LIST));
        assert_eq!(Sub::parse("list", None, Some("x;1")), Err(BAD_LIST));
        assert_eq!(
            Sub::parse("list", None, Some(&"9".repeat(5_000))),
            Err(BAD_LIST)
        );
        assert_eq!(Sub::parse("list", None, Some("42")), Ok(Sub::List(Id(42))));
        assert_eq!(Sub::List(Id(42)).names(), vec!["list", "42"]);
        assert_eq!(Sub::parse("direct", None, None), Ok(Sub::Direct));
        assert_eq!(Sub::parse("directs", None, None), Err(UNKNOWN_STREAM));
        assert_eq!(
            Sub::Hashtag("rust".into()).names(),
            vec!["hashtag".to_string(), "rust".to_string()]
        );
    }

    #[test]
    fn user_streams_need_a_signed_in_user() {
        assert_eq!(Sub::User.channel(None), Err(NO_TOKEN));
        assert_eq!(Sub::User.channel(Some(Id(9))), Ok(Channel::User(Id(9))));
        assert_eq!(Sub::Public.channel(None), Ok(Channel::Public));
    }

    #[test]
    fn notification_streams_carry_only_notifications() {
        let update = LiveEvent::Update { id: Id(1) };
        let note = LiveEvent::Notification { id: Id(1) };
        assert!(!Sub::UserNotification.wants(&update));
        assert!(Sub::UserNotification.wants(&note));
        assert!(Sub::User.wants(&update) && Sub::User.wants(&note));
        assert!(!Sub::Public.wants(&note));
    }

    #[test]
    fn direct_and_list_streams_carry_only_their_own_events() {
        let conversation = LiveEvent::Conversation { id: Id(3) };
        let into_7 = LiveEvent::ListUpdate {
            list: Id(7),
            id: Id(1),
        };
        let out_of_7 = LiveEvent::ListDelete {
            list: Id(7),
            id: Id(1),
        };
        let update = LiveEvent::Update { id: Id(1) };
        assert!(Sub::Direct.wants(&conversation));
        assert!(!Sub::Direct.wants(&update) && !Sub::Direct.wants(&into_7));
        assert!(!Sub::User.wants(&conversation) && !Sub::User.wants(&into_7));
        assert!(Sub::List(Id(7)).wants(&into_7) && Sub::List(Id(7)).wants(&out_of_7));
        assert!(!Sub::List(Id(8)).wants(&into_7));
        assert!(!Sub::List(Id(7)).wants(&update) && !Sub::List(Id(7)).wants(&conversation));
        assert_eq!(Sub::Direct.channel(None), Err(NO_TOKEN));
        assert_eq!(
            Sub::List(Id(7)).channel(Some(Id(9))),
            Ok(Channel::User(Id(9)))
        );
    }

    #[test]
    fn websocket_payloads_are_json_strings() {
        let out = Outgoing {
            stream: Arc::new(vec!["user".into()]),
            event: "update",
            payload: r#"{"id":"1"}"#.into(),
        };
        let v: serde_json::Value = serde_json::from_str(&out.ws_text()).unwrap();
        assert_eq!(v["payload"], r#"{"id":"1"}"#);
        assert_eq!(v["stream"][0], "user");
        assert_eq!(out.sse_text(), "event: update\ndata: {\"id\":\"1\"}\n\n");
    }
}
