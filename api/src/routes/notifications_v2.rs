//! Grouped notifications (`/api/v2/notifications`) as Mastodon 4.3 groups them, and the
//! unread counts of v1 and v2 (relative to the `notifications` read marker).
//!
//! Favourites and reblogs of one status group together, and follows group together, within
//! a 12-hour window (Mastodon groups within 12 hours of a group's first notification; here
//! the windows are fixed, `hour / 12`, so a group key is a pure function of the
//! notification). Mentions never group. A page holds `limit` groups: notifications are read
//! newest first (oldest first for `min_id`) until one more group would start. On a full
//! page each group counts its notifications between the page's oldest and newest group
//! heads; the last page counts all of them (Mastodon's `pagination_range`).

use std::collections::{HashMap, HashSet};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use starling_schema::Id;
use starling_schema::model::{Notification, NotificationKind, Order, Window};
use starling_schema::startup::MarkerTimeline;
use starling_store::Store;

use super::json;
use super::notifications::{kinds, prepare};
use crate::Api;
use crate::entities::{Json, iso8601};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query, one_or_many};
use crate::hydrate::Accounts;
use crate::pagination::{PageParams, link_header};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/notifications/unread_count",
        web::get().to(unread_count_v1),
    )
    .route("/api/v2/notifications", web::get().to(list))
    .route(
        "/api/v2/notifications/unread_count",
        web::get().to(unread_count_v2),
    )
    .route("/api/v2/notifications/{group_key}", web::get().to(show))
    .route(
        "/api/v2/notifications/{group_key}/accounts",
        web::get().to(group_accounts),
    )
    .route(
        "/api/v2/notifications/{group_key}/dismiss",
        web::post().to(dismiss),
    );
}

/// Kinds that group.
const GROUPABLE: [NotificationKind; 3] = [
    NotificationKind::Favourite,
    NotificationKind::Reblog,
    NotificationKind::Follow,
];
/// Accounts shown per group (Mastodon's `SAMPLE_ACCOUNTS_SIZE`).
const SAMPLE_ACCOUNTS: usize = 8;
/// Notifications read per store page while grouping.
const BATCH: usize = 80;
/// Most notifications looked at for one request: a page ends there.
const MAX_SCAN: usize = 2_000;
const GROUP_HOURS: u64 = 12;
const HOUR_MS: u64 = 3_600_000;

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
    #[serde(
        rename = "grouped_types[]",
        alias = "grouped_types",
        default,
        deserialize_with = "one_or_many"
    )]
    grouped_types: Vec<String>,
}

/// Which kinds group: `grouped_types[]` when given (only groupable kinds count), else all
/// groupable kinds.
fn grouped(types: &[String]) -> Vec<NotificationKind> {
    if types.is_empty() {
        return GROUPABLE.to_vec();
    }
    types
        .iter()
        .filter_map(|t| NotificationKind::parse(t))
        .filter(|k| GROUPABLE.contains(k))
        .collect()
}

fn bucket(created_at_ms: u64) -> u64 {
    created_at_ms / HOUR_MS / GROUP_HOURS * GROUP_HOURS
}

/// The notification's group: `favourite-<status>-<hour>`, `reblog-<status>-<hour>`,
/// `follow-<hour>`, or `ungrouped-<id>`.
pub fn group_key(n: &Notification, grouped: &[NotificationKind]) -> String {
    if !grouped.contains(&n.kind) {
        return format!("ungrouped-{}", n.id);
    }
    let hour = bucket(n.created_at_ms);
    match (n.kind, n.post_id) {
        (NotificationKind::Follow, _) => format!("follow-{hour}"),
        (kind, Some(post)) => format!("{}-{post}-{hour}", kind.as_str()),
        _ => format!("ungrouped-{}", n.id),
    }
}

/// What a group key selects: its kind, its status, and the window of ids its time covers.
enum KeySel {
    One(Id),
    Group {
        kind: NotificationKind,
        post: Option<Id>,
        window: Window,
    },
}

