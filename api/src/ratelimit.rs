//! Rate limits, as Mastodon sets them (`config/initializers/rack_attack.rb`): `/api/*`
//! requests per token, per account and (without a user) per client address; sign-ups and
//! sign-in attempts per address; sign-in attempts per account name; posts and media uploads
//! per account. Every response that counted against a bucket carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (ISO 8601) of the tightest one; a request
//! over a limit is answered `429 {"error": "Too many requests"}` before its handler runs.
//!
//! Buckets are GCRA (a burst of `limit`, then one more every `period / limit`): in this
//! process with `governor` by default, or on the Redis shards (`rate_limits.backend =
//! "redis"`, one Lua script on the shard the bucket's key hashes to) so several api nodes
//! share them. If Redis cannot be reached, the node falls back to counting on its own rather
//! than refusing or waving everything through.
//!
//! Password hashing is bounded here too: a sign-in or sign-up takes a place in a queue of
//! `limits.password_hash_queue` before it reaches the hashing threads, and is answered 503 at
//! once when the queue is full, so a flood cannot make every sign-in wait for minutes.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use starling_schema::ErrorKind;
use starling_schema::settings::{Bucket, RateLimitBackend, RateLimitSettings, parse_cidr};
use starling_timeline::Timelines;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Api;
use crate::error::{ApiError, ApiResult};

/// Every bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ApiToken,
    ApiAccount,
    ApiIp,
    SignUpIp,
    SignInIp,
    SignInAccount,
    Posts,
    Media,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::ApiToken,
        Kind::ApiAccount,
        Kind::ApiIp,
        Kind::SignUpIp,
        Kind::SignInIp,
        Kind::SignInAccount,
        Kind::Posts,
        Kind::Media,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::ApiToken => "api_token",
            Kind::ApiAccount => "api_account",
            Kind::ApiIp => "api_ip",
            Kind::SignUpIp => "sign_up_ip",
            Kind::SignInIp => "sign_in_ip",
            Kind::SignInAccount => "sign_in_account",
            Kind::Posts => "posts",
            Kind::Media => "media",
        }
    }

    fn bucket(self, s: &RateLimitSettings) -> Bucket {
        match self {
            Kind::ApiToken => s.api_per_token,
            Kind::ApiAccount => s.api_per_account,
            Kind::ApiIp => s.api_per_ip,
            Kind::SignUpIp => s.sign_up_per_ip,
            Kind::SignInIp => s.sign_in_per_ip,
            Kind::SignInAccount => s.sign_in_per_account,
            Kind::Posts => s.posts_per_account,
            Kind::Media => s.media_per_account,
        }
    }

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// What one hit on a bucket found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hit {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// From now until the next hit is allowed (refused) or the bucket is full (allowed).
    pub reset: Duration,
}

impl Hit {
    /// Whether `self` says less about what is left than `other` (it is the one to show).
    fn tighter_than(&self, other: &Hit) -> bool {
        (!self.allowed && other.allowed)
            || (self.allowed == other.allowed
                && (self.remaining, self.limit) < (other.remaining, other.limit))
    }
}

type Keyed<C> = RateLimiter<String, HashMapStateStore<String>, C, StateInformationMiddleware>;

/// In-process buckets (GCRA through `governor`), generic over the clock for tests.
pub struct LocalBuckets<C: Clock> {
    limiters: Vec<Option<(Keyed<C>, u32)>>,
    hits: AtomicU64,
}

/// Forget idle keys every this many hits, so the maps do not grow with every address seen.
const SWEEP_EVERY: u64 = 10_000;

impl<C: Clock + Clone> LocalBuckets<C> {
    pub fn new(settings: &RateLimitSettings, clock: C) -> LocalBuckets<C> {
        let limiters = Kind::ALL
            .iter()
            .map(|kind| {
                let bucket = kind.bucket(settings);
                let limit = NonZeroU32::new(bucket.limit)?;
                let period = Duration::from_secs(bucket.period_secs);
                let quota = Quota::with_period(period / limit.get())?.allow_burst(limit);
                let limiter = RateLimiter::hashmap_with_clock(quota, clock.clone())
                    .with_middleware::<StateInformationMiddleware>();
                Some((limiter, limit.get()))
            })
            .collect();
        LocalBuckets {
            limiters,
            hits: AtomicU64::new(0),
        }
    }

