//! Discovery: `/.well-known/oauth-authorization-server` (RFC 8414), `/.well-known/nodeinfo`
//! and `/nodeinfo/2.0`. Each advertises only what this server does.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use serde_json::json;
use starling_store::{MAX_BATCH, Store};

use super::oauth::WORKING_SCOPES;
use crate::Api;
use crate::error::ApiResult;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/oauth-authorization-server",
        web::get().to(authorization_server),
    )
    .route("/.well-known/nodeinfo", web::get().to(nodeinfo_links))
    .route("/nodeinfo/2.0", web::get().to(nodeinfo))
    .route("/nodeinfo/2.0.json", web::get().to(nodeinfo));
}

async fn authorization_server(api: web::Data<Api>) -> HttpResponse {
    let base = api.base_url();
    HttpResponse::Ok().json(json!({
        "issuer": format!("{base}/"),
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "userinfo_endpoint": format!("{base}/oauth/userinfo"),
        "app_registration_endpoint": format!("{base}/api/v1/apps"),
        "scopes_supported": WORKING_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "password", "client_credentials"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

async fn nodeinfo_links(api: web::Data<Api>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "links": [{
            "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
            "href": format!("{}/nodeinfo/2.0", api.base_url()),
        }]
    }))
}

/// Users and posts, counted by a scan of the accounts at most every [`COUNTS_TTL`]; the
/// first request after that recounts while the others wait for it.
pub struct UsageCounts {
    cached: tokio::sync::Mutex<Option<(Instant, u64, u64)>>,
}

const COUNTS_TTL: Duration = Duration::from_secs(600);

impl Default for UsageCounts {
    fn default() -> Self {
        UsageCounts {
            cached: tokio::sync::Mutex::new(None),
        }
    }
}

impl UsageCounts {
    pub(crate) async fn get(&self, api: &Api) -> ApiResult<(u64, u64)> {
        let mut cached = self.cached.lock().await;
        if let Some((at, users, posts)) = *cached
            && at.elapsed() < COUNTS_TTL
        {
            return Ok((users, posts));
        }
        let (mut users, mut posts) = (0u64, 0u64);
        let mut after = None;
        loop {
            let page = api.store.scan_accounts(after, MAX_BATCH).await?;
            let ids: Vec<_> = page
                .items
                .iter()
                .filter(|a| !a.suspended)
                .map(|a| a.id)
                .collect();
            users += ids.len() as u64;
            for c in api.store.account_counts(&ids).await? {
                posts += c.statuses;
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        *cached = Some((Instant::now(), users, posts));
        Ok((users, posts))
    }
}

async fn nodeinfo(api: web::Data<Api>) -> ApiResult<HttpResponse> {
    let (users, posts) = api.usage.get(&api).await?;
    Ok(HttpResponse::Ok()
        .content_type(
            "application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/2.0#\"",
        )
        .json(json!({
            "version": "2.0",
            "software": { "name": "starling", "version": env!("CARGO_PKG_VERSION") },
            "protocols": [],
            "services": { "inbound": [], "outbound": [] },
            "usage": { "users": { "total": users }, "localPosts": posts },
            "openRegistrations": api.settings.api.registrations,
            "metadata": {
                "nodeName": api.settings.api.title,
                "nodeDescription": api.settings.api.description,
                // Clients that know only Mastodon-like servers (megalodon's `detector()`)
                // read this to pick the Mastodon API.
                "upstream": { "name": "mastodon", "version": "4.3.0" },
            },
        })))
}
