//! Settings: one struct, loaded from defaults < TOML file (`--config`) < `STARLING_*`
//! environment variables < command-line flags, then passed explicitly to whoever needs a part.
//!
//! Environment variables name a key path with `__` between levels:
//! `STARLING_STORE__BACKEND=scylla`, `STARLING_NODE_ID=3`. Every key is documented in
//! `infra/starling.example.toml`. Unknown keys are errors, so a typo does not go unnoticed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// This process's node id: the low bits of every id it mints. Unique per process that
    /// writes to the same store (0..=255).
    pub node_id: u32,
    pub log: LogSettings,
    pub limits: Limits,
    pub store: StoreSettings,
    pub api: ApiSettings,
    pub redis: RedisSettings,
    pub nats: NatsSettings,
    pub fanout: FanoutSettings,
    pub search: SearchSettings,
    pub media: MediaSettings,
    pub streaming: StreamingSettings,
    pub rate_limits: RateLimitSettings,
    pub metrics: MetricsSettings,
    pub push: PushSettings,
    pub discovery: DiscoverySettings,
}

/// Prometheus metrics of a process that runs no api (api nodes serve `/metrics` on the API).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Address for `/metrics` (and `/health`) on its own port, e.g. `127.0.0.1:9100`; empty:
    /// none. Fan-out workers and indexers need it to show their lag and pending events.
    pub listen: String,
}

/// The HTTP server (Mastodon client API).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Address to listen on.
    pub listen: String,
    /// The instance's public base URL, used in `uri`/`url` fields (no trailing slash).
    pub public_url: String,
    /// The instance's domain as shown in `/api/v1/instance`.
    pub domain: String,
    pub title: String,
    pub description: String,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Posts kept in the in-process hydration cache.
    pub post_cache: u64,
    /// Accounts kept in the in-process hydration cache.
    pub account_cache: u64,
    /// Whether `POST /api/v1/accounts` accepts new sign-ups.
    pub registrations: bool,
    /// Key that signs the sign-in pages' session cookies and CSRF tokens. Every api node
    /// behind one public URL needs the same value; unset, each process picks a random one
    /// (sessions then end when it restarts and work only on the node that signed them).
    pub session_secret: Option<String>,
    /// How long a browser session on the sign-in pages lasts, in hours.
    pub session_hours: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            domain: "127.0.0.1:8080".into(),
            title: "Starling".into(),
            description: "A Starling social feed.".into(),
            workers: 0,
            max_body_bytes: 1 << 20,
            post_cache: 100_000,
            account_cache: 50_000,
            registrations: true,
            session_secret: None,
            session_hours: 24 * 7,
        }
    }
}

/// Redis shards holding home timelines.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    /// Shard URLs. A consistent hash of the user id picks each user's shard.
    pub shards: Vec<String>,
    /// Connections per shard.
    pub pool_size: usize,
    /// Entries kept per home timeline.
    pub timeline_cap: usize,
    /// Points per shard on the hash ring.
    pub virtual_nodes: u32,
    /// How long a timeline rebuild may hold its per-user lock, in milliseconds.
    pub rebuild_lock_ms: u64,
    /// Per-command timeout in milliseconds.
    pub timeout_ms: u64,
    /// Days without a read after which a home timeline (or list) leaves Redis; the next read
    /// rebuilds it from the store. 0 keeps timelines forever.
    pub timeline_inactive_days: u32,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            shards: vec!["redis://127.0.0.1:6379".into()],
            pool_size: 16,
            timeline_cap: 800,
            virtual_nodes: 160,
            rebuild_lock_ms: 5_000,
            timeout_ms: 2_000,
            timeline_inactive_days: 30,
        }
    }
}

/// NATS JetStream, the event bus between api, fanout and indexer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSettings {
    /// Server URL; several servers of one cluster comma-separated.
    pub url: String,
    /// JetStream stream holding every event.
    pub stream: String,
    /// Subjects are `{subject_prefix}.events.{type}`.
    pub subject_prefix: String,
    /// Stream replicas (3 on a NATS cluster).
    pub replicas: usize,
    /// How long a publish waits for JetStream's ack before the event goes to the outbox.
    pub publish_timeout_ms: u64,
    /// How often the outbox retries events JetStream did not take.
    pub outbox_retry_ms: u64,
    /// How long a consumer may hold an event before it is redelivered.
    pub ack_wait_ms: u64,
    /// Seconds of history the stream keeps.
    pub max_age_secs: u64,
}

