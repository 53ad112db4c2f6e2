//! Sending one encrypted message to a push service (RFC 8030) with VAPID, and what its
//! answer means: delivered, gone (the subscription is to be deleted), refused, or failed
//! after retries. Requests are bounded per host, time out, follow no redirect, read at most
//! `max_response_bytes` of an answer and, in production, reach only public addresses (a
//! name that resolves to a private one is refused at connect time, so DNS cannot smuggle
//! one in), so a user's endpoint cannot probe the internal network.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use starling_bus::Backoff;
use starling_schema::push::{check_endpoint, is_public};
use starling_schema::settings::PushSettings;
use tokio::sync::Semaphore;

use crate::crypto::{Encoding, Receiver, VapidKey, encrypt};

/// How long a VAPID JWT is valid (RFC 8292 allows at most 24 hours).
const JWT_VALIDITY_SECS: u64 = 12 * 3600;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// A message for one subscription.
pub struct Message<'a> {
    pub endpoint: &'a str,
    pub receiver: &'a Receiver,
    pub encoding: Encoding,
    pub payload: &'a [u8],
    /// Replaces an undelivered message with the same topic at the push service.
    pub topic: Option<&'a str>,
    pub urgency: &'static str,
}

/// What became of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 404 or 410: the subscription expired or was unsubscribed.
    Gone,
    /// Another 4xx: the push service will not take it (a bad request, payload too large).
    Refused(u16),
    /// Retries ran out on 429, 5xx or network errors, or the endpoint may not be reached.
    Failed(String),
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Gone => "gone",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// What to do after one answer.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    Done(Outcome),
    /// Try again, after the server's `Retry-After` if it gave one.
    Retry(Option<Duration>),
}

