//! Lists (issue 13): CRUD, members, and which of the viewer's lists hold an account. A
//! list's timeline is read in `timelines.rs`; fan-out feeds it. A change of members or
//! settings forgets the list's Redis feed (and the owner's home, where an exclusive list
//! moves posts between them), so the next read rebuilds it from the store.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use starling_schema::Id;
use starling_schema::feeds::{List, ListDraft, RepliesPolicy};
use starling_store::{MAX_BATCH, Store};
use starling_timeline::Feed;

use super::path_id;
use crate::Api;
use crate::entities::{self, Json};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, Query, flex_bool, one_or_many};
use crate::pagination::PageParams;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/lists", web::get().to(index))
        .route("/api/v1/lists", web::post().to(create))
        .route("/api/v1/lists/{id}", web::get().to(show))
        .route("/api/v1/lists/{id}", web::put().to(update))
        .route("/api/v1/lists/{id}", web::delete().to(delete))
        .route("/api/v1/lists/{id}/accounts", web::get().to(members))
        .route("/api/v1/lists/{id}/accounts", web::post().to(add_members))
        .route(
            "/api/v1/lists/{id}/accounts",
            web::delete().to(remove_members),
        )
        .route("/api/v1/accounts/{id}/lists", web::get().to(holding));
}

#[derive(Deserialize)]
struct ListForm {
    title: Option<String>,
    replies_policy: Option<String>,
    #[serde(default, deserialize_with = "flex_bool")]
    exclusive: Option<bool>,
}

impl ListForm {
    /// The draft this form makes, over `old` (an update changes only what it names).
    fn draft(self, old: Option<&List>) -> ApiResult<ListDraft> {
        let replies_policy = match self.replies_policy.as_deref().map(str::trim) {
            None | Some("") => old.map_or(RepliesPolicy::default(), |l| l.replies_policy),
            Some(p) => RepliesPolicy::parse(p).ok_or_else(|| {
                ApiError::invalid("replies_policy must be followed, list or none")
            })?,
        };
        let title = match (self.title, old) {
            (Some(t), _) => t,
            (None, Some(l)) => l.title.clone(),
            (None, None) => {
                return Err(ApiError::invalid("Validation failed: Title can't be blank"));
            }
        };
        let draft = ListDraft {
            title,
            replies_policy,
            exclusive: self.exclusive.unwrap_or(old.is_some_and(|l| l.exclusive)),
        };
        draft.validate()?;
        Ok(draft)
    }
}

/// `owner`'s list `id`, or 404 (someone else's list is not found either).
pub(super) async fn owned(api: &Api, owner: Id, id: Id) -> ApiResult<List> {
    api.store
        .lists_of(owner)
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::not_found("Record"))
}

fn feed_of(list: &List) -> Feed {
    Feed::List {
        owner: list.owner_id,
        list: list.id,
    }
}

/// Forget what a change made stale: the list's feed, and the owner's home when an
/// exclusive list (before or after the change) moves posts between them.
async fn forget(api: &Api, list: &List, home_too: bool) -> ApiResult<()> {
    api.timelines.clear_feed(feed_of(list)).await?;
    if home_too {
        api.timelines.clear(list.owner_id).await?;
    }
    Ok(())
}

async fn index(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    let lists = api.store.lists_of(auth.account.id).await?;
    let body: Vec<Json> = lists.iter().map(entities::list).collect();
    Ok(Json::array(&body).response())
}

async fn create(
    api: web::Data<Api>,
    auth: Auth,
    Body(form): Body<ListForm>,
) -> ApiResult<HttpResponse> {
    let draft = form.draft(None)?;
    let list = api.store.create_list(auth.account.id, draft).await?;
    Ok(entities::list(&list).response())
}

async fn show(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    let list = owned(&api, auth.account.id, path_id(&path)?).await?;
    Ok(entities::list(&list).response())
}

async fn update(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Body(form): Body<ListForm>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let old = owned(&api, me, path_id(&path)?).await?;
    let draft = form.draft(Some(&old))?;
    let list = api.store.update_list(me, old.id, draft).await?;
    if list.replies_policy != old.replies_policy || list.exclusive != old.exclusive {
        forget(&api, &list, list.exclusive != old.exclusive).await?;
    }
    Ok(entities::list(&list).response())
}

async fn delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let list = owned(&api, me, path_id(&path)?).await?;
    api.store.delete_list(me, list.id).await?;
    forget(&api, &list, list.exclusive).await?;
    Ok(Json::object([]).response())
}

async fn members(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let list = owned(&api, auth.account.id, path_id(&path)?).await?;
    let cursor = page.cursor_with(40, 80)?;
    let ids = api.store.list_members(list.id, cursor.window).await?.items;
    super::accounts::account_list(req, &api, ids, cursor.reverse).await
}

#[derive(Deserialize, Default)]
struct MembersForm {
    #[serde(
        rename = "account_ids[]",
        alias = "account_ids",
        default,
        deserialize_with = "one_or_many"
    )]
    account_ids: Vec<String>,
}

impl MembersForm {
    /// The accounts named, each existing (404 otherwise, as Mastodon answers).
    async fn accounts(self, api: &Api) -> ApiResult<Vec<Id>> {
        if self.account_ids.is_empty() {
            return Err(ApiError::invalid("account_ids is missing"));
        }
        if self.account_ids.len() > MAX_BATCH {
            return Err(ApiError::invalid(format!(
                "at most {MAX_BATCH} account_ids at once"
            )));
        }
        let mut ids = self
            .account_ids
            .iter()
            .map(|s| path_id(s.trim()))
            .collect::<ApiResult<Vec<Id>>>()?;
        ids.sort_unstable();
        ids.dedup();
        if api.store.accounts_by_ids(&ids).await?.len() != ids.len() {
            return Err(ApiError::not_found("Record"));
        }
        Ok(ids)
    }
}

async fn add_members(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Body(form): Body<MembersForm>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let list = owned(&api, me, path_id(&path)?).await?;
    let ids = form.accounts(&api).await?;
    api.store
        .add_list_members(me, list.id, &ids)
        .await
        .map_err(|e| match e.kind() {
            // Mastodon's words for a member the owner does not follow.
            starling_schema::ErrorKind::Invalid => ApiError::invalid(format!(
                "Validation failed: Account has not been followed ({e})"
            )),
            _ => e.into(),
        })?;
    forget(&api, &list, list.exclusive).await?;
    Ok(Json::object([]).response())
}

async fn remove_members(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    body: Option<Body<MembersForm>>,
    Query(query): Query<MembersForm>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let list = owned(&api, me, path_id(&path)?).await?;
    // Clients send the ids in the body or (for a DELETE) in the query string.
    let form = match body {
        Some(Body(form)) if !form.account_ids.is_empty() => form,
        _ => query,
    };
    let ids = form.accounts(&api).await?;
    api.store.remove_list_members(me, list.id, &ids).await?;
    forget(&api, &list, list.exclusive).await?;
    Ok(Json::object([]).response())
}

/// The viewer's lists that hold account `id`.
async fn holding(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let member = path_id(&path)?;
    let refs = api
        .store
        .lists_with_member(member, Some(Id(me.0.saturating_sub(1))), Some(me))
        .await?;
    let lists = api.store.lists_of(me).await?;
    let body: Vec<Json> = lists
        .iter()
        .filter(|l| refs.iter().any(|r| r.list_id == l.id))
        .map(entities::list)
        .collect();
    Ok(Json::array(&body).response())
}