impl Default for NatsSettings {
    fn default() -> Self {
        NatsSettings {
            url: "nats://127.0.0.1:4222".into(),
            stream: "STARLING".into(),
            subject_prefix: "starling".into(),
            replicas: 1,
            publish_timeout_ms: 2_000,
            outbox_retry_ms: 1_000,
            ack_wait_ms: 30_000,
            max_age_secs: 7 * 24 * 3600,
        }
    }
}

/// Fan-out workers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutSettings {
    /// Events processed at once by one process.
    pub concurrency: usize,
    /// Followers read per store page (and inserted per batch).
    pub follower_page: usize,
    /// Durable consumer name shared by every fan-out worker.
    pub consumer: String,
}

impl Default for FanoutSettings {
    fn default() -> Self {
        FanoutSettings {
            concurrency: 8,
            follower_page: 5_000,
            consumer: "fanout".into(),
        }
    }
}

/// Trends and who to follow: the `discovery` role's consumer and suggestion job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscoverySettings {
    /// Durable consumer shared by every discovery worker (trend counting).
    pub consumer: String,
    /// Events one discovery worker counts at once.
    pub concurrency: usize,
    /// Trend scores (hashtags, links, statuses) halve every this many seconds.
    pub half_life_secs: u64,
    /// Least decayed score (distinct accounts' recent use, each counting 1 when new) a
    /// hashtag, link or status needs to be shown as trending.
    pub min_score: f64,
    /// Entries kept per trend list; the lowest scored fall off.
    pub max_entries: usize,
    /// Seconds between the starts of two rounds of suggestions for every user.
    pub interval_secs: u64,
    /// Users per batch a suggestion worker claims at once.
    pub batch: usize,
    /// A claimed batch not finished after this many seconds (its worker died) is claimed
    /// again by another worker.
    pub claim_timeout_secs: u64,
    /// Suggestions kept per user (clients ask for up to 80).
    pub per_user: usize,
    /// Most accounts a user follows whose follows are read for friends of friends.
    pub followees_read: usize,
    /// Most follows read of each of them.
    pub their_follows_read: usize,
    /// An account counts as active if it posted within this many days.
    pub active_days: u64,
    /// Accounts in the global list (most followed and most interactions) new users get.
    pub global_size: usize,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        DiscoverySettings {
            consumer: "discovery".into(),
            concurrency: 16,
            half_life_secs: 21_600,
            min_score: 2.0,
            max_entries: 1_000,
            interval_secs: 3_600,
            batch: 500,
            claim_timeout_secs: 600,
            per_user: 40,
            followees_read: 200,
            their_follows_read: 1_000,
            active_days: 30,
            global_size: 100,
        }
    }
}

/// Live streams (WebSocket and SSE) on api nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamingSettings {
    /// Seconds between heartbeats (WebSocket ping, SSE `:thump`) on an idle stream.
    pub heartbeat_secs: u64,
    /// Events queued for one connection; a client that falls this far behind is
    /// disconnected, so a slow reader never grows the server's memory.
    pub buffer: usize,
    /// How long a connected user counts as online after the last renewal, in seconds. Api
    /// nodes renew their users every third of this; fan-out tells only online users.
    pub presence_ttl_secs: u64,
    /// Streams one api node holds at most; more are refused with 503.
    pub max_connections: usize,
    /// Streams one user may hold open on one api node; more are refused with 429.
    pub max_per_user: usize,
    /// Streams one client address may hold open on one api node; more are refused with 429.
    pub max_per_ip: usize,
    /// Subscriptions one WebSocket may hold; more are refused with an error message.
    pub max_subscriptions: usize,
}

