//! Polls: show one, vote in one. A poll is seen by whoever may see its post; voting is
//! once per account, never in one's own poll nor in one that has ended (422 each, as
//! Mastodon answers).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use starling_schema::Id;
use starling_schema::polls::Poll;
use starling_store::Store;

use super::path_id;
use crate::entities::Json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, MaybeAuth, one_or_many};
use crate::{Api, hydrate};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/polls/{id}", web::get().to(show))
        .route("/api/v1/polls/{id}/votes", web::post().to(vote));
}

/// The poll `id` if `viewer` may see the post it belongs to (and that post still has it).
async fn visible_poll(api: &Api, viewer: Option<Id>, id: Id) -> ApiResult<Poll> {
    let poll = api
        .store
        .polls_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    let post = api
        .posts_by_ids(&[poll.post_id])
        .await?
        .into_iter()
        .next()
        .filter(|p| p.poll_id == Some(poll.id))
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if !hydrate::can_see(api, viewer, &post).await? {
        return Err(ApiError::not_found("Record"));
    }
    Ok(poll)
}

async fn render(api: &Api, viewer: Option<Id>, id: Id) -> ApiResult<Json> {
    hydrate::polls_for(api, viewer, &[id])
        .await?
        .remove(&id)
        .ok_or_else(|| ApiError::not_found("Record"))
}

async fn show(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let poll = visible_poll(&api, viewer, path_id(&path)?).await?;
    Ok(render(&api, viewer, poll.id).await?.response())
}

#[derive(Deserialize)]
struct VoteForm {
    #[serde(
        rename = "choices[]",
        alias = "choices",
        default,
        deserialize_with = "one_or_many"
    )]
    choices: Vec<String>,
}

async fn vote(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Body(form): Body<VoteForm>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let poll = visible_poll(&api, Some(me), path_id(&path)?).await?;
    if form.choices.len() > 64 {
        return Err(ApiError::invalid("Validation failed: too many choices"));
    }
    let choices = form
        .choices
        .iter()
        .map(|c| c.trim().parse::<u32>())
        .collect::<Result<Vec<u32>, _>>()
        .map_err(|_| ApiError::invalid("Validation failed: a choice is not a number"))?;
    // Results are read per request (never cached with the status), so nothing to forget.
    api.store.vote(me, poll.id, &choices).await?;
    Ok(render(&api, Some(me), poll.id).await?.response())
}