fn parse_key(key: &str) -> Option<KeySel> {
    if let Some(id) = key.strip_prefix("ungrouped-") {
        return id.parse().ok().map(KeySel::One);
    }
    let parts: Vec<&str> = key.split('-').collect();
    let (kind, post, hour) = match parts.as_slice() {
        ["follow", hour] => (NotificationKind::Follow, None, *hour),
        [kind, post, hour] => (
            NotificationKind::parse(kind)?,
            Some(post.parse().ok()?),
            *hour,
        ),
        _ => return None,
    };
    if !GROUPABLE.contains(&kind) || (kind == NotificationKind::Follow) != post.is_none() {
        return None;
    }
    let hour: u64 = hour.parse().ok()?;
    if !hour.is_multiple_of(GROUP_HOURS) {
        return None;
    }
    let start_ms = hour.checked_mul(HOUR_MS)?;
    let end_ms = start_ms.checked_add(GROUP_HOURS * HOUR_MS)?;
    let id_at = |ms: u64| ms.checked_mul(1 << 16).map(Id);
    Some(KeySel::Group {
        kind,
        post,
        window: Window {
            above: id_at(start_ms).and_then(|i| i.0.checked_sub(1)).map(Id),
            below: id_at(end_ms),
            order: Order::NewestFirst,
            limit: BATCH,
        },
    })
}

/// One group being gathered: its members in scan order.
struct Gathered {
    key: String,
    members: Vec<Notification>,
}

/// Gather up to `limit` groups from `window` onwards (see the module docs). Returns the
/// groups newest first, each with its members inside the page's range, and the statuses
/// they name, rendered.
async fn gather(
    api: &Api,
    me: Id,
    mut window: Window,
    kinds: Option<&[NotificationKind]>,
    grouped: &[NotificationKind],
    limit: usize,
) -> ApiResult<(Vec<Gathered>, Prepared2)> {
    let mut groups: Vec<Gathered> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut statuses: HashMap<Id, Json> = HashMap::new();
    let mut scanned = 0;
    window.limit = BATCH;
    'scan: loop {
        let page = api.store.notifications(me, window, kinds).await?;
        scanned += page.items.len();
        let prepared = prepare(api, me, &page.items).await?;
        statuses.extend(prepared.statuses);
        for n in prepared.items {
            let key = group_key(&n, grouped);
            let slot = match index.get(&key) {
                Some(i) => *i,
                None if groups.len() == limit => break 'scan,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push(Gathered {
                        key,
                        members: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            if let Some(g) = groups.get_mut(slot) {
                g.members.push(n);
            }
        }
        match page.next {
            Some(next) if scanned < MAX_SCAN => window = next,
            _ => break,
        }
    }
    // A full page's range runs between its group heads: members past the last head belong
    // to a later page. A page with fewer groups is the last one and counts everything, as
    // Mastodon's `pagination_range` does.
    let heads = groups
        .iter()
        .filter_map(|g| g.members.first().map(|n| n.id));
    let full = groups.len() == limit;
    match window.order {
        _ if !full => {}
        Order::NewestFirst => {
            if let Some(lowest) = heads.min() {
                for g in &mut groups {
                    g.members.retain(|n| n.id >= lowest);
                }
            }
        }
        Order::OldestFirst => {
            if let Some(highest) = heads.max() {
                for g in &mut groups {
                    g.members.retain(|n| n.id <= highest);
                }
            }
        }
    }
    for g in &mut groups {
        g.members.sort_by_key(|n| std::cmp::Reverse(n.id));
    }
    groups.sort_by(|a, b| {
        let newest = |g: &Gathered| g.members.first().map(|n| n.id);
        newest(b).cmp(&newest(a))
    });
    Ok((groups, Prepared2 { statuses }))
}

/// The rendered statuses a page's groups refer to.
struct Prepared2 {
    statuses: HashMap<Id, Json>,
}

