//! Web Push subscriptions (`/api/v1/push/subscription`), one per access token, as
//! Mastodon specifies them; the push worker (`starling-push`) sends the notifications.
//! The token needs the `push` scope. Bodies come as forms with bracketed keys
//! (`subscription[keys][p256dh]`, `data[alerts][mention]`) or as nested JSON; both are
//! read as the same flat keys.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::push::{Alerts, PushPolicy, PushSubscription, check_endpoint, decode_keys};
use starling_store::Store;

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, PushAuth};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/push/subscription", web::post().to(create))
        .route("/api/v1/push/subscription", web::get().to(show))
        .route("/api/v1/push/subscription", web::put().to(update))
        .route("/api/v1/push/subscription", web::delete().to(remove));
}

/// Mastodon's `WebPushSubscription` entity.
#[derive(Serialize)]
struct SubscriptionEntity {
    id: String,
    endpoint: String,
    standard: bool,
    alerts: BTreeMap<&'static str, bool>,
    policy: &'static str,
    server_key: String,
}

async fn entity(api: &Api, sub: &PushSubscription) -> ApiResult<HttpResponse> {
    let server_key = api.vapid().await?.public_key().to_owned();
    Ok(HttpResponse::Ok().json(SubscriptionEntity {
        id: sub.id.to_string(),
        endpoint: sub.endpoint.clone(),
        standard: sub.standard,
        alerts: sub.alerts.entries().collect(),
        policy: sub.policy.as_str(),
        server_key,
    }))
}

/// A request body as flat bracketed keys: `{"a": {"b": 1}}` and `a[b]=1` both give `a[b]`.
fn flatten(value: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(prefix: String, value: &serde_json::Value, out: &mut BTreeMap<String, String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}[{k}]")
                    };
                    walk(key, v, out);
                }
            }
            serde_json::Value::String(s) => {
                out.insert(prefix, s.clone());
            }
            serde_json::Value::Null => {}
            other => {
                out.insert(prefix, other.to_string());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(String::new(), value, &mut out);
    out
}

fn truthy(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "on" | "t" | "yes"
    )
}

/// `data[alerts][...]` and `data[policy]` of a body: the alerts named (with their values)
/// and the policy, if given.
type Data = (Option<(Alerts, Vec<String>)>, Option<PushPolicy>);

fn parse_data(body: &BTreeMap<String, String>) -> Result<Data, starling_schema::Invalid> {
    let mut named = Vec::new();
    let mut pairs = Vec::new();
    for (key, value) in body {
        if let Some(name) = key
            .strip_prefix("data[alerts][")
            .and_then(|k| k.strip_suffix(']'))
        {
            named.push(name.to_owned());
            pairs.push((name, truthy(value)));
        }
    }
    let alerts = if named.is_empty() {
        None
    } else {
        Some((Alerts::from_pairs(pairs)?, named))
    };
    let policy = body
        .get("data[policy]")
        .map(|p| PushPolicy::parse(p.trim()))
        .transpose()?;
    Ok((alerts, policy))
}

async fn create(
    api: web::Data<Api>,
    PushAuth(auth, token): PushAuth,
    Body(body): Body<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let body = flatten(&body);
    let field = |name: &str| body.get(name).map(|s| s.trim()).unwrap_or_default();
    let endpoint = field("subscription[endpoint]");
    if endpoint.is_empty() {
        return Err(ApiError::invalid("subscription[endpoint] is missing"));
    }
    check_endpoint(endpoint, api.settings.push.allow_private_addresses)?;
    let p256dh = field("subscription[keys][p256dh]");
    let auth_secret = field("subscription[keys][auth]");
    let (public, _) = decode_keys(p256dh, auth_secret)?;
    if !starling_push::crypto::is_p256_point(&public) {
        return Err(ApiError::invalid(
            "subscription[keys][p256dh] is not a point on the P-256 curve",
        ));
    }
    let (alerts, policy) = parse_data(&body)?;
    let vapid = api.vapid().await?;
    let sub = PushSubscription {
        id: subscription_id(&auth.token.token_hash),
        account_id: auth.account.id,
        token_hash: auth.token.token_hash.clone(),
        endpoint: endpoint.to_owned(),
        p256dh: p256dh.to_owned(),
        auth: auth_secret.to_owned(),
        alerts: alerts.map(|(a, _)| a).unwrap_or_default(),
        policy: policy.unwrap_or_default(),
        standard: body
            .get("subscription[standard]")
            .is_some_and(|s| truthy(s)),
        sealed_token: vapid
            .seal(&token)
            .map_err(|e| ApiError::internal("sealing a token", &e))?,
        created_at_ms: now_ms(),
    };
    api.store.save_push_subscription(sub.clone()).await?;
    entity(&api, &sub).await
}

