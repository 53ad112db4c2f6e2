//! Notifications: list (kind filters, cursors), show one, dismiss one, clear all. The
//! fan-out worker creates them; here they are read, filtered again by the reader's blocks
//! and notification mutes (which may be newer than the notification), and rendered.

use std::collections::{HashMap, HashSet};

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use starling_schema::Id;
use starling_schema::model::{Notification, NotificationKind};
use starling_store::Store;

use super::{json, path_id};
use crate::Api;
use crate::entities::{Json, iso8601};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query, one_or_many};
use crate::filters;
use crate::hydrate::{self, Accounts};
use crate::pagination::PageParams;
use starling_schema::startup::FilterContext;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/notifications", web::get().to(list))
        .route("/api/v1/notifications/clear", web::post().to(clear))
        .route("/api/v1/notifications/{id}", web::get().to(show))
        .route(
            "/api/v1/notifications/{id}/dismiss",
            web::post().to(dismiss),
        );
}

pub(crate) const ALL: [NotificationKind; 7] = [
    NotificationKind::Mention,
    NotificationKind::Follow,
    NotificationKind::Favourite,
    NotificationKind::Reblog,
    NotificationKind::FollowRequest,
    NotificationKind::Poll,
    NotificationKind::Update,
];

#[derive(Deserialize)]
struct ListQuery {
    #[serde(flatten)]
    page: PageParams,
    #[serde(
        rename = "types[]",
        alias = "types",
        default,
        deserialize_with = "one_or_many"
    )]
    types: Vec<String>,
    #[serde(
        rename = "exclude_types[]",
        alias = "exclude_types",
        default,
        deserialize_with = "one_or_many"
    )]
    exclude_types: Vec<String>,
}

/// The kinds to list, or `None` for all. Types this server never creates (`status`,
/// `admin.sign_up`...) select nothing, as on Mastodon.
pub(crate) fn kinds(types: &[String], exclude: &[String]) -> Option<Vec<NotificationKind>> {
    if types.is_empty() && exclude.is_empty() {
        return None;
    }
    let wanted: Vec<NotificationKind> = if types.is_empty() {
        ALL.to_vec()
    } else {
        types
            .iter()
            .filter_map(|t| NotificationKind::parse(t))
            .collect()
    };
    let excluded: HashSet<NotificationKind> = exclude
        .iter()
        .filter_map(|t| NotificationKind::parse(t))
        .collect();
    Some(
        wanted
            .into_iter()
            .filter(|k| !excluded.contains(k))
            .collect(),
    )
}

async fn list(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let cursor = q.page.cursor_with(40, 80)?;
    let kinds = kinds(&q.types, &q.exclude_types);
    let items = match &kinds {
        Some(k) if k.is_empty() => Vec::new(),
        k => {
            api.store
                .notifications(me, cursor.window, k.as_deref())
                .await?
                .items
        }
    };
    let scanned: Vec<Id> = items.iter().map(|n| n.id).collect();
    let mut body = render(&api, me, &items).await?;
    if cursor.reverse {
        body.reverse();
    }
    Ok(super::accounts::with_link(
        &req,
        scanned,
        cursor.reverse,
        Json::array(&body),
    ))
}

async fn show(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let id = path_id(&path)?;
    let n = api
        .store
        .notification(me, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Record"))?;
    let rendered = render(&api, me, std::slice::from_ref(&n)).await?;
    Ok(rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?
        .response())
}

async fn dismiss(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    if !api.store.dismiss_notification(auth.account.id, id).await? {
        return Err(ApiError::not_found("Record"));
    }
    Ok(json(&json!({})))
}

async fn clear(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    api.store.clear_notifications(auth.account.id).await?;
    Ok(json(&json!({})))
}

/// A batch of notifications made ready to show: those from accounts the reader blocks,
/// is blocked by or mutes notifications of are gone, and those whose status is gone, no
/// longer visible to the reader or hidden by one of the reader's `notifications` filters;
/// the statuses are rendered (with their `filtered` results) and the accounts loaded.
pub(crate) struct Prepared {
    pub items: Vec<Notification>,
    pub statuses: HashMap<Id, Json>,
    pub accounts: Accounts,
}

/// A notification's own members; its account and status are joined as rendered.
#[derive(serde::Serialize)]
struct NotificationHead {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    created_at: String,
    group_key: String,
}

pub(crate) async fn prepare(api: &Api, me: Id, items: &[Notification]) -> ApiResult<Prepared> {
    let mut from: Vec<Id> = items.iter().map(|n| n.from_account_id).collect();
    from.sort_unstable();
    from.dedup();
    from.retain(|a| *a != me);
    let rels = api.store.relationships(me, &from).await?;
    let hidden: HashSet<Id> = rels
        .iter()
        .filter(|r| r.blocking || r.blocked_by || r.muting_notifications)
        .map(|r| r.target)
        .collect();
    let items: Vec<&Notification> = items
        .iter()
        .filter(|n| !hidden.contains(&n.from_account_id))
        .collect();
    let post_ids: Vec<Id> = items.iter().filter_map(|n| n.post_id).collect();
    let posts = api.posts_by_ids(&post_ids).await?;
    let posts = hydrate::filter_for(api, Some(me), posts).await?;
    // Filter hook (issue 11): `hide` filters drop the notification, `warn` marks its status.
    let verdicts = filters::judge(api, Some(me), FilterContext::Notifications, &posts).await?;
    let posts = verdicts.keep(posts);
    let mut rendered = hydrate::statuses_by_id(api, Some(me), &posts).await?;
    verdicts.mark_by_id(&mut rendered);
    // Rendering skips statuses whose author is gone, so key them by their own id.
    let statuses: HashMap<Id, Json> = rendered.into_iter().collect();
    let accounts = Accounts::load(
        api,
        &items.iter().map(|n| n.from_account_id).collect::<Vec<_>>(),
    )
    .await?;
    let items = items
        .into_iter()
        .filter(|n| accounts.contains(n.from_account_id))
        .filter(|n| n.post_id.is_none_or(|p| statuses.contains_key(&p)))
        .cloned()
        .collect();
    Ok(Prepared {
        items,
        statuses,
        accounts,
    })
}

/// Notifications as Mastodon entities, in order, in batches (see [`prepare`]).
pub(crate) async fn render(api: &Api, me: Id, items: &[Notification]) -> ApiResult<Vec<Json>> {
    let prepared = prepare(api, me, items).await?;
    let mut out = Vec::with_capacity(prepared.items.len());
    for n in &prepared.items {
        let Some(account) = prepared.accounts.json(n.from_account_id) else {
            continue;
        };
        let null = Json::null();
        let status = match n.post_id {
            Some(post) => match prepared.statuses.get(&post) {
                Some(s) => s,
                None => continue,
            },
            None => &null,
        };
        let head = Json::of(&NotificationHead {
            id: n.id.to_string(),
            kind: n.kind.as_str(),
            created_at: iso8601(n.created_at_ms),
            group_key: format!("ungrouped-{}", n.id),
        });
        out.push(
            head.with_member("account", &account)
                .with_member("status", status),
        );
    }
    Ok(out)
}