/// The v2 body: groups plus the accounts and statuses they name, once each.
async fn body(api: &Api, groups: &[Gathered], prepared: &Prepared2) -> ApiResult<Value> {
    let mut account_ids: Vec<Id> = Vec::new();
    let mut rendered_groups = Vec::with_capacity(groups.len());
    let mut status_ids: Vec<Id> = Vec::new();
    for g in groups {
        let (Some(newest), Some(oldest)) = (g.members.first(), g.members.last()) else {
            continue;
        };
        let mut samples: Vec<Id> = Vec::new();
        for n in &g.members {
            if samples.len() < SAMPLE_ACCOUNTS && !samples.contains(&n.from_account_id) {
                samples.push(n.from_account_id);
            }
        }
        account_ids.extend(&samples);
        if let Some(p) = newest.post_id
            && !status_ids.contains(&p)
        {
            status_ids.push(p);
        }
        let mut group = json!({
            "group_key": g.key,
            "notifications_count": g.members.len(),
            "type": newest.kind.as_str(),
            "most_recent_notification_id": newest.id.to_string(),
            "page_min_id": oldest.id.to_string(),
            "page_max_id": newest.id.to_string(),
            "latest_page_notification_at": iso8601(newest.created_at_ms),
            "sample_account_ids": samples.iter().map(Id::to_string).collect::<Vec<_>>(),
        });
        if let Some(p) = newest.post_id {
            group["status_id"] = Value::String(p.to_string());
        }
        rendered_groups.push(group);
    }
    let accounts = Accounts::load(api, &account_ids).await?;
    let mut seen = HashSet::new();
    let accounts: Vec<Value> = account_ids
        .iter()
        .filter(|id| seen.insert(**id))
        .filter_map(|id| accounts.json(*id).map(|a| a.value()))
        .collect();
    let statuses: Vec<Value> = status_ids
        .iter()
        .filter_map(|id| prepared.statuses.get(id).map(Json::value))
        .collect();
    Ok(json!({
        "accounts": accounts,
        "statuses": statuses,
        "notification_groups": rendered_groups,
    }))
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
    let grouped = grouped(&q.grouped_types);
    let (groups, prepared) = match &kinds {
        Some(k) if k.is_empty() => (
            Vec::new(),
            Prepared2 {
                statuses: HashMap::new(),
            },
        ),
        k => {
            gather(
                &api,
                me,
                cursor.window,
                k.as_deref(),
                &grouped,
                cursor.window.limit,
            )
            .await?
        }
    };
    let ids = groups.iter().flat_map(|g| g.members.iter().map(|n| n.id));
    let (newest, oldest) = (ids.clone().max(), ids.min());
    let body = body(&api, &groups, &prepared).await?;
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (newest, oldest) {
        res.insert_header((header::LINK, link_header(&req, newest, oldest)));
    }
    Ok(res.json(body))
}

/// Every notification of one group (most recent first, up to [`MAX_SCAN`]).
async fn members(api: &Api, me: Id, key: &str) -> ApiResult<Vec<Notification>> {
    let not_found = || ApiError::not_found("Record");
    match parse_key(key).ok_or_else(not_found)? {
        KeySel::One(id) => Ok(api.store.notification(me, id).await?.into_iter().collect()),
        KeySel::Group {
            kind,
            post,
            mut window,
        } => {
            let mut out = Vec::new();
            let mut scanned = 0;
            loop {
                let page = api.store.notifications(me, window, Some(&[kind])).await?;
                scanned += page.items.len();
                out.extend(page.items.into_iter().filter(|n| n.post_id == post));
                match page.next {
                    Some(next) if scanned < MAX_SCAN => window = next,
                    _ => return Ok(out),
                }
            }
        }
    }
}

async fn show(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let all = members(&api, me, &path).await?;
    let prepared = prepare(&api, me, &all).await?;
    if prepared.items.is_empty() {
        return Err(ApiError::not_found("Record"));
    }
    let groups = vec![Gathered {
        key: path.into_inner(),
        members: prepared.items,
    }];
    let body = body(
        &api,
        &groups,
        &Prepared2 {
            statuses: prepared.statuses,
        },
    )
    .await?;
    Ok(json(&body))
}

/// Every account in one group, most recent first, once each.
async fn group_accounts(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let all = members(&api, me, &path).await?;
    let prepared = prepare(&api, me, &all).await?;
    if prepared.items.is_empty() {
        return Err(ApiError::not_found("Record"));
    }
    let mut seen = HashSet::new();
    let body: Vec<Value> = prepared
        .items
        .iter()
        .map(|n| n.from_account_id)
        .filter(|id| seen.insert(*id))
        .filter_map(|id| prepared.accounts.json(id).map(|a| a.value()))
        .collect();
    Ok(json(&body))
}

async fn dismiss(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let all = members(&api, me, &path).await?;
    if all.is_empty() {
        return Err(ApiError::not_found("Record"));
    }
    for n in all {
        api.store.dismiss_notification(me, n.id).await?;
    }
    Ok(json(&json!({})))
}