/// The meaning of a push service's status code.
fn classify(status: u16, retry_after: Option<Duration>) -> Next {
    match status {
        200..=299 => Next::Done(Outcome::Delivered),
        404 | 410 => Next::Done(Outcome::Gone),
        429 | 500..=599 => Next::Retry(retry_after.map(|d| d.min(MAX_RETRY_AFTER))),
        other => Next::Done(Outcome::Refused(other)),
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// Sends messages; cheap to clone, shared by every task of a worker.
#[derive(Clone)]
pub struct Deliverer {
    client: Client,
    vapid: VapidKey,
    subject: String,
    settings: Arc<PushSettings>,
    hosts: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Deliverer {
    /// `subject` is the VAPID `sub` claim (a `mailto:` or `https:` URL). Fails only when
    /// the system's root certificates cannot be read.
    pub fn new(
        vapid: VapidKey,
        subject: String,
        settings: &PushSettings,
    ) -> Result<Deliverer, std::io::Error> {
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        let mut http = HttpConnector::new_with_resolver(Resolver {
            public_only: !settings.allow_private_addresses,
        });
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // hyper's client follows no redirects: a 3xx is just an answer (refused).
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(settings.per_host.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Ok(Deliverer {
            client,
            vapid,
            subject,
            settings: Arc::new(settings.clone()),
            hosts: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn vapid(&self) -> &VapidKey {
        &self.vapid
    }

    /// Encrypt and send `message`, retrying with backoff on 429, 5xx and network errors up
    /// to `max_attempts`. At most `per_host` requests per host are in flight; a retry
    /// waits without holding its host's slot.
    pub async fn send(&self, message: &Message<'_>) -> Outcome {
        if let Err(e) = check_endpoint(message.endpoint, self.settings.allow_private_addresses) {
            return Outcome::Failed(e.to_string());
        }
        let Ok(url) = url::Url::parse(message.endpoint) else {
            return Outcome::Failed("the endpoint is not a URL".into());
        };
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let audience = url.origin().ascii_serialization();
        let slots = self.host_slots(&host);
        let mut backoff = Backoff::new(
            Duration::from_millis(self.settings.retry_first_ms.max(1)),
            MAX_RETRY_AFTER,
        );
        let attempts = self.settings.max_attempts.max(1);
        let mut last_error = String::new();
        for attempt in 1..=attempts {
            let next = {
                let Ok(_slot) = slots.acquire().await else {
                    return Outcome::Failed("shutting down".into());
                };
                self.attempt(&url, &audience, message).await
            };
            let delay = match next {
                Ok(Next::Done(outcome)) => return outcome,
                Ok(Next::Retry(after)) => {
                    last_error = "the push service asked to retry later".into();
                    after.unwrap_or_else(|| backoff.next_delay())
                }
                Err(e) => {
                    last_error = e;
                    backoff.next_delay()
                }
            };
            if attempt < attempts {
                tokio::time::sleep(delay).await;
            }
        }
        Outcome::Failed(last_error)
    }

    fn host_slots(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(
            hosts
                .entry(host.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_host.max(1)))),
        )
    }

    /// One request, within `timeout_ms` from connecting to the end of the answer. `Err` is
    /// a network failure or a timeout (worth a retry), with its message.
    async fn attempt(
        &self,
        url: &url::Url,
        audience: &str,
        message: &Message<'_>,
    ) -> Result<Next, String> {
        let encrypted = encrypt(message.receiver, message.payload, message.encoding)
            .map_err(|e| e.to_string())?;
        let expires = starling_schema::ids::now_ms() / 1000 + JWT_VALIDITY_SECS;
        let jwt = self.vapid.jwt(audience, &self.subject, expires);
        let key = self.vapid.public_key();
        let mut request = hyper::Request::post(url.as_str())
            .header("TTL", self.settings.ttl_secs.to_string())
            .header("Urgency", message.urgency)
            .header("Content-Encoding", encrypted.encoding.as_str())
            .header("Content-Type", "application/octet-stream")
            .header(
                "User-Agent",
                concat!("Starling/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(topic) = message.topic {
            request = request.header("Topic", topic);
        }
        request = match encrypted.encoding {
            Encoding::Aes128Gcm => {
                request.header("Authorization", format!("vapid t={jwt}, k={key}"))
            }
            // The draft scheme Mastodon's legacy pushes use, and what Mastodon.py parses.
            Encoding::AesGcm => request
                .header("Authorization", format!("WebPush {jwt}"))
                .header("Encryption", format!("salt={}", encrypted.salt))
                .header(
                    "Crypto-Key",
                    format!("dh={};p256ecdsa={key}", encrypted.sender_key),
                ),
        };
        let request = request
            .body(Full::new(Bytes::from(encrypted.body)))
            .map_err(|e| format!("building the request: {e}"))?;
        let timeout = Duration::from_millis(self.settings.timeout_ms.max(1));
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| describe(&e))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            // Read (and drop) at most the cap of the answer, so the connection can be
            // reused and an endless answer costs nothing.
            let mut body = response.into_body();
            let mut read = 0usize;
            while read < self.settings.max_response_bytes {
                match body.frame().await {
                    Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
                    Some(Err(_)) | None => break,
                }
            }
            Ok(classify(status, retry_after))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| "timed out".to_owned())?
    }
}

/// A network error's message without the URL (which names the user's endpoint).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    format!("request failed: {cause}")
}

/// Resolves names with the system resolver; in production keeps only public addresses,
/// so a name cannot lead a push request into the internal network.
#[derive(Clone)]
struct Resolver {
    public_only: bool,
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let host = name.as_str().to_owned();
        let public_only = self.public_only;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !public_only || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::other(
                    "the push endpoint resolves to no public address",
                ));
            }
            Ok(found.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified_as_rfc_8030_means_them() {
        let later = Some(Duration::from_secs(3));
        let cases = [
            (201, None, Next::Done(Outcome::Delivered)),
            (200, None, Next::Done(Outcome::Delivered)),
            (404, None, Next::Done(Outcome::Gone)),
            (410, None, Next::Done(Outcome::Gone)),
            (400, None, Next::Done(Outcome::Refused(400))),
            (413, None, Next::Done(Outcome::Refused(413))),
            (301, None, Next::Done(Outcome::Refused(301))),
            (429, later, Next::Retry(later)),
            (503, None, Next::Retry(None)),
            (
                500,
                Some(Duration::from_secs(3600)),
                Next::Retry(Some(MAX_RETRY_AFTER)),
            ),
        ];
        for (status, after, want) in cases {
            assert_eq!(classify(status, after), want, "{status}");
        }
    }
}
