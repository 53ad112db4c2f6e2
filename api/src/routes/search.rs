//! `GET /api/v2/search`. Until the search index exists it resolves exact account addresses
//! (`name`, `@name`, `name@this.domain`), which is what clients use to find an account to
//! follow; statuses and hashtags come with the index.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use starling_store::Store;

use crate::Api;
use crate::error::ApiResult;
use crate::extract::{MaybeAuth, Query};
use crate::hydrate::Accounts;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v2/search", web::get().to(search));
}

#[derive(Deserialize)]
struct SearchQuery {
    q: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

async fn search(
    api: web::Data<Api>,
    _viewer: MaybeAuth,
    Query(q): Query<SearchQuery>,
) -> ApiResult<HttpResponse> {
    let query = q.q.unwrap_or_default();
    let wants_accounts = q
        .kind
        .as_deref()
        .is_none_or(|k| k.is_empty() || k == "accounts");
    let mut accounts = Vec::new();
    if wants_accounts {
        let acct = query.trim().trim_start_matches('@');
        let (name, domain) = acct.split_once('@').unwrap_or((acct, ""));
        let ours = domain.is_empty() || domain.eq_ignore_ascii_case(&api.settings.api.domain);
        if ours
            && starling_schema::validate::normalize_username(name).is_ok()
            && let Some(found) = api.store.accounts_by_usernames(&[name]).await?.first()
        {
            let loaded = Accounts::load(&api, &[found.id]).await?;
            accounts.extend(loaded.json(&api, found.id));
        }
    }
    Ok(HttpResponse::Ok().json(json!({ "accounts": accounts, "statuses": [], "hashtags": [] })))
}
