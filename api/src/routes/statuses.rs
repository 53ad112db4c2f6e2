//! Statuses: create (with `Idempotency-Key`), show, delete.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use starling_schema::events::Event;
use starling_schema::model::{NewPost, Visibility};
use starling_store::Store;

use super::{json, path_id};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, MaybeAuth, flex_bool, one_or_many};
use crate::{Api, hydrate, text};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/statuses", web::post().to(create))
        .route("/api/v1/statuses/{id}", web::get().to(show))
        .route("/api/v1/statuses/{id}", web::delete().to(delete));
}

#[derive(Deserialize)]
struct NewStatus {
    status: Option<String>,
    in_reply_to_id: Option<String>,
    #[serde(default, deserialize_with = "flex_bool")]
    sensitive: Option<bool>,
    spoiler_text: Option<String>,
    visibility: Option<String>,
    language: Option<String>,
    #[serde(
        rename = "media_ids[]",
        alias = "media_ids",
        default,
        deserialize_with = "one_or_many"
    )]
    media_ids: Vec<String>,
    poll: Option<serde_json::Value>,
    scheduled_at: Option<String>,
}

async fn create(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Body(form): Body<NewStatus>,
) -> ApiResult<HttpResponse> {
    if !form.media_ids.is_empty() {
        return Err(ApiError::invalid(
            "Validation failed: media attachments are not supported by this server",
        ));
    }
    if form.poll.as_ref().is_some_and(|p| !p.is_null()) {
        return Err(ApiError::invalid(
            "Validation failed: polls are not supported by this server",
        ));
    }
    if form.scheduled_at.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid(
            "Validation failed: scheduled posts are not supported by this server",
        ));
    }
    let visibility = match form.visibility.as_deref().filter(|v| !v.is_empty()) {
        None => Visibility::Public,
        Some(v) => Visibility::parse(v).ok_or_else(|| {
            ApiError::invalid(format!("Validation failed: unknown visibility {v:?}"))
        })?,
    };
    let in_reply_to_id = match form.in_reply_to_id.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(raw) => {
            let id = raw.parse().map_err(|_| ApiError::not_found("Record"))?;
            // Replying needs the parent to be visible to you.
            let parent = api
                .posts_by_ids(&[id])
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::not_found("Record"))?;
            if !hydrate::can_see(&api, Some(auth.account.id), &parent).await? {
                return Err(ApiError::not_found("Record"));
            }
            Some(id)
        }
    };
    let body = form.status.unwrap_or_default();
    let names = text::mentions(&body);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut mentions: Vec<_> = if name_refs.is_empty() {
        Vec::new()
    } else {
        api.store
            .accounts_by_usernames(&name_refs)
            .await?
            .into_iter()
            .map(|a| a.id)
            .collect()
    };
    mentions.dedup();
    mentions.retain(|id| *id != auth.account.id);
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let created = api
        .store
        .create_post(
            NewPost {
                author_id: auth.account.id,
                hashtags: text::hashtags(&body),
                text: body,
                spoiler_text: form.spoiler_text.unwrap_or_default(),
                sensitive: form.sensitive.unwrap_or(false),
                visibility,
                in_reply_to_id,
                reblog_of: None,
                mentions,
                language: form.language.filter(|l| !l.is_empty()),
            },
            key.as_deref(),
        )
        .await?;
    // Published on a replay too: the first attempt may have died before its event left.
    api.publish(Event::PostCreated {
        post: created.value.clone(),
    })
    .await?;
    let post = Arc::new(created.value);
    let rendered = hydrate::statuses(&api, Some(auth.account.id), &[post]).await?;
    let status = rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(json(&status))
}

async fn show(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    let viewer = viewer.0.map(|a| a.account.id);
    let post = api
        .posts_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if !hydrate::can_see(&api, viewer, &post).await? {
        return Err(ApiError::not_found("Record"));
    }
    let rendered = hydrate::statuses(&api, viewer, &[post]).await?;
    Ok(json(
        &rendered
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::not_found("Record"))?,
    ))
}

async fn delete(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = path_id(&path)?;
    let post = api
        .store
        .posts_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if post.author_id != auth.account.id {
        return if hydrate::can_see(&api, Some(auth.account.id), &post).await? {
            Err(ApiError::forbidden("This action is not allowed"))
        } else {
            Err(ApiError::not_found("Record"))
        };
    }
    // Render before deleting: the answer is the deleted status, with its source text.
    let post = Arc::new(post);
    let rendered =
        hydrate::statuses(&api, Some(auth.account.id), std::slice::from_ref(&post)).await?;
    let Some(deleted) = api.store.delete_post(id).await? else {
        return Err(ApiError::not_found("Record"));
    };
    api.forget_post(id).await;
    api.publish(Event::PostDeleted {
        post_id: deleted.id,
        author_id: deleted.author_id,
        visibility: deleted.visibility,
        reblog_of: deleted.reblog_of,
        mentions: deleted.mentions.clone(),
    })
    .await?;
    let mut status = rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if let Some(obj) = status.as_object_mut() {
        obj.insert("text".into(), serde_json::Value::String(post.text.clone()));
    }
    Ok(json(&status))
}