/// The subscription's id: stable per token (the digest's first 52 bits), so replacing a
/// subscription keeps its id, as Mastodon's does.
fn subscription_id(token_hash: &str) -> Id {
    let head = token_hash.get(..13).unwrap_or("0");
    Id(u64::from_str_radix(head, 16).unwrap_or_default())
}

async fn current(api: &Api, auth: &crate::extract::Auth) -> ApiResult<PushSubscription> {
    api.store
        .push_subscriptions_of(auth.account.id)
        .await?
        .into_iter()
        .find(|s| s.token_hash == auth.token.token_hash)
        .ok_or_else(|| ApiError::not_found("Record"))
}

async fn show(api: web::Data<Api>, PushAuth(auth, _): PushAuth) -> ApiResult<HttpResponse> {
    let sub = current(&api, &auth).await?;
    entity(&api, &sub).await
}

async fn update(
    api: web::Data<Api>,
    PushAuth(auth, _): PushAuth,
    Body(body): Body<serde_json::Value>,
) -> ApiResult<HttpResponse> {
    let mut sub = current(&api, &auth).await?;
    let (alerts, policy) = parse_data(&flatten(&body))?;
    if let Some((alerts, named)) = alerts {
        sub.alerts = sub.alerts.merged(&alerts, &named);
    }
    if let Some(policy) = policy {
        sub.policy = policy;
    }
    api.store.save_push_subscription(sub.clone()).await?;
    entity(&api, &sub).await
}

async fn remove(api: web::Data<Api>, PushAuth(auth, _): PushAuth) -> ApiResult<HttpResponse> {
    api.store
        .delete_push_subscription(auth.account.id, &auth.token.token_hash)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_json_read_as_the_same_keys() {
        let json = serde_json::json!({
            "subscription": { "endpoint": "https://p.example/x", "keys": { "auth": "a" }, "standard": true },
            "data": { "alerts": { "mention": true, "follow": "0" }, "policy": "followed" },
        });
        let flat = flatten(&json);
        assert_eq!(flat["subscription[endpoint]"], "https://p.example/x");
        assert_eq!(flat["subscription[keys][auth]"], "a");
        assert_eq!(flat["subscription[standard]"], "true");
        let (alerts, policy) = parse_data(&flat).expect("valid");
        let (alerts, named) = alerts.expect("alerts given");
        assert!(alerts.allows("mention") && !alerts.allows("follow"));
        assert_eq!(named.len(), 2);
        assert_eq!(policy, Some(PushPolicy::Followed));

        let form: BTreeMap<String, String> =
            [("data[alerts][reblog]".to_owned(), "1".to_owned())].into();
        let form = flatten(&serde_json::to_value(form).expect("json"));
        let (alerts, policy) = parse_data(&form).expect("valid");
        assert!(alerts.expect("alerts").0.allows("reblog"));
        assert_eq!(policy, None);

        let bad: BTreeMap<String, String> =
            [("data[alerts][mentions]".to_owned(), "true".to_owned())].into();
        assert!(parse_data(&bad).is_err());
        let bad: BTreeMap<String, String> =
            [("data[policy]".to_owned(), "friends".to_owned())].into();
        assert!(parse_data(&bad).is_err());
    }
}
