//! What apps call as they start: preferences, custom emojis, announcements (with dismiss)
//! and read markers for the home and notifications timelines.

use std::collections::HashSet;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::startup::{Announcement, Marker, MarkerTimeline};
use starling_store::Store;

use super::{json, path_id};
use crate::Api;
use crate::entities::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query, one_or_many};
use crate::fields::Fields;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/preferences", web::get().to(preferences))
        .route("/api/v1/custom_emojis", web::get().to(custom_emojis))
        .route("/api/v1/announcements", web::get().to(announcements))
        .route(
            "/api/v1/announcements/{id}/dismiss",
            web::post().to(dismiss_announcement),
        )
        .route("/api/v1/markers", web::get().to(markers))
        .route("/api/v1/markers", web::post().to(save_markers));
}

/// The account's posting and reading preferences. Starling keeps no per-account posting
/// defaults yet, so these are the values every post and view uses (the same ones
/// `verify_credentials` reports under `source`).
async fn preferences(_auth: Auth) -> ApiResult<HttpResponse> {
    Ok(json(&json!({
        "posting:default:visibility": "public",
        "posting:default:sensitive": false,
        "posting:default:language": null,
        "reading:expand:media": "default",
        "reading:expand:spoilers": false,
    })))
}

/// No custom emojis exist on a Starling instance.
async fn custom_emojis() -> ApiResult<HttpResponse> {
    Ok(json(&Vec::<Value>::new()))
}

pub fn announcement_json(a: &Announcement, read: bool, base: &str) -> Value {
    json!({
        "id": a.id.to_string(),
        "content": crate::text::to_html(&a.text, base, |_| None),
        "starts_at": a.starts_at_ms.map(iso8601),
        "ends_at": a.ends_at_ms.map(iso8601),
        "all_day": a.all_day,
        "published": true,
        "published_at": iso8601(a.published_at_ms),
        "updated_at": iso8601(a.updated_at_ms),
        "read": read,
        "mentions": [],
        "statuses": [],
        "tags": [],
        "emojis": [],
        "reactions": [],
    })
}

/// Current announcements (not yet ended), oldest first, each with whether the user
/// dismissed it.
async fn announcements(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    let (all, dismissed) = futures::try_join!(
        api.store.announcements(),
        api.store.dismissed_announcements(auth.account.id),
    )?;
    let dismissed: HashSet<Id> = dismissed.into_iter().collect();
    let now = now_ms();
    let mut current: Vec<&Announcement> = all.iter().filter(|a| a.current_at(now)).collect();
    current.sort_by_key(|a| a.id);
    let body: Vec<Value> = current
        .into_iter()
        .map(|a| announcement_json(a, dismissed.contains(&a.id), api.base_url()))
        .collect();
    Ok(json(&body))
}

async fn dismiss_announcement(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    api.store
        .dismiss_announcement(auth.account.id, id)
        .await
        .map_err(|e| match e.kind() {
            starling_schema::ErrorKind::NotFound => ApiError::not_found("Record"),
            _ => e.into(),
        })?;
    Ok(json(&json!({})))
}

fn marker_json(m: &Marker) -> Value {
    json!({
        "last_read_id": m.last_read_id.to_string(),
        "version": m.version,
        "updated_at": iso8601(m.updated_at_ms),
    })
}

fn markers_json(markers: &[Marker]) -> Value {
    let mut map = Map::new();
    for m in markers {
        map.insert(m.timeline.as_str().into(), marker_json(m));
    }
    Value::Object(map)
}

#[derive(Deserialize)]
struct MarkersQuery {
    #[serde(
        rename = "timeline[]",
        alias = "timeline",
        default,
        deserialize_with = "one_or_many"
    )]
    timeline: Vec<String>,
}

fn timeline(name: &str) -> ApiResult<MarkerTimeline> {
    MarkerTimeline::parse(name).ok_or_else(|| {
        ApiError::invalid(format!(
            "unknown timeline {name:?}: markers are kept for home and notifications"
        ))
    })
}

/// The markers asked for by `timeline[]` (none asked, none answered, as on Mastodon).
async fn markers(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<MarkersQuery>,
) -> ApiResult<HttpResponse> {
    let wanted = q
        .timeline
        .iter()
        .map(|t| timeline(t))
        .collect::<ApiResult<HashSet<_>>>()?;
    let mut all = api.store.markers(auth.account.id).await?;
    all.retain(|m| wanted.contains(&m.timeline));
    Ok(json(&markers_json(&all)))
}

/// `home[last_read_id]=…`, `notifications[last_read_id]=…` (form or JSON): each given
/// marker moves and its version goes up by one.
async fn save_markers(
    api: web::Data<Api>,
    auth: Auth,
    Fields(body): Fields,
) -> ApiResult<HttpResponse> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid(
            "expected home[last_read_id] or notifications[last_read_id]",
        ));
    };
    let mut updates: Vec<(MarkerTimeline, Id)> = Vec::new();
    for (name, value) in obj {
        // Only `<timeline>[last_read_id]` names a marker; other parameters are not ours.
        let Some(inner) = value.as_object() else {
            continue;
        };
        let tl = timeline(name)?;
        let raw = crate::fields::text(inner.get("last_read_id"))
            .ok_or_else(|| ApiError::invalid(format!("{name}[last_read_id] is missing")))?;
        let id: Id = raw
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(format!("{name}[last_read_id] must be an id")))?;
        updates.push((tl, id));
    }
    if updates.is_empty() {
        return Err(ApiError::invalid(
            "expected home[last_read_id] or notifications[last_read_id]",
        ));
    }
    let mut saved = Vec::with_capacity(updates.len());
    for (tl, id) in updates {
        saved.push(api.store.set_marker(auth.account.id, tl, id).await?);
    }
    Ok(json(&markers_json(&saved)))
}