    /// Count a hit on `kind`'s bucket for `key`; `None` when that bucket is off.
    pub fn hit(&self, kind: Kind, key: &str) -> Option<Hit> {
        let (limiter, limit) = self.limiters.get(kind.index())?.as_ref()?;
        if self.hits.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            for (l, _) in self.limiters.iter().flatten() {
                l.retain_recent();
                l.shrink_to_fit();
            }
        }
        let limit = *limit;
        let key = key.to_owned();
        Some(match limiter.check_key(&key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let per = state.quota().replenish_interval();
                Hit {
                    allowed: true,
                    limit,
                    remaining,
                    reset: per * limit.saturating_sub(remaining),
                }
            }
            Err(not_until) => Hit {
                allowed: false,
                limit,
                remaining: 0,
                reset: not_until.wait_time_from(limiter.clock().now()),
            },
        })
    }
}

/// This node's rate limits and password-hashing queue.
pub struct RateLimits {
    settings: RateLimitSettings,
    proxies: Vec<(IpAddr, u8)>,
    local: LocalBuckets<DefaultClock>,
    hashing: Arc<Semaphore>,
}

/// A place in the password-hashing queue; hold it while the password is hashed or checked.
pub struct HashPermit(#[allow(dead_code)] OwnedSemaphorePermit);

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, hash_queue: usize) -> RateLimits {
        RateLimits {
            proxies: settings
                .trusted_proxies
                .iter()
                .filter_map(|p| parse_cidr(p))
                .collect(),
            local: LocalBuckets::new(settings, DefaultClock::default()),
            settings: settings.clone(),
            hashing: Arc::new(Semaphore::new(hash_queue.max(1))),
        }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// Count a hit on `kind`'s bucket for `key`; `None` when limits or that bucket are off.
    pub async fn hit(&self, timelines: &Timelines, kind: Kind, key: &str) -> Option<Hit> {
        let bucket = kind.bucket(&self.settings);
        if !self.settings.enabled || !bucket.is_on() {
            return None;
        }
        if self.settings.backend == RateLimitBackend::Redis {
            let key = format!("{}:{key}", kind.name());
            match timelines
                .rate_hit(&key, bucket.limit, bucket.period_secs.saturating_mul(1000))
                .await
            {
                Ok(h) => {
                    return Some(Hit {
                        allowed: h.allowed,
                        limit: bucket.limit,
                        remaining: h.remaining,
                        reset: Duration::from_millis(h.reset_ms),
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "shared rate limits unavailable; counting on this node");
                }
            }
        }
        self.local.hit(kind, key)
    }

    /// A place in the password-hashing queue, or 503 at once when it is full.
    pub fn hash_permit(&self) -> ApiResult<HashPermit> {
        self.hashing
            .clone()
            .try_acquire_owned()
            .map(HashPermit)
            .map_err(|_| {
                ApiError::new(
                    ErrorKind::Unavailable,
                    "Too many sign-ins are being checked right now, try again in a moment",
                )
            })
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the
    /// right-most address in `X-Forwarded-For` that is not a trusted proxy itself.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(
            forwarded
                .iter()
                .rev()
                .find(|a| !self.trusted(**a))
                .or(forwarded.first())
                .copied()
                .unwrap_or(peer),
        )
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.proxies
            .iter()
            .any(|(net, prefix)| in_net(ip, canonical(*net), *prefix))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The key an address is counted under: IPv6 clients per /64, as Mastodon does.
pub fn ip_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let masked = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(masked))
        }
        v4 => v4.to_string(),
    }
}

