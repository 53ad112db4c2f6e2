//! The signed-in user's own account: editing the profile (`update_credentials`) and
//! deciding follow requests (`/api/v1/follow_requests`).

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{Visibility, Window};
use starling_schema::profile::{MAX_FIELDS, ProfileField, ProfileUpdate};
use starling_store::Store;

use super::accounts::own_list;
use super::path_id;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, Auth, Query};
use crate::pagination::PageParams;
use crate::{Api, entities};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/accounts/update_credentials",
        web::patch().to(update_credentials),
    )
    .route("/api/v1/follow_requests", web::get().to(follow_requests))
    .route(
        "/api/v1/follow_requests/{id}/authorize",
        web::post().to(authorize),
    )
    .route(
        "/api/v1/follow_requests/{id}/reject",
        web::post().to(reject),
    );
}

/// The most follow requests `source.follow_requests_count` counts exactly.
const COUNT_REQUESTS_UP_TO: usize = 1_000;

/// The signed-in user as `verify_credentials` shows it: with `source`.
pub(super) async fn credential_account(
    api: &Api,
    account: &starling_schema::model::Account,
) -> ApiResult<HttpResponse> {
    let me = [account.id];
    let (counts, requests) = futures::try_join!(
        api.store.account_counts(&me),
        api.store
            .follow_requests(account.id, Window::oldest(COUNT_REQUESTS_UP_TO)),
    )?;
    let counts = counts.first().copied().unwrap_or_default();
    let pending = requests.items.len() as u64;
    Ok(entities::credential_account(account, &counts, pending, api.base_url()).response())
}

// ---- update_credentials -----------------------------------------------------------------

/// An `update_credentials` body as a JSON tree, whatever it came as: JSON as sent; form and
/// multipart keys such as `source[privacy]` and `fields_attributes[0][name]` unfolded into
/// nested objects, so one reader serves all three.
pub struct ProfileBody(Map<String, Value>);

impl FromRequest for ProfileBody {
    type Error = ApiError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = extract::content_type(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = extract::body_bytes(bytes).await?;
            let lower = content_type.to_ascii_lowercase();
            if lower.starts_with("application/json") {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Ok(ProfileBody(Map::new()));
                }
                return match serde_json::from_slice(&bytes) {
                    Ok(Value::Object(map)) => Ok(ProfileBody(map)),
                    Ok(_) => Err(ApiError::invalid(
                        "Invalid request body: expected an object",
                    )),
                    Err(e) => Err(ApiError::invalid(format!("Invalid request body: {e}"))),
                };
            }
            let pairs = if lower.starts_with("multipart/") {
                // The place for `avatar` and `header` images (media, issue 13): until they
                // are stored, a file part is refused (415) rather than dropped unseen.
                extract::multipart_fields(&content_type, bytes).await?
            } else {
                serde_html_form::from_bytes::<Vec<(String, String)>>(&bytes)
                    .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))?
            };
            unfold(pairs).map(ProfileBody)
        })
    }
}

/// Most form keys one body may carry (a full profile edit needs about twenty).
const MAX_KEYS: usize = 64;

/// `a[b][c]=v` pairs as nested objects: `{"a": {"b": {"c": "v"}}}`. `a[]` keys collect into
/// arrays. A key that is both a value and an object is refused.
fn unfold(pairs: Vec<(String, String)>) -> ApiResult<Map<String, Value>> {
    if pairs.len() > MAX_KEYS {
        return Err(ApiError::invalid(format!("at most {MAX_KEYS} parameters")));
    }
    let mut root = Map::new();
    for (key, value) in pairs {
        let mut path: Vec<&str> = Vec::new();
        let (head, mut rest) = key
            .split_once('[')
            .map_or((key.as_str(), ""), |(h, r)| (h, r));
        path.push(head);
        while !rest.is_empty() {
            let Some((seg, after)) = rest.split_once(']') else {
                return Err(ApiError::invalid(format!("Invalid parameter name {key:?}")));
            };
            path.push(seg);
            rest = after.strip_prefix('[').unwrap_or(after);
        }
        insert(&mut root, &path, value)
            .ok_or_else(|| ApiError::invalid(format!("Conflicting parameter {key:?}")))?;
    }
    Ok(root)
}