impl Default for StreamingSettings {
    fn default() -> Self {
        StreamingSettings {
            heartbeat_secs: 15,
            buffer: 256,
            presence_ttl_secs: 60,
            max_connections: 20_000,
            max_per_user: 50,
            max_per_ip: 200,
            max_subscriptions: 100,
        }
    }
}

/// Web Push: the VAPID key and the push worker role. Its `Debug` hides the key.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushSettings {
    /// The VAPID private key (a P-256 scalar, 32 bytes base64url). Unset: one is generated
    /// on first use and kept in the store, shared by every node. Never logged.
    pub vapid_private_key: Option<String>,
    /// The VAPID `sub` claim, a `mailto:` or `https:` URL push services may contact;
    /// empty means `api.public_url`.
    pub vapid_subject: String,
    /// Durable consumer name shared by every push worker.
    pub consumer: String,
    /// Notifications handled at once by one push worker.
    pub concurrency: usize,
    /// Requests in flight to one push service host at once, per worker.
    pub per_host: usize,
    /// Timeout of one push request (connect and answer), in milliseconds.
    pub timeout_ms: u64,
    /// Attempts per message on 429 and 5xx answers and network errors, the first included.
    pub max_attempts: u32,
    /// Delay before the first retry, doubled after each; a `Retry-After` answer wins (up to
    /// a minute).
    pub retry_first_ms: u64,
    /// How long a push service keeps an undelivered message (`TTL` header), in seconds.
    pub ttl_secs: u64,
    /// Bytes of a push service's answer read at most.
    pub max_response_bytes: usize,
    /// Allow endpoints on private, loopback and link-local addresses, and plain http to
    /// loopback: for development and tests only. Off, such endpoints are refused when
    /// subscribing and again when their names resolve.
    pub allow_private_addresses: bool,
}

impl std::fmt::Debug for PushSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSettings")
            .field(
                "vapid_private_key",
                &self.vapid_private_key.as_ref().map(|_| "<hidden>"),
            )
            .field("vapid_subject", &self.vapid_subject)
            .field("consumer", &self.consumer)
            .field("concurrency", &self.concurrency)
            .field("per_host", &self.per_host)
            .field("timeout_ms", &self.timeout_ms)
            .field("max_attempts", &self.max_attempts)
            .field("allow_private_addresses", &self.allow_private_addresses)
            .finish_non_exhaustive()
    }
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            vapid_private_key: None,
            vapid_subject: String::new(),
            consumer: "push".into(),
            concurrency: 256,
            per_host: 16,
            timeout_ms: 10_000,
            max_attempts: 5,
            retry_first_ms: 1_000,
            ttl_secs: 172_800,
            max_response_bytes: 65_536,
            allow_private_addresses: false,
        }
    }
}

/// The full-text index and its indexer role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// Directory of this node's Tantivy index.
    pub path: PathBuf,
    /// Shortest time between two commits of the index, in milliseconds: how stale a search
    /// may be under load.
    pub commit_interval_ms: u64,
    /// Durable consumer of this search node; empty means `search-{node_id}`. Every search
    /// node keeps its own index, so each needs its own name.
    pub consumer: String,
    /// Memory the index writer may buffer before it flushes a segment, in MiB.
    pub writer_memory_mib: usize,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            path: PathBuf::from("data/search"),
            commit_interval_ms: 500,
            consumer: String::new(),
            writer_memory_mib: 64,
        }
    }
}

impl SearchSettings {
    /// The durable consumer name this node uses.
    pub fn consumer_name(&self, node_id: u32) -> String {
        if self.consumer.is_empty() {
            format!("search-{node_id}")
        } else {
            self.consumer.clone()
        }
    }
}