#[derive(Deserialize)]
struct UnreadQuery {
    limit: Option<String>,
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
    #[serde(
        rename = "grouped_types[]",
        alias = "grouped_types",
        default,
        deserialize_with = "one_or_many"
    )]
    grouped_types: Vec<String>,
}

impl UnreadQuery {
    /// Mastodon counts up to `limit` (default 100, at most 1000).
    fn limit(&self) -> ApiResult<usize> {
        match self.limit.as_deref().map(str::trim) {
            None | Some("") => Ok(100),
            Some(s) => s
                .parse::<usize>()
                .map(|n| n.clamp(1, 1000))
                .map_err(|_| ApiError::invalid("limit must be a number")),
        }
    }
}

/// Notifications newer than the `notifications` marker, shown as the lists would show
/// them, counted (`group`: by group key) up to `limit`.
async fn unread(api: &Api, me: Id, q: &UnreadQuery, group: bool) -> ApiResult<usize> {
    let limit = q.limit()?;
    let kinds = kinds(&q.types, &q.exclude_types);
    if kinds.as_ref().is_some_and(|k| k.is_empty()) {
        return Ok(0);
    }
    let marker = api
        .store
        .markers(me)
        .await?
        .into_iter()
        .find(|m| m.timeline == MarkerTimeline::Notifications)
        .map(|m| m.last_read_id);
    let grouped = grouped(&q.grouped_types);
    let mut window = Window {
        above: marker,
        below: None,
        order: Order::NewestFirst,
        limit: BATCH,
    };
    let mut keys: HashSet<String> = HashSet::new();
    let mut count = 0;
    let mut scanned = 0;
    loop {
        let page = api
            .store
            .notifications(me, window, kinds.as_deref())
            .await?;
        scanned += page.items.len();
        for n in prepare(api, me, &page.items).await?.items {
            if group {
                keys.insert(group_key(&n, &grouped));
            } else {
                count += 1;
            }
        }
        let counted = if group { keys.len() } else { count };
        if counted >= limit {
            return Ok(limit);
        }
        match page.next {
            Some(next) if scanned < MAX_SCAN => window = next,
            _ => return Ok(counted),
        }
    }
}

async fn unread_count_v1(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<UnreadQuery>,
) -> ApiResult<HttpResponse> {
    let count = unread(&api, auth.account.id, &q, false).await?;
    Ok(json(&json!({ "count": count })))
}

async fn unread_count_v2(
    api: web::Data<Api>,
    auth: Auth,
    Query(q): Query<UnreadQuery>,
) -> ApiResult<HttpResponse> {
    let count = unread(&api, auth.account.id, &q, true).await?;
    Ok(json(&json!({ "count": count })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u64, kind: NotificationKind, post: Option<u64>, at_ms: u64) -> Notification {
        Notification {
            id: Id(id),
            account_id: Id(1),
            kind,
            from_account_id: Id(2),
            post_id: post.map(Id),
            created_at_ms: at_ms,
        }
    }

    #[test]
    fn group_keys_follow_mastodon_and_parse_back() {
        let at = 25 * HOUR_MS + 5;
        let fav = n(10, NotificationKind::Favourite, Some(77), at);
        let all = GROUPABLE.to_vec();
        assert_eq!(group_key(&fav, &all), "favourite-77-24");
        assert_eq!(
            group_key(&n(11, NotificationKind::Follow, None, at), &all),
            "follow-24"
        );
        assert_eq!(
            group_key(&n(12, NotificationKind::Mention, Some(77), at), &all),
            "ungrouped-12"
        );
        assert_eq!(
            group_key(&fav, &[NotificationKind::Reblog]),
            "ungrouped-10",
            "only grouped_types group"
        );
        let Some(KeySel::Group { kind, post, window }) = parse_key("favourite-77-24") else {
            panic!("parses")
        };
        assert_eq!((kind, post), (NotificationKind::Favourite, Some(Id(77))));
        let id_at = |ms: u64| Id(ms << 16);
        assert!(window.above < Some(id_at(24 * HOUR_MS)));
        assert_eq!(window.below, Some(id_at(36 * HOUR_MS)));
        assert!(parse_key("favourite-77-25").is_none(), "not a window start");
        assert!(parse_key("follow-77-24").is_none());
        assert!(parse_key("mention-77-24").is_none());
        assert!(parse_key("nonsense").is_none());
        assert!(matches!(parse_key("ungrouped-5"), Some(KeySel::One(Id(5)))));
    }
}
