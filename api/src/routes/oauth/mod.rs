//! Sign-in: apps, the OAuth 2 endpoints and the pages behind them.
//!
//! - `token`: `POST /api/v1/apps`, `POST /oauth/token` (authorization code with PKCE,
//!   password, client credentials; client authentication by body or HTTP Basic),
//!   `POST /oauth/revoke`, `GET /api/v1/apps/verify_credentials`, `GET /oauth/userinfo`.
//! - `authorize`: `GET`/`POST /oauth/authorize` (login page, consent page, the redirect
//!   back to the app), `POST /auth/sign_in`, `POST /auth/sign_out`.
//! - `session`: the signed browser-session cookie and CSRF tokens.
//! - `pages`: the HTML templates and their security headers.

use actix_web::http::StatusCode;
use actix_web::web;

use crate::error::{ApiError, ApiResult};

mod authorize;
mod pages;
pub mod session;
mod token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    token::configure(cfg);
    authorize::configure(cfg);
    cfg.route("/oauth/style.css", web::get().to(pages::style));
}

/// The username whose password to check for what was typed into a sign-in field: a
/// username, `@name` or `name@domain`, or (as Mastodon's "E-mail address or username") an
/// email address. Something shaped like an address (`local@domain.tld`) is taken as one
/// only when no account is named `local`, so `alice@this.instance` still means `alice`.
/// An unknown address comes back as its local part, which then fails like any unknown
/// name: the caller answers every failure the same way.
pub(crate) async fn sign_in_name(api: &crate::Api, entered: &str) -> ApiResult<String> {
    use starling_store::Store;
    let entered = entered.trim();
    let name = entered.trim_start_matches('@');
    let name = name.split('@').next().unwrap_or(name);
    let looks_like_email = entered
        .rsplit_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if looks_like_email
        && (name.is_empty() || api.store.accounts_by_usernames(&[name]).await?.is_empty())
        && let Some(account) = api.store.account_by_email(entered).await?
    {
        return Ok(account.username);
    }
    Ok(name.to_owned())
}

/// Scopes an app may ask for. Granular scopes (`read:statuses`) are accepted and grant
/// their whole family.
pub(crate) const KNOWN_SCOPES: &[&str] = &["read", "write", "follow", "push", "admin", "profile"];

/// Scopes that do something on Starling (advertised in discovery).
pub(crate) const WORKING_SCOPES: &[&str] = &["read", "write", "follow", "push", "profile"];

/// How long an issued authorization code stays usable.
pub(crate) const CODE_TTL_MS: u64 = starling_store::AUTH_CODE_TTL_MS;

/// Scopes from a space-separated string (`None` or blank: `default`); each must be a known
/// scope or `family:detail`.
pub(crate) fn parse_scopes(raw: Option<&str>, default: &[String]) -> ApiResult<Vec<String>> {
    let raw = raw.map(str::trim).filter(|s| !s.is_empty());
    let Some(raw) = raw else {
        return Ok(default.to_vec());
    };
    let mut scopes: Vec<String> = Vec::new();
    for s in raw.split_whitespace() {
        let family = s.split(':').next().unwrap_or(s);
        if !KNOWN_SCOPES.contains(&family) || s.len() > 64 {
            return Err(ApiError::oauth(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                format!("The requested scope is invalid, unknown, or malformed: {s}"),
            ));
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_owned());
        }
    }
    Ok(scopes)
}

/// Whether an app registered for `registered` may be granted every scope of `wanted`.
pub(crate) fn scopes_within(wanted: &[String], registered: &[String]) -> bool {
    wanted.iter().all(|s| {
        let family = s.split(':').next().unwrap_or(s);
        registered.iter().any(|a| a == s || a == family)
    })
}