fn insert(map: &mut Map<String, Value>, path: &[&str], value: String) -> Option<()> {
    let (first, rest) = path.split_first()?;
    match rest {
        [] => {
            map.insert((*first).to_owned(), Value::String(value));
        }
        [""] => match map
            .entry((*first).to_owned())
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(items) => items.push(Value::String(value)),
            _ => return None,
        },
        _ => match map
            .entry((*first).to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
        {
            Value::Object(inner) => insert(inner, rest, value)?,
            _ => return None,
        },
    }
    Some(())
}

fn text(body: &Map<String, Value>, key: &'static str) -> ApiResult<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{key} must be text"))),
    }
}

fn flag(body: &Map<String, Value>, key: &'static str) -> ApiResult<Option<bool>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64() != Some(0.0))),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" | "yes" => Ok(Some(true)),
            "false" | "0" | "off" | "no" | "" => Ok(Some(false)),
            _ => Err(ApiError::invalid(format!("{key} must be a boolean"))),
        },
        Some(_) => Err(ApiError::invalid(format!("{key} must be a boolean"))),
    }
}

/// `fields_attributes` as Mastodon takes it: an array of `{name, value}`, or an object
/// keyed by position (`fields_attributes[0][name]`), in the order of those positions.
fn fields(value: &Value) -> ApiResult<Vec<ProfileField>> {
    let bad = || ApiError::invalid("fields_attributes must be a list of {name, value}");
    let entries: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        Value::Object(by_index) => {
            let mut keyed: Vec<(u64, &Value)> = Vec::with_capacity(by_index.len());
            for (k, v) in by_index {
                keyed.push((k.parse().map_err(|_| bad())?, v));
            }
            keyed.sort_by_key(|(k, _)| *k);
            keyed.into_iter().map(|(_, v)| v).collect()
        }
        _ => return Err(bad()),
    };
    if entries.len() > MAX_FIELDS {
        return Err(ApiError::invalid(format!(
            "Validation failed: Fields has more than {MAX_FIELDS} fields"
        )));
    }
    entries
        .into_iter()
        .map(|e| {
            let e = e.as_object().ok_or_else(bad)?;
            let part = |k: &str| match e.get(k) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(bad()),
            };
            Ok(ProfileField {
                name: part("name")?,
                value: part("value")?,
            })
        })
        .collect()
}

/// Read an `update_credentials` body into an edit. Unknown keys are ignored, as Mastodon
/// ignores them.
fn profile_update(body: &Map<String, Value>) -> ApiResult<ProfileUpdate> {
    let mut update = ProfileUpdate {
        display_name: text(body, "display_name")?,
        note: text(body, "note")?,
        locked: flag(body, "locked")?,
        bot: flag(body, "bot")?,
        discoverable: flag(body, "discoverable")?,
        fields: body.get("fields_attributes").map(fields).transpose()?,
        ..ProfileUpdate::default()
    };
    match body.get("source") {
        None | Some(Value::Null) => {}
        Some(Value::Object(source)) => {
            update.privacy = match text(source, "privacy")? {
                Some(p) => Some(Visibility::parse(&p).ok_or_else(|| {
                    ApiError::invalid("source[privacy] must be public, unlisted or private")
                })?),
                None => None,
            };
            update.sensitive = flag(source, "sensitive")?;
            update.language = match source.get("language") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(l)) => Some(Some(l.clone())),
                Some(_) => return Err(ApiError::invalid("source[language] must be text")),
            };
        }
        Some(_) => return Err(ApiError::invalid("source must be an object")),
    }
    Ok(update)
}

async fn update_credentials(
    api: web::Data<Api>,
    auth: Auth,
    ProfileBody(body): ProfileBody,
) -> ApiResult<HttpResponse> {
    let update = profile_update(&body)?;
    let me = auth.account.id;
    let before = &auth.account;
    let account = api.store.update_profile(me, update).await?;
    if account != **before {
        // Every node drops its cached copy now; the indexer and other readers follow the event.
        api.account_changed(me).await;
        api.publish(Event::AccountUpdated {
            account: account.clone(),
        })
        .await?;
        if before.locked && !account.locked {
            accept_all(&api, me).await?;
        }
    }
    credential_account(&api, &account).await
}

