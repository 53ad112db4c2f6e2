//! Direct conversations (issue 13): the viewer's direct posts grouped by who takes part,
//! newest first, paged by the id of each one's newest post (Mastodon pages them by
//! `last_status_id`); marking one read; removing one from the viewer's list. Fan-out keeps
//! the views (`fanout/src/conversations.rs`); these routes only read and change the
//! viewer's own. Someone else's conversation is not found.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use starling_schema::Id;
use starling_schema::conversations::Conversation;
use starling_store::Store;

use super::path_id;
use crate::Api;
use crate::entities::Json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query};
use crate::hydrate::{self, Accounts};
use crate::pagination::{PageParams, link_header};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/conversations", web::get().to(index))
        // Mastodon.py asks with a trailing slash.
        .route("/api/v1/conversations/", web::get().to(index))
        .route("/api/v1/conversations/{id}/read", web::post().to(read))
        .route("/api/v1/conversations/{id}", web::delete().to(remove));
}

/// Conversations as Mastodon's entity (`id`, `unread`, `accounts`, `last_status`) for
/// their viewer `me`, in order. `last_status` is what the viewer may see of the newest post
/// (the visibility policy, through `hydrate::filter_for`), or null.
pub(crate) async fn render(api: &Api, me: Id, items: &[Conversation]) -> ApiResult<Vec<Json>> {
    let last: Vec<Id> = items.iter().map(|c| c.last_status_id).collect();
    let posts = api.posts_by_ids(&last).await?;
    let posts = hydrate::filter_for(api, Some(me), posts).await?;
    let statuses: HashMap<Id, Json> = hydrate::statuses_by_id(api, Some(me), &posts)
        .await?
        .into_iter()
        .collect();
    let others: Vec<Id> = items.iter().flat_map(Conversation::others).collect();
    let accounts = Accounts::load(api, &others).await?;
    let null = Json::null();
    Ok(items
        .iter()
        .map(|c| {
            let people: Vec<Json> = c
                .others()
                .into_iter()
                .filter_map(|a| accounts.json(a))
                .collect();
            let head = Json::of(&serde_json::json!({
                "id": c.id.to_string(),
                "unread": c.unread,
            }));
            head.with_member("accounts", &Json::array(&people))
                .with_member(
                    "last_status",
                    statuses.get(&c.last_status_id).unwrap_or(&null),
                )
        })
        .collect())
}

async fn index(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let cursor = page.cursor()?;
    let mut items = api.store.conversations(me, cursor.window).await?.items;
    if cursor.reverse {
        items.reverse();
    }
    let body = render(&api, me, &items).await?;
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (items.first(), items.last()) {
        res.insert_header((
            header::LINK,
            link_header(&req, newest.last_status_id, oldest.last_status_id),
        ));
    }
    Ok(Json::respond(&mut res, Json::array(&body)))
}

async fn read(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let id = path_id(&path)?;
    let Some(conversation) = api.store.read_conversation(me, id).await? else {
        return Err(ApiError::not_found("Record"));
    };
    let mut body = render(&api, me, std::slice::from_ref(&conversation)).await?;
    Ok(body.pop().unwrap_or_else(Json::null).response())
}

async fn remove(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    if !api.store.remove_conversation(me, path_id(&path)?).await? {
        return Err(ApiError::not_found("Record"));
    }
    Ok(Json::object([]).response())
}