/// Media attachments: limits, storage and the media worker role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaSettings {
    /// Largest image (JPEG, PNG, WebP, GIF) upload, in bytes (Mastodon: 16 MiB).
    pub image_max_bytes: u64,
    /// Largest video or audio upload, in bytes (Mastodon: 99 MiB).
    pub video_max_bytes: u64,
    /// Where uploads are kept: `fs` (files under `path`, served by Starling) or `s3`
    /// (S3-compatible object storage, `media.s3`; files served from `public_url`).
    pub backend: MediaBackend,
    /// Directory of the file-system backend; with `s3`, uploads are staged under it while
    /// they stream in.
    pub path: PathBuf,
    /// Base URL files are served from; empty: `{api.public_url}/system/media`. Required
    /// with `s3`: the bucket's (or its CDN's) URL, including `media.s3.prefix` if any.
    pub public_url: String,
    /// The S3-compatible bucket of the `s3` backend.
    pub s3: S3Settings,
    /// Durable consumer the media workers share (every media worker of a cluster uses it).
    pub consumer: String,
    /// Uploads one media worker processes at a time.
    pub concurrency: usize,
    /// How long an upload may wait unattached before the media worker removes it, in hours.
    pub unattached_hours: u64,
    /// `POST /api/v2/media` waits this long for processing before answering 202, in ms.
    pub sync_wait_ms: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            image_max_bytes: 16 << 20,
            video_max_bytes: 99 << 20,
            backend: MediaBackend::Fs,
            path: PathBuf::from("data/media"),
            public_url: String::new(),
            s3: S3Settings::default(),
            consumer: "media".into(),
            concurrency: 2,
            unattached_hours: 24,
            sync_wait_ms: 2_000,
        }
    }
}

impl MediaSettings {
    /// The largest upload of any kind: a body longer than this is refused while it streams.
    pub fn max_upload_bytes(&self) -> u64 {
        self.image_max_bytes.max(self.video_max_bytes)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaBackend {
    #[default]
    Fs,
    S3,
}

/// An S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, R2...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    pub bucket: String,
    /// The server's URL, e.g. `http://127.0.0.1:9000`; empty: AWS S3 in `region`.
    pub endpoint: String,
    pub region: String,
    /// Objects are kept under this prefix (`{prefix}/{token}/{name}`); empty: at the root.
    pub prefix: String,
    /// Credentials; unset, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are read from the
    /// environment. Set them with `STARLING_MEDIA__S3__SECRET_ACCESS_KEY` rather than in a file.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Bucket in the host name (`https://{bucket}.{endpoint}`) rather than the path.
    pub virtual_hosted_style: bool,
    /// Per-request timeout, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            bucket: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key_id: None,
            secret_access_key: None,
            virtual_hosted_style: false,
            timeout_ms: 30_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter, e.g. `info` or `starling=debug,info`.
    pub filter: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            filter: "info,fjall=warn,lsm_tree=warn".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

/// Limits on what users may submit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Characters in a post's text plus its content warning.
    pub max_post_chars: usize,
    /// Password checks and hashes (sign-in, sign-up) waiting for the hashing threads on one
    /// api node; one more is answered 503 at once instead of queueing.
    pub password_hash_queue: usize,
    /// Usernames nobody may sign up with (compared case-insensitively).
    pub reserved_usernames: Vec<String>,
    /// Options a poll may have (Mastodon: 4), and characters per option (50).
    pub poll_max_options: usize,
    pub poll_max_option_chars: usize,
    /// How long a poll may last, in seconds (Mastodon: 5 minutes to a month).
    pub poll_min_expiration_secs: u64,
    pub poll_max_expiration_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_post_chars: 500,
            password_hash_queue: 32,
            reserved_usernames: [
                "admin",
                "administrator",
                "root",
                "support",
                "help",
                "webmaster",
                "mod",
                "moderator",
                "abuse",
                "postmaster",
                "security",
                "staff",
            ]
            .map(String::from)
            .to_vec(),
            poll_max_options: 4,
            poll_max_option_chars: 50,
            poll_min_expiration_secs: 300,
            poll_max_expiration_secs: 2_629_746,
        }
    }
}

/// One rate-limit bucket: at most `limit` hits per `period_secs`, refilled steadily (GCRA:
/// after a burst of `limit`, one more every `period_secs / limit`). `limit = 0` turns it off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub limit: u32,
    pub period_secs: u64,
}

impl Bucket {
    pub const fn new(limit: u32, period_secs: u64) -> Bucket {
        Bucket { limit, period_secs }
    }