/// The tightest bucket a request counted against, shared between the middleware and the
/// handlers that count buckets of their own (sign-in).
#[derive(Clone, Default)]
pub struct Counted(Arc<Mutex<Option<Hit>>>);

impl Counted {
    fn record(&self, hit: Hit) {
        if let Ok(mut tightest) = self.0.lock()
            && tightest.is_none_or(|t| hit.tighter_than(&t))
        {
            *tightest = Some(hit);
        }
    }

    fn tightest(&self) -> Option<Hit> {
        self.0.lock().ok().and_then(|t| *t)
    }
}

fn too_many() -> ApiError {
    ApiError::new(ErrorKind::TooManyRequests, "Too many requests")
}

fn reset_text(reset: Duration) -> String {
    let at = time::OffsetDateTime::from(SystemTime::now() + reset);
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    ))
    .unwrap_or_default()
}

fn set_headers(headers: &mut actix_web::http::header::HeaderMap, hit: &Hit) {
    let pairs = [
        ("x-ratelimit-limit", hit.limit.to_string()),
        ("x-ratelimit-remaining", hit.remaining.to_string()),
        ("x-ratelimit-reset", reset_text(hit.reset)),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// `POST /api/v1/statuses`, `/api/v1/statuses/:id/reblog`: what counts as posting.
fn is_post(path: &str) -> bool {
    path == "/api/v1/statuses"
        || path
            .strip_prefix("/api/v1/statuses/")
            .and_then(|rest| rest.strip_suffix("/reblog"))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// `POST /api/v1/media`, `/api/v2/media`.
fn is_media(path: &str) -> bool {
    path == "/api/v1/media" || path == "/api/v2/media"
}

/// The middleware: count the request's buckets, refuse it with 429 when one is over, and
/// put the tightest bucket's headers on the response.
pub async fn enforce(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(api) = req.app_data::<web::Data<Api>>().cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    };
    if !api.limits.enabled() {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let counted = Counted::default();
    req.extensions_mut().insert(counted.clone());
    let path = req.path().to_owned();
    let is_write = req.method() == actix_web::http::Method::POST;
    if path.starts_with("/api/") {
        let ip = api.limits.client_ip(req.request()).map(ip_key);
        let token = match crate::extract::bearer(req.request()) {
            Some(t) => api.token(&t).await.ok().flatten(),
            None => None,
        };
        let mut buckets: Vec<(Kind, String)> = Vec::with_capacity(3);
        match token.as_ref().and_then(|t| t.account_id.map(|a| (t, a))) {
            Some((token, account)) => {
                buckets.push((Kind::ApiToken, token.token_hash.clone()));
                buckets.push((Kind::ApiAccount, account.to_string()));
                if is_write && is_post(&path) {
                    buckets.push((Kind::Posts, account.to_string()));
                }
                if is_write && is_media(&path) {
                    buckets.push((Kind::Media, account.to_string()));
                }
            }
            None => {
                if let Some(ip) = &ip {
                    buckets.push((Kind::ApiIp, ip.clone()));
                }
            }
        }
        if is_write
            && path == "/api/v1/accounts"
            && let Some(ip) = &ip
        {
            buckets.push((Kind::SignUpIp, ip.clone()));
        }
        let mut refused = None;
        for (kind, key) in buckets {
            if let Some(hit) = api.limits.hit(&api.timelines, kind, &key).await {
                counted.record(hit);
                if !hit.allowed {
                    refused = Some(hit);
                }
            }
        }
        if let Some(hit) = refused {
            let mut res = too_many().error_response();
            set_headers(res.headers_mut(), &hit);
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    let mut res = next.call(req).await?;
    if let Some(hit) = counted.tightest() {
        set_headers(res.headers_mut(), &hit);
    }
    Ok(res.map_into_left_body())
}

/// For the password grant and the login form: count one sign-in attempt for `username` from
/// this request's client against the per-address and per-account sign-in limits (429 when
/// either is over), then take a place in the password-hashing queue (503 at once when it is
/// full). Hold the permit while the password is checked.
pub async fn sign_in_attempt(
    api: &Api,
    req: &HttpRequest,
    username: &str,
) -> ApiResult<HashPermit> {
    let counted = req.extensions().get::<Counted>().cloned();
    let account_key: String = username
        .trim()
        .trim_start_matches('@')
        .chars()
        .take(64)
        .flat_map(char::to_lowercase)
        .collect();
    let mut buckets = vec![(Kind::SignInAccount, account_key)];
    if let Some(ip) = api.limits.client_ip(req) {
        buckets.push((Kind::SignInIp, ip_key(ip)));
    }
    let mut refused = false;
    for (kind, key) in buckets {
        if let Some(hit) = api.limits.hit(&api.timelines, kind, &key).await {
            if let Some(c) = &counted {
                c.record(hit);
            }
            refused |= !hit.allowed;
        }
    }
    if refused {
        return Err(too_many());
    }
    api.limits.hash_permit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn settings(limit: u32, period_secs: u64) -> RateLimitSettings {
        RateLimitSettings {
            api_per_ip: Bucket::new(limit, period_secs),
            sign_up_per_ip: Bucket::new(0, 60),
            ..RateLimitSettings::default()
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_it_refills() {
        let clock = FakeRelativeClock::default();
        let buckets = LocalBuckets::new(&settings(3, 300), clock.clone());
        let hits: Vec<Hit> = (0..3)
            .filter_map(|_| buckets.hit(Kind::ApiIp, "1.2.3.4"))
            .collect();
        assert_eq!(
            hits.iter().map(|h| h.remaining).collect::<Vec<_>>(),
            vec![2, 1, 0]
        );
        assert!(hits.iter().all(|h| h.allowed && h.limit == 3));
        let refused = buckets.hit(Kind::ApiIp, "1.2.3.4").unwrap();
        assert!(!refused.allowed);
        assert_eq!(
            refused.reset,
            Duration::from_secs(100),
            "one slot per 100 s"
        );
        assert!(
            buckets.hit(Kind::ApiIp, "5.6.7.8").unwrap().allowed,
            "another address has its own bucket"
        );
        clock.advance(Duration::from_secs(100));
        let after = buckets.hit(Kind::ApiIp, "1.2.3.4").unwrap();
        assert!(after.allowed, "the reset time is honoured");
        assert!(!buckets.hit(Kind::ApiIp, "1.2.3.4").unwrap().allowed);
        clock.advance(Duration::from_secs(300));
        let full = buckets.hit(Kind::ApiIp, "1.2.3.4").unwrap();
        assert_eq!(full.remaining, 2, "a full period refills the whole burst");
        assert_eq!(
            buckets.hit(Kind::SignUpIp, "1.2.3.4"),
            None,
            "limit 0 is off"
        );
    }

    #[test]
    fn the_refused_bucket_is_the_one_shown() {
        let ok = Hit {
            allowed: true,
            limit: 300,
            remaining: 0,
            reset: Duration::ZERO,
        };
        let no = Hit {
            allowed: false,
            limit: 1500,
            remaining: 0,
            reset: Duration::ZERO,
        };
        assert!(no.tighter_than(&ok));
        let more = Hit { remaining: 5, ..ok };
        assert!(ok.tighter_than(&more));
    }

    #[test]
    fn networks_and_keys() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_net(v4("10.1.2.3"), v4("10.0.0.0"), 8));
        assert!(!in_net(v4("11.1.2.3"), v4("10.0.0.0"), 8));
        assert!(in_net(v4("127.0.0.1"), v4("127.0.0.1"), 32));
        assert!(in_net(v4("::1"), v4("::1"), 128));
        assert_eq!(ip_key(v4("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(ip_key(v4("::ffff:1.2.3.4")), "1.2.3.4");
        assert!(is_post("/api/v1/statuses"));
        assert!(is_post("/api/v1/statuses/123/reblog"));
        assert!(!is_post("/api/v1/statuses/123/favourite"));
    }
}
