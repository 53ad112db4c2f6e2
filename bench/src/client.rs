//! A Mastodon-API client for the few calls the harness makes, over one shared reqwest
//! connection pool. Failures are classified into the kinds a report counts: `http NNN`,
//! `timeout`, `connect`, `request`, `body`.

use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::workload::Op;

#[derive(Clone, Debug)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

/// What went wrong with one request, by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

fn kind(e: &reqwest::Error) -> Failure {
    Failure(if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else if e.is_body() || e.is_decode() {
        "body".into()
    } else if let Some(status) = e.status() {
        format!("http {}", status.as_u16())
    } else {
        "request".into()
    })
}

/// The body of a successful answer; any other status is a failure of kind `http NNN`.
async fn checked(res: Result<reqwest::Response, reqwest::Error>) -> Result<Vec<u8>, Failure> {
    let res = res.map_err(|e| kind(&e))?;
    let status = res.status();
    let body = res.bytes().await.map_err(|e| kind(&e))?.to_vec();
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure(format!("http {}", status.as_u16())))
    }
}

impl Api {
    /// A client whose pool keeps up to `connections` idle connections to the server.
    pub fn new(base: &str, connections: usize, timeout: Duration) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            // Below actix-web's 5 s keep-alive, so a pooled connection is never reused just
            // as the server closes it (which fails the request with no status).
            .pool_idle_timeout(Duration::from_secs(2))
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, token: Option<&str>, path: &str) -> Result<Vec<u8>, Failure> {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        checked(req.send().await).await
    }

    async fn post_form(
        &self,
        token: Option<&str>,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<Value, Failure> {
        let mut req = self.http.post(self.url(path)).form(form);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let body = checked(req.send().await).await?;
        serde_json::from_slice(&body).map_err(|_| Failure("body".into()))
    }

    /// `GET /health`, the trivial endpoint of the HTTP ceiling.
    pub async fn health(&self) -> Result<(), Failure> {
        self.get(None, "/health").await.map(drop)
    }

    /// The value of a counter on the server's `/metrics` (summed over its labels), or `None`
    /// when it cannot be read.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let body = self.get(None, "/metrics").await.ok()?;
        metric_value(&String::from_utf8_lossy(&body), name)
    }

    pub async fn ready(&self) -> bool {
        self.get(None, "/ready").await.is_ok()
    }

    /// Register an app and return its client-credentials token (for sign-ups).
    pub async fn app_token(&self) -> anyhow::Result<String> {
        let app = self
            .post_form(
                None,
                "/api/v1/apps",
                &[
                    ("client_name", "starling-bench"),
                    ("redirect_uris", "urn:ietf:wg:oauth:2.0:oob"),
                    ("scopes", "read write follow"),
                ],
            )
            .await
            .context("POST /api/v1/apps")?;
        let field = |v: &Value, k: &str| {
            v[k].as_str()
                .map(str::to_owned)
                .with_context(|| format!("no {k} in {v}"))
        };
        let (id, secret) = (field(&app, "client_id")?, field(&app, "client_secret")?);
        let token = self
            .post_form(
                None,
                "/oauth/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                    ("scope", "read write follow"),
                ],
            )
            .await
            .context("POST /oauth/token")?;
        field(&token, "access_token")
    }

    /// Sign up `username` and return `(account id, access token)`.
    pub async fn register(
        &self,
        app_token: &str,
        username: &str,
        password: &str,
    ) -> anyhow::Result<(String, String)> {
        let email = format!("{username}@bench.invalid");
        let res = self
            .post_form(
                Some(app_token),
                "/api/v1/accounts",
                &[
                    ("username", username),
                    ("email", &email),
                    ("password", password),
                    ("agreement", "true"),
                    ("locale", "en"),
                ],
            )
            .await
            .with_context(|| format!("registering {username}"))?;
        let token = res["access_token"]
            .as_str()
            .with_context(|| format!("no access_token registering {username}"))?
            .to_owned();
        // A read, so safe to retry when the connection (not the server) failed.
        let mut body = self
            .get(Some(&token), "/api/v1/accounts/verify_credentials")
            .await;
        for _ in 0..2 {
            match &body {
                Err(Failure(kind)) if !kind.starts_with("http ") => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    body = self
                        .get(Some(&token), "/api/v1/accounts/verify_credentials")
                        .await;
                }
                _ => break,
            }
        }
        let me: Value = serde_json::from_slice(&body.context("verify_credentials")?)
            .context("verify_credentials body")?;
        let id = me["id"].as_str().context("no id in verify_credentials")?;
        Ok((id.to_owned(), token))
    }

    pub async fn follow(&self, token: &str, account_id: &str) -> Result<(), Failure> {
        self.post_form(
            Some(token),
            &format!("/api/v1/accounts/{account_id}/follow"),
            &[],
        )
        .await
        .map(drop)
    }

    /// Create a list and return its id.
    pub async fn create_list(&self, token: &str, title: &str) -> Result<String, Failure> {
        let list = self
            .post_form(Some(token), "/api/v1/lists", &[("title", title)])
            .await?;
        list["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Failure("body".into()))
    }

    /// Add accounts (which `token`'s user follows) to one of its lists.
    pub async fn add_list_members(
        &self,
        token: &str,
        list: &str,
        accounts: &[&str],
    ) -> Result<(), Failure> {
        let form: Vec<(&str, &str)> = accounts.iter().map(|a| ("account_ids[]", *a)).collect();
        self.post_form(
            Some(token),
            &format!("/api/v1/lists/{list}/accounts"),
            &form,
        )
        .await
        .map(drop)
    }

    /// Post and return the new status id.
    pub async fn post(&self, token: &str, text: &str) -> Result<u64, Failure> {
        let status = self
            .post_form(Some(token), "/api/v1/statuses", &[("status", text)])
            .await?;
        status["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| Failure("body".into()))
    }

    pub async fn home(&self, token: &str, limit: u32) -> Result<(), Failure> {
        self.get(
            Some(token),
            &format!("/api/v1/timelines/home?limit={limit}"),
        )
        .await
        .map(drop)
    }

    /// Whether status `id` is in the home timeline of the token's user: the page just
    /// after `id - 1`.
    pub async fn home_has(&self, token: &str, id: u64) -> Result<bool, Failure> {
        let body = self
            .get(
                Some(token),
                &format!("/api/v1/timelines/home?min_id={}&limit=40", id - 1),
            )
            .await?;
        let page: Vec<Value> = serde_json::from_slice(&body).map_err(|_| Failure("body".into()))?;
        let id = id.to_string();
        Ok(page.iter().any(|s| s["id"].as_str() == Some(id.as_str())))
    }

    /// Whether status `id` is among the statuses `/api/v2/search` finds for `word`.
    pub async fn search_has(&self, token: &str, word: &str, id: u64) -> Result<bool, Failure> {
        let body = self
            .get(
                Some(token),
                &format!("/api/v2/search?type=statuses&limit=40&q={word}"),
            )
            .await?;
        let found: Value = serde_json::from_slice(&body).map_err(|_| Failure("body".into()))?;
        let id = id.to_string();
        Ok(found["statuses"]
            .as_array()
            .is_some_and(|s| s.iter().any(|st| st["id"].as_str() == Some(id.as_str()))))
    }

    pub async fn account_statuses(&self, token: &str, account_id: &str) -> Result<(), Failure> {
        self.get(
            Some(token),
            &format!("/api/v1/accounts/{account_id}/statuses?limit=20"),
        )
        .await
        .map(drop)
    }

    /// The WebSocket URL of a user's stream.
    pub fn streaming_url(&self, token: &str) -> String {
        let ws = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        format!("{ws}/api/v1/streaming?stream=user&access_token={token}")
    }
}

/// Run one operation of a mix as the users of `users`; a post returns its id.
pub async fn run_op(
    api: &Api,
    users: &[crate::state::User],
    op: &Op,
) -> Result<Option<u64>, Failure> {
    match op {
        Op::HomeRead { user, limit } => api.home(&users[*user].token, *limit).await.map(|_| None),
        Op::AccountRead { user, target } => api
            .account_statuses(&users[*user].token, &users[*target].id)
            .await
            .map(|_| None),
        Op::Post { user, text } => api.post(&users[*user].token, text).await.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_url_follows_the_scheme() {
        let api = Api::new("http://127.0.0.1:8080/", 1, Duration::from_secs(1)).unwrap();
        assert_eq!(
            api.streaming_url("t0k"),
            "ws://127.0.0.1:8080/api/v1/streaming?stream=user&access_token=t0k"
        );
        let api = Api::new("https://example.org", 1, Duration::from_secs(1)).unwrap();
        assert!(
            api.streaming_url("t")
                .starts_with("wss://example.org/api/v1/streaming?")
        );
    }
}

/// The sum of every sample of metric `name` in Prometheus text, or `None` if it has none.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(v) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod metric_tests {
    use super::metric_value;

    #[test]
    fn counters_are_read_from_prometheus_text() {
        let text = "# HELP starling_fanout_inserts_total x\n\
                    # TYPE starling_fanout_inserts_total counter\n\
                    starling_fanout_inserts_total 1200\n\
                    starling_fanout_inserts_total_other 5\n\
                    starling_events_total{type=\"a\"} 2\n\
                    starling_events_total{type=\"b\"} 3\n";
        assert_eq!(
            metric_value(text, "starling_fanout_inserts_total"),
            Some(1200.0)
        );
        assert_eq!(metric_value(text, "starling_events_total"), Some(5.0));
        assert_eq!(metric_value(text, "missing"), None);
    }
}