    /// Whether this bucket limits anything.
    pub fn is_on(&self) -> bool {
        self.limit > 0 && self.period_secs > 0
    }
}

/// Where rate-limit counters live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitBackend {
    /// In this process: each api node counts on its own (one node, or sticky balancing).
    #[default]
    Local,
    /// On the Redis shards (the shard a bucket's key hashes to), shared by every api node.
    Redis,
}

/// Request rate limits, Mastodon's defaults (`config/initializers/rack_attack.rb` and its
/// per-account status limit). Every response carries `X-RateLimit-Limit`, `-Remaining` and
/// `-Reset` of the tightest bucket the request counted against; a request over a limit is
/// answered 429.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Off: no bucket is counted and no header is sent.
    pub enabled: bool,
    pub backend: RateLimitBackend,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is believed: the client is
    /// the right-most address there that is not itself a trusted proxy.
    pub trusted_proxies: Vec<String>,
    /// `/api/*` requests per access token.
    pub api_per_token: Bucket,
    /// `/api/*` requests per signed-in account (all its tokens).
    pub api_per_account: Bucket,
    /// `/api/*` requests without a user per client address (IPv6: per /64).
    pub api_per_ip: Bucket,
    /// Sign-ups (`POST /api/v1/accounts`) per client address.
    pub sign_up_per_ip: Bucket,
    /// Sign-in attempts (password grant, login form) per client address.
    pub sign_in_per_ip: Bucket,
    /// Sign-in attempts per account name tried.
    pub sign_in_per_account: Bucket,
    /// Posts and reblogs per account.
    pub posts_per_account: Bucket,
    /// Media uploads per account.
    pub media_per_account: Bucket,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            backend: RateLimitBackend::Local,
            trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
            api_per_token: Bucket::new(300, 300),
            api_per_account: Bucket::new(1_500, 300),
            api_per_ip: Bucket::new(300, 300),
            sign_up_per_ip: Bucket::new(5, 1_800),
            sign_in_per_ip: Bucket::new(25, 300),
            sign_in_per_account: Bucket::new(25, 3_600),
            posts_per_account: Bucket::new(300, 10_800),
            media_per_account: Bucket::new(30, 1_800),
        }
    }
}

/// A URL with any user-info replaced by `***` (`redis://user:pass@host/0` →
/// `redis://***@host/0`), for logs and `starling config`: credentials are never shown.
pub fn without_credentials(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => format!("***@{}", &rest[at + 1..]),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    }
}