/// An account that unlocks takes every follower who asked meanwhile, as Mastodon does.
async fn accept_all(api: &Api, me: Id) -> ApiResult<()> {
    loop {
        let page = api
            .store
            .follow_requests(me, Window::oldest(starling_store::MAX_BATCH))
            .await?;
        if page.items.is_empty() {
            return Ok(());
        }
        for requester in page.items {
            if api.store.authorize_follow_request(me, requester).await? {
                api.publish(Event::FollowAuthorized {
                    follower_id: requester,
                    followee_id: me,
                })
                .await?;
            }
        }
    }
}

// ---- follow requests --------------------------------------------------------------------

async fn follow_requests(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    own_list(req, &api, &page, |w| api.store.follow_requests(me, w)).await
}

/// Decide the request of the account in the path, and answer the relationship with it.
async fn decide(api: &Api, me: Id, raw: &str, accept: bool) -> ApiResult<HttpResponse> {
    let requester = path_id(raw)?;
    let decided = if accept {
        api.store.authorize_follow_request(me, requester).await?
    } else {
        api.store.reject_follow_request(me, requester).await?
    };
    if !decided {
        return Err(ApiError::not_found("Follow request"));
    }
    if accept {
        api.publish(Event::FollowAuthorized {
            follower_id: requester,
            followee_id: me,
        })
        .await?;
    }
    let rels = api.store.relationships(me, &[requester]).await?;
    let rel = rels.first().ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(entities::relationship(rel).response())
}

async fn authorize(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    decide(&api, auth.account.id, &path, true).await
}

async fn reject(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    decide(&api, auth.account.id, &path, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn form_keys_unfold_into_the_json_shape() {
        let body = unfold(pairs(&[
            ("display_name", "Alice"),
            ("locked", "true"),
            ("source[privacy]", "private"),
            ("source[language]", "de"),
            ("fields_attributes[1][name]", "second"),
            ("fields_attributes[1][value]", "2"),
            ("fields_attributes[0][name]", "first"),
            ("fields_attributes[0][value]", "1"),
        ]))
        .unwrap();
        let update = profile_update(&body).unwrap();
        assert_eq!(update.display_name.as_deref(), Some("Alice"));
        assert_eq!(update.locked, Some(true));
        assert_eq!(update.privacy, Some(Visibility::Private));
        assert_eq!(update.language, Some(Some("de".into())));
        let names: Vec<&str> = update
            .fields
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["first", "second"], "fields keep their positions");
    }

    #[test]
    fn json_bodies_read_the_same() {
        let body: Value = serde_json::json!({
            "note": "hi",
            "bot": 1,
            "fields_attributes": [{"name": "a", "value": "b"}],
            "source": {"sensitive": true, "language": null},
        });
        let Value::Object(body) = body else { panic!() };
        let update = profile_update(&body).unwrap();
        assert_eq!(update.note.as_deref(), Some("hi"));
        assert_eq!(update.bot, Some(true));
        assert_eq!(update.sensitive, Some(true));
        assert_eq!(update.language, Some(None), "null clears the language");
        assert_eq!(update.fields.map(|f| f.len()), Some(1));
    }

    #[test]
    fn malformed_bodies_are_refused() {
        for bad in [
            pairs(&[("source[privacy]", "everyone")]),
            pairs(&[("locked", "maybe")]),
            pairs(&[("fields_attributes[x][name]", "n")]),
            pairs(&[("source", "public"), ("source[privacy]", "public")]),
            pairs(&[("fields_attributes[0][name", "n")]),
        ] {
            let parsed = unfold(bad.clone()).and_then(|b| profile_update(&b));
            assert!(parsed.is_err(), "{bad:?} accepted");
        }
        let five: Vec<(String, String)> = (0..5)
            .map(|i| (format!("fields_attributes[{i}][name]"), "n".into()))
            .collect();
        assert!(unfold(five).and_then(|b| profile_update(&b)).is_err());
    }
}