/// Parse a trusted-proxy entry: an address, or an address and a prefix length.
pub fn parse_cidr(entry: &str) -> Option<(std::net::IpAddr, u8)> {
    let (addr, prefix) = match entry.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (entry, None),
    };
    let addr: std::net::IpAddr = addr.trim().parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
        None => max,
    };
    Some((addr, prefix))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreBackend {
    /// An LSM store inside this process, under `store.embedded.path`.
    #[default]
    Embedded,
    /// A ScyllaDB (or Cassandra) cluster.
    Scylla,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub embedded: EmbeddedSettings,
    pub scylla: ScyllaSettings,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddedSettings {
    /// Directory that holds the store. Created if missing.
    pub path: PathBuf,
    /// `fdatasync` every write before acknowledging it. Off, an acknowledged write survives a
    /// crash of the process (it is in the OS's buffers) but not a power cut.
    pub fsync: bool,
    /// Block cache size in MiB.
    pub cache_mib: u64,
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        EmbeddedSettings {
            path: PathBuf::from("data/store"),
            fsync: false,
            cache_mib: 256,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScyllaSettings {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub replication: Replication,
    /// Apply the CQL schema at start (it is idempotent); otherwise run `starling migrate`.
    pub migrate_on_start: bool,
    /// Rows per page when reading large partitions (followers of a big account).
    pub page_size: i32,
    /// Per-request timeout in milliseconds.
    pub request_timeout_ms: u64,
}

impl Default for ScyllaSettings {
    fn default() -> Self {
        ScyllaSettings {
            nodes: vec!["127.0.0.1:9042".into()],
            keyspace: "starling".into(),
            username: None,
            password: None,
            replication: Replication::default(),
            migrate_on_start: false,
            page_size: 5000,
            request_timeout_ms: 5000,
        }
    }
}

/// Keyspace replication. `SimpleStrategy` with `factor`, or `NetworkTopologyStrategy` with a
/// factor per datacenter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Replication {
    pub class: ReplicationClass,
    pub factor: u32,
    pub datacenters: BTreeMap<String, u32>,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            class: ReplicationClass::SimpleStrategy,
            factor: 1,
            datacenters: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationClass {
    SimpleStrategy,
    NetworkTopologyStrategy,
}

impl Replication {
    /// The fewest replicas any datacenter keeps of a row.
    pub fn min_factor(&self) -> u32 {
        match self.class {
            ReplicationClass::SimpleStrategy => self.factor,
            ReplicationClass::NetworkTopologyStrategy => {
                self.datacenters.values().copied().min().unwrap_or(0)
            }
        }
    }

    /// Whether the crash of one CQL server can lose writes it acknowledged, given its
    /// `commitlog_sync` setting: when a row has a single replica and the server acknowledges
    /// before its commit log is on disk (`periodic`, the default of Cassandra and ScyllaDB;
    /// `batch` and `group` wait for the disk). With more replicas, the others keep what a
    /// quorum acknowledged. An unknown setting (an older server) is not taken for a risk.
    pub fn crash_can_lose_acknowledged(&self, commitlog_sync: &str) -> bool {
        let mode = commitlog_sync.trim().trim_matches('"');
        self.min_factor() <= 1 && mode.eq_ignore_ascii_case("periodic")
    }

    /// The CQL map literal for `CREATE KEYSPACE ... WITH replication = `.
    pub fn to_cql(&self) -> String {
        match self.class {
            ReplicationClass::SimpleStrategy => {
                format!(
                    "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                    self.factor
                )
            }
            ReplicationClass::NetworkTopologyStrategy => {
                let mut out = String::from("{'class': 'NetworkTopologyStrategy'");
                for (dc, n) in &self.datacenters {
                    out.push_str(&format!(", '{}': {n}", dc.replace('\'', "''")));
                }
                out.push('}');
                out
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("config file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Settings {
    /// Load with every layer: defaults, then `file` if given, then `STARLING_*` variables
    /// from the environment, then `flags` (dotted key, value).
    pub fn load(
        file: Option<&Path>,
        flags: &[(&str, figment::value::Value)],
    ) -> Result<Settings, SettingsError> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(SettingsError::MissingFile(path.to_owned()));
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(Env::prefixed("STARLING_").split("__"));
        for (key, value) in flags {
            fig = fig.merge((*key, value.clone()));
        }
        let settings: Settings = fig
            .extract()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        settings.check()?;
        Ok(settings)
    }

    /// These settings with every credential hidden (URL user-info, passwords): what may be
    /// printed or logged.
    pub fn redacted(&self) -> Settings {
        let mut shown = self.clone();
        shown.nats.url = without_credentials(&shown.nats.url);
        for shard in &mut shown.redis.shards {
            *shard = without_credentials(shard);
        }
        if shown.store.scylla.password.is_some() {
            shown.store.scylla.password = Some("<hidden>".into());
        }
        if shown.api.session_secret.is_some() {
            shown.api.session_secret = Some("<hidden>".into());
        }
        if shown.media.s3.secret_access_key.is_some() {
            shown.media.s3.secret_access_key = Some("<hidden>".into());
        }
        if shown.push.vapid_private_key.is_some() {
            shown.push.vapid_private_key = Some("<hidden>".into());
        }
        shown
    }

    fn check(&self) -> Result<(), SettingsError> {
        if self.node_id > u32::from(crate::ids::MAX_NODE_ID) {
            return Err(SettingsError::Invalid(format!(
                "node_id {} is out of range 0..={}",
                self.node_id,
                crate::ids::MAX_NODE_ID
            )));
        }
        if self.limits.max_post_chars == 0 {
            return Err(SettingsError::Invalid(
                "limits.max_post_chars must be positive".into(),
            ));
        }
        if self.limits.password_hash_queue == 0 {
            return Err(SettingsError::Invalid(
                "limits.password_hash_queue must be positive".into(),
            ));
        }
        if let Some(bad) = self
            .rate_limits
            .trusted_proxies
            .iter()
            .find(|p| parse_cidr(p).is_none())
        {
            return Err(SettingsError::Invalid(format!(
                "rate_limits.trusted_proxies: {bad:?} is not an address or CIDR range"
            )));
        }
        if self.store.backend == StoreBackend::Scylla && self.store.scylla.nodes.is_empty() {
            return Err(SettingsError::Invalid("store.scylla.nodes is empty".into()));
        }
        if self.redis.shards.is_empty() {
            return Err(SettingsError::Invalid("redis.shards is empty".into()));
        }
        if self.redis.timeline_cap == 0
            || self.redis.pool_size == 0
            || self.redis.virtual_nodes == 0
        {
            return Err(SettingsError::Invalid(
                "redis.timeline_cap, redis.pool_size and redis.virtual_nodes must be positive"
                    .into(),
            ));
        }
        if self.fanout.concurrency == 0 || self.fanout.follower_page == 0 {
            return Err(SettingsError::Invalid(
                "fanout.concurrency and fanout.follower_page must be positive".into(),
            ));
        }
        if self.search.commit_interval_ms == 0 || self.search.writer_memory_mib < 15 {
            return Err(SettingsError::Invalid(
                "search.commit_interval_ms must be positive and search.writer_memory_mib at least 15"
                    .into(),
            ));
        }
        if self.store.scylla.page_size <= 0 {
            return Err(SettingsError::Invalid(
                "store.scylla.page_size must be positive".into(),
            ));
        }
        if self.media.backend == MediaBackend::S3 {
            if self.media.s3.bucket.is_empty() {
                return Err(SettingsError::Invalid(
                    "media.backend is s3 but media.s3.bucket is empty".into(),
                ));
            }
            if self.media.public_url.is_empty() {
                return Err(SettingsError::Invalid(
                    "media.backend is s3: set media.public_url to the URL the bucket's files \
                     are served from (Starling serves only the file-system backend)"
                        .into(),
                ));
            }
            let p = &self.media.s3.prefix;
            if p.starts_with('/') || p.ends_with('/') || p.contains("//") {
                return Err(SettingsError::Invalid(format!(
                    "media.s3.prefix {p:?} must not start or end with / nor contain //"
                )));
            }
        }
        let ks = &self.store.scylla.keyspace;
        if ks.is_empty()
            || ks.len() > 48
            || !ks.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(SettingsError::Invalid(format!(
                "store.scylla.keyspace {ks:?} must be 1-48 letters, digits or underscores"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
// figment's Jail fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn a_crash_loses_acknowledged_writes_only_on_one_replica_synced_periodically() {
        let simple = |factor| Replication {
            factor,
            ..Replication::default()
        };
        let dcs = |factors: &[u32]| Replication {
            class: ReplicationClass::NetworkTopologyStrategy,
            factor: 0,
            datacenters: factors
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("dc{i}"), *f))
                .collect(),
        };
        let cases = [
            (simple(1), "periodic", true),
            // ScyllaDB's system.config quotes its values.
            (simple(1), "\"periodic\"", true),
            (simple(1), "Periodic", true),
            (simple(1), "batch", false),
            (simple(1), "group", false),
            (simple(1), "", false),
            (simple(3), "periodic", false),
            (simple(2), "periodic", false),
            (dcs(&[3, 1]), "periodic", true),
            (dcs(&[3, 3]), "periodic", false),
            (dcs(&[3, 1]), "batch", false),
        ];
        for (replication, mode, risky) in cases {
            assert_eq!(
                replication.crash_can_lose_acknowledged(mode),
                risky,
                "{replication:?} with commitlog_sync {mode:?}"
            );
        }
    }

    #[test]
    fn each_layer_overrides_the_one_before() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "starling.toml",
                r#"
                node_id = 1
                [limits]
                max_post_chars = 1000
                [store.embedded]
                path = "/from/file"
                cache_mib = 64
                "#,
            )?;
            jail.set_env("STARLING_LIMITS__MAX_POST_CHARS", "2000");
            jail.set_env("STARLING_STORE__EMBEDDED__PATH", "/from/env");
            let flags = [(
                "store.embedded.path",
                figment::value::Value::from("/from/flag"),
            )];
            let s = Settings::load(Some(Path::new("starling.toml")), &flags)
                .map_err(|e| e.to_string())?;
            assert_eq!(s.node_id, 1, "file beats default");
            assert_eq!(s.store.embedded.cache_mib, 64);
            assert_eq!(s.limits.max_post_chars, 2000, "env beats file");
            assert_eq!(
                s.store.embedded.path,
                PathBuf::from("/from/flag"),
                "flag beats env"
            );
            assert!(!s.store.embedded.fsync, "untouched keys keep their default");
            Ok(())
        });
    }

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            without_credentials("redis://user:secret@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(
            without_credentials("nats://tok@nats.local:4222"),
            "nats://***@nats.local:4222"
        );
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        let mut s = Settings::default();
        s.nats.url = "nats://u:hunter2@h:4222".into();
        s.redis.shards = vec!["redis://:hunter2@h:6379".into()];
        s.store.scylla.password = Some("hunter2".into());
        let shown = format!("{:?}", s.redacted());
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn typos_and_bad_values_are_reported() {
        Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[store]\nbakend = \"scylla\"\n")?;
            let err = Settings::load(Some(Path::new("typo.toml")), &[]).unwrap_err();
            assert!(err.to_string().contains("bakend"), "{err}");
            jail.create_file("range.toml", "node_id = 999\n")?;
            let err = Settings::load(Some(Path::new("range.toml")), &[]).unwrap_err();
            assert!(err.to_string().contains("node_id"), "{err}");
            let err = Settings::load(Some(Path::new("nope.toml")), &[]).unwrap_err();
            assert!(matches!(err, SettingsError::MissingFile(_)));
            Ok(())
        });
    }

    #[test]
    fn the_s3_media_backend_needs_a_bucket_and_a_public_url_and_hides_its_secret() {
        let mut s = Settings::default();
        s.media.backend = MediaBackend::S3;
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("media.s3.bucket"), "{err}");
        s.media.s3.bucket = "media".into();
        let err = s.check().unwrap_err().to_string();
        assert!(err.contains("media.public_url"), "{err}");
        s.media.public_url = "https://media.example.org".into();
        s.media.s3.prefix = "/x".into();
        assert!(s.check().unwrap_err().to_string().contains("prefix"));
        s.media.s3.prefix = "starling/media".into();
        s.check().unwrap();
        s.media.s3.secret_access_key = Some("very secret".into());
        let shown = format!("{:?}", s.redacted());
        assert!(!shown.contains("very secret"), "{shown}");
    }

    #[test]
    fn the_example_file_documents_every_key_and_loads() {
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/starling.example.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        let parsed: Settings = toml_from_figment(&example);
        assert_eq!(
            parsed,
            Settings::default(),
            "the example shows the defaults"
        );
        // Every key of the defaults appears in the example.
        let defaults = figment::value::Value::serialize(Settings::default()).unwrap();
        let mut keys = Vec::new();
        collect_keys(&defaults, "", &mut keys);
        for key in keys {
            let leaf = key.rsplit('.').next().unwrap_or(&key);
            assert!(
                text.contains(&format!("{leaf} =")),
                "{key} is not documented"
            );
        }
    }

    fn toml_from_figment(path: &Path) -> Settings {
        Figment::from(Toml::file_exact(path)).extract().unwrap()
    }

    fn collect_keys(v: &figment::value::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(dict) = v.as_dict() {
            for (k, child) in dict {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if child.as_dict().is_some_and(|d| !d.is_empty()) {
                    collect_keys(child, &path, out);
                } else {
                    out.push(path);
                }
            }
        }
    }
}
