//! Statuses: create (with `Idempotency-Key`), show, delete; favourite, reblog and their
//! undoing; the conversation around a status; who favourited or reblogged it.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::model::{NewPost, Post, Visibility, Window};
use starling_schema::polls::{NewPoll, PostEdit};
use starling_store::Store;

use super::path_id;
use crate::entities::Json;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Body, MaybeAuth, Query, flex_bool, one_or_many};
use crate::pagination::PageParams;
use crate::{Api, hydrate, text};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/statuses", web::post().to(create))
        .route("/api/v1/statuses/{id}", web::get().to(show))
        .route("/api/v1/statuses/{id}", web::delete().to(delete))
        .route("/api/v1/statuses/{id}", web::put().to(update))
        .route("/api/v1/statuses/{id}/history", web::get().to(history))
        .route("/api/v1/statuses/{id}/source", web::get().to(source))
        .route("/api/v1/statuses/{id}/context", web::get().to(context))
        .route("/api/v1/statuses/{id}/favourite", web::post().to(favourite))
        .route(
            "/api/v1/statuses/{id}/unfavourite",
            web::post().to(unfavourite),
        )
        .route("/api/v1/statuses/{id}/reblog", web::post().to(reblog))
        .route("/api/v1/statuses/{id}/unreblog", web::post().to(unreblog))
        .route("/api/v1/statuses/{id}/mute", web::post().to(mute))
        .route("/api/v1/statuses/{id}/unmute", web::post().to(unmute))
        .route(
            "/api/v1/statuses/{id}/favourited_by",
            web::get().to(favourited_by),
        )
        .route(
            "/api/v1/statuses/{id}/reblogged_by",
            web::get().to(reblogged_by),
        );
}

/// Most ancestors and descendants a context answers with (Mastodon: 40 and 60 for
/// anonymous viewers).
const MAX_ANCESTORS: usize = 40;
const MAX_DESCENDANTS: usize = 200;

/// The post `id` if `viewer` may see it, or 404.
async fn visible_post(api: &Api, viewer: Option<Id>, id: Id) -> ApiResult<Arc<Post>> {
    let post = api
        .posts_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if hydrate::can_see(api, viewer, &post).await? {
        Ok(post)
    } else {
        Err(ApiError::not_found("Record"))
    }
}

/// The post an action on `id` applies to: the original when `id` is a reblog wrapper.
pub(super) async fn action_target(api: &Api, viewer: Id, id: Id) -> ApiResult<Arc<Post>> {
    let post = visible_post(api, Some(viewer), id).await?;
    match post.reblog_of {
        Some(original) => visible_post(api, Some(viewer), original).await,
        None => Ok(post),
    }
}

pub(super) async fn one_status(api: &Api, viewer: Id, post: Arc<Post>) -> ApiResult<HttpResponse> {
    let rendered = hydrate::statuses(api, Some(viewer), &[post]).await?;
    let status = rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(status.response())
}

async fn favourite(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let post = action_target(&api, me, path_id(&path)?).await?;
    if api.store.favourite(me, post.id).await? {
        api.publish(Event::Favourited {
            account_id: me,
            post_id: post.id,
            post_author_id: post.author_id,
        })
        .await?;
    }
    one_status(&api, me, post).await
}

async fn unfavourite(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let post = action_target(&api, me, path_id(&path)?).await?;
    if api.store.unfavourite(me, post.id).await? {
        api.publish(Event::Unfavourited {
            account_id: me,
            post_id: post.id,
            post_author_id: post.author_id,
        })
        .await?;
    }
    one_status(&api, me, post).await
}

async fn reblog(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let original = action_target(&api, me, path_id(&path)?).await?;
    let created = api.store.reblog(me, original.id).await?;
    // Published on a repeat too: the first attempt may have died before its event left;
    // fan-out and notifications apply it once.
    api.publish(Event::Reblogged {
        reblog: created.value.clone(),
        post_author_id: original.author_id,
    })
    .await?;
    one_status(&api, me, Arc::new(created.value)).await
}

async fn unreblog(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let original = action_target(&api, me, path_id(&path)?).await?;
    if let Some(wrapper) = api.store.unreblog(me, original.id).await? {
        api.post_gone(wrapper.id).await;
        api.publish(Event::Unreblogged {
            account_id: me,
            reblog_id: wrapper.id,
            post_id: original.id,
        })
        .await?;
    }
    one_status(&api, me, original).await
}

/// Mute (or unmute) the thread of a status the viewer may see: no notifications from any
/// post of it reach them while it is muted, and its statuses say `muted: true`.
async fn set_thread_muted(api: &Api, me: Id, raw: &str, muted: bool) -> ApiResult<HttpResponse> {
    let post = action_target(api, me, path_id(raw)?).await?;
    let root = hydrate::thread_root(api, &post).await?;
    if muted {
        api.store.mute_conversation(me, root).await?;
    } else {
        api.store.unmute_conversation(me, root).await?;
    }
    one_status(api, me, post).await
}

async fn mute(api: web::Data<Api>, auth: Auth, path: web::Path<String>) -> ApiResult<HttpResponse> {
    set_thread_muted(&api, auth.account.id, &path, true).await
}

async fn unmute(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_thread_muted(&api, auth.account.id, &path, false).await
}

/// `{ancestors, descendants}`: the chain of posts replied to, oldest first, and the replies
/// below, depth first in reply order, each as the viewer may see them.
async fn context(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let post = visible_post(&api, viewer, path_id(&path)?).await?;
    let mut ancestors = Vec::new();
    let mut parent = post.in_reply_to_id;
    while let Some(id) = parent {
        if ancestors.len() >= MAX_ANCESTORS {
            break;
        }
        let Some(p) = api.posts_by_ids(&[id]).await?.into_iter().next() else {
            break;
        };
        parent = p.in_reply_to_id;
        ancestors.push(p);
    }
    ancestors.reverse();
    // Depth first: a stack of replies still to visit, each reply's own replies next.
    let mut descendants = Vec::new();
    let mut stack = vec![post.id];
    let mut seen = std::collections::HashSet::new();
    while let Some(id) = stack.pop() {
        if descendants.len() >= MAX_DESCENDANTS {
            break;
        }
        if id != post.id {
            descendants.push(id);
        }
        let mut window = Window::oldest(MAX_DESCENDANTS);
        let mut children = Vec::new();
        loop {
            let page = api.store.replies_to(id, window).await?;
            children.extend(page.items);
            match page.next {
                Some(next) if children.len() < MAX_DESCENDANTS => window = next,
                _ => break,
            }
        }
        // Oldest reply visited first.
        stack.extend(children.into_iter().rev().filter(|c| seen.insert(*c)));
    }
    let descendants = api.posts_by_ids(&descendants).await?;
    let ancestors = hydrate::filter_for(&api, viewer, ancestors).await?;
    let descendants = hydrate::filter_for(&api, viewer, descendants).await?;
    // Filter hook (issue 11): the viewer's `thread` filters hide or mark statuses.
    let mut both = ancestors.clone();
    both.extend(descendants.iter().cloned());
    let ctx = starling_schema::startup::FilterContext::Thread;
    let verdicts = crate::filters::judge(&api, viewer, ctx, &both).await?;
    let (ancestors, descendants) = (verdicts.keep(ancestors), verdicts.keep(descendants));
    let mut ancestors = hydrate::statuses(&api, viewer, &ancestors).await?;
    let mut descendants = hydrate::statuses(&api, viewer, &descendants).await?;
    verdicts.mark(&mut ancestors);
    verdicts.mark(&mut descendants);
    let (ancestors, descendants) = (Json::array(&ancestors), Json::array(&descendants));
    Ok(Json::object([("ancestors", &ancestors), ("descendants", &descendants)]).response())
}

async fn favourited_by(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let post = visible_post(&api, viewer, path_id(&path)?).await?;
    let cursor = page.cursor_with(40, 80)?;
    let ids = api.store.favourited_by(post.id, cursor.window).await?.items;
    super::accounts::account_list(req, &api, ids, cursor.reverse).await
}

async fn reblogged_by(
    req: HttpRequest,
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let post = visible_post(&api, viewer, path_id(&path)?).await?;
    let cursor = page.cursor_with(40, 80)?;
    let ids = api.store.reblogged_by(post.id, cursor.window).await?.items;
    super::accounts::account_list(req, &api, ids, cursor.reverse).await
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
    #[serde(
        rename = "poll[options][]",
        alias = "poll[options]",
        default,
        deserialize_with = "one_or_many"
    )]
    poll_options: Vec<String>,
    #[serde(rename = "poll[expires_in]", default, deserialize_with = "one_or_many")]
    poll_expires_in: Vec<String>,
    #[serde(rename = "poll[multiple]", default, deserialize_with = "flex_bool")]
    poll_multiple: Option<bool>,
    #[serde(rename = "poll[hide_totals]", default, deserialize_with = "flex_bool")]
    poll_hide_totals: Option<bool>,
    scheduled_at: Option<String>,
}

/// Most poll options read from a request before the poll is checked against the limits.
const MAX_POLL_OPTIONS_READ: usize = 64;

/// The poll of a create or edit request, from `poll[...]` form fields or a JSON `poll`
/// object; shape and limits are checked by `starling_schema::polls::validate_new_poll`.
fn new_poll(form: &NewStatus) -> ApiResult<Option<NewPoll>> {
    let bad = |what: &str| ApiError::invalid(format!("Validation failed: Poll {what}"));
    let flag = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::String(s) => match s.as_str() {
            "1" | "true" | "True" | "on" => Some(true),
            "0" | "false" | "False" | "off" | "" => Some(false),
            _ => None,
        },
        serde_json::Value::Number(n) => n.as_u64().map(|n| n != 0),
        serde_json::Value::Null => Some(false),
        _ => None,
    };
    let secs = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map_err(|_| bad("expires_in is not a number"))
    };
    let (options, expires_in, multiple, hide_totals) = match &form.poll {
        Some(serde_json::Value::Object(p)) => {
            let options = match p.get("options") {
                Some(serde_json::Value::Array(items)) => {
                    if items.len() > MAX_POLL_OPTIONS_READ {
                        return Err(bad("has too many options"));
                    }
                    items
                        .iter()
                        .map(|o| match o {
                            serde_json::Value::String(s) => Ok(s.clone()),
                            _ => Err(bad("options must be text")),
                        })
                        .collect::<ApiResult<Vec<String>>>()?
                }
                _ => return Err(bad("options can't be blank")),
            };
            let expires_in = match p.get("expires_in") {
                Some(serde_json::Value::Number(n)) => n
                    .as_u64()
                    .ok_or_else(|| bad("expires_in is not a number"))?,
                Some(serde_json::Value::String(v)) => secs(v)?,
                _ => return Err(bad("expires_in can't be blank")),
            };
            let get = |k: &str| p.get(k).map_or(Some(false), flag);
            let multiple = get("multiple").ok_or_else(|| bad("multiple is not a boolean"))?;
            let hide = get("hide_totals").ok_or_else(|| bad("hide_totals is not a boolean"))?;
            (options, expires_in, multiple, hide)
        }
        Some(serde_json::Value::Null) | None if form.poll_options.is_empty() => return Ok(None),
        Some(serde_json::Value::Null) | None => {
            if form.poll_options.len() > MAX_POLL_OPTIONS_READ {
                return Err(bad("has too many options"));
            }
            let expires_in = match form.poll_expires_in.first() {
                Some(v) => secs(v)?,
                None => return Err(bad("expires_in can't be blank")),
            };
            (
                form.poll_options.clone(),
                expires_in,
                form.poll_multiple.unwrap_or(false),
                form.poll_hide_totals.unwrap_or(false),
            )
        }
        Some(_) => return Err(bad("must be an object")),
    };
    Ok(Some(NewPoll {
        options,
        expires_in_secs: expires_in,
        multiple,
        hide_totals,
    }))
}

/// Accounts the text mentions that exist, without the author.
async fn resolve_mentions(api: &Api, me: Id, body: &str) -> ApiResult<Vec<Id>> {
    let names = text::mentions(body);
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
    mentions.retain(|id| *id != me);
    Ok(mentions)
}

/// Every text field within its limit before anything reads the text (mentions, hashtags,
/// lookups): a megabyte of `@a @b ...` is refused in the time it takes to count it.
fn bound_fields(api: &Api, form: &NewStatus) -> ApiResult<()> {
    let max = api.settings.limits.max_post_chars;
    let status = form.status.as_deref().unwrap_or("");
    let spoiler = form.spoiler_text.as_deref().unwrap_or("");
    // A char is at most 4 bytes: far over in bytes is over without counting.
    let chars = if status.len() + spoiler.len() > max.saturating_mul(4) {
        status.len() + spoiler.len()
    } else {
        status.chars().count() + spoiler.chars().count()
    };
    if chars > max {
        return Err(ApiError::invalid(format!(
            "Validation failed: Text is too long (at most {max} characters)"
        )));
    }
    let max_option_bytes = api.settings.limits.poll_max_option_chars.saturating_mul(4);
    if form.poll_options.len() > MAX_POLL_OPTIONS_READ
        || form.poll_options.iter().any(|o| o.len() > max_option_bytes)
        || form.poll_expires_in.iter().any(|e| e.len() > 32)
    {
        return Err(ApiError::invalid(
            "Validation failed: Poll options are too many or too long",
        ));
    }
    let short = |v: &Option<String>, most: usize| v.as_ref().is_none_or(|v| v.len() <= most);
    if !short(&form.in_reply_to_id, 32)
        || !short(&form.visibility, 16)
        || !short(&form.language, 16)
        || !short(&form.scheduled_at, 64)
        || form.media_ids.len() > 16
        || form.media_ids.iter().any(|m| m.len() > 32)
    {
        return Err(ApiError::invalid(
            "Validation failed: a field is longer than any valid value",
        ));
    }
    Ok(())
}

fn media_refused(e: starling_store::StoreError) -> ApiError {
    match e.kind() {
        starling_schema::ErrorKind::NotFound
        | starling_schema::ErrorKind::Forbidden
        | starling_schema::ErrorKind::Conflict
        | starling_schema::ErrorKind::Invalid => {
            ApiError::invalid(format!("Validation failed: {e}"))
        }
        _ => e.into(),
    }
}

/// `media_ids[]` as ids: at most four, each the author's own processed upload not attached
/// to another post (checked again, all or none, when attaching). `post`: the post being
/// edited, whose own attachments may stay; `None` for a new post.
async fn media_ids(api: &Api, me: Id, post: Option<Id>, raw: &[String]) -> ApiResult<Vec<Id>> {
    let mut ids = Vec::with_capacity(raw.len());
    for r in raw.iter().filter(|r| !r.is_empty()) {
        ids.push(r.parse::<Id>().map_err(|_| {
            ApiError::invalid(format!("Validation failed: media id {r:?} not found"))
        })?);
    }
    let ids = starling_schema::media::media_ids(&ids)?;
    let found = api.store.media_by_ids(&ids).await?;
    for id in &ids {
        let m = found.iter().find(|m| m.id == *id);
        // For a new post, the post an upload may already be on is checked when attaching
        // (a retried request attaches again to its own post).
        let on = post.unwrap_or_else(|| m.and_then(|m| m.post_id).unwrap_or(Id(0)));
        starling_schema::media::check_attach(m, me, on).map_err(|refusal| {
            ApiError::invalid(format!("Validation failed: media {id}: {refusal}"))
        })?;
    }
    Ok(ids)
}

/// Attach uploads to a post just created; if they cannot be (another post took one
/// meanwhile), the post is taken back and the refusal answered.
async fn attach(
    api: &Api,
    me: Id,
    created: &starling_schema::model::Created<Post>,
    ids: &[Id],
) -> ApiResult<()> {
    match api.store.attach_media(me, created.value.id, ids).await {
        Ok(_) => Ok(()),
        Err(e) => {
            if created.created {
                api.store.delete_post(created.value.id).await?;
            }
            Err(media_refused(e))
        }
    }
}

async fn create(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Body(form): Body<NewStatus>,
) -> ApiResult<HttpResponse> {
    bound_fields(&api, &form)?;
    let media_ids = media_ids(&api, auth.account.id, None, &form.media_ids).await?;
    let poll = new_poll(&form)?;
    if form.scheduled_at.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid(
            "Validation failed: scheduled posts are not supported by this server",
        ));
    }
    // What the client leaves out, the author's post defaults (`source` of the profile) fill.
    let defaults = &auth.account.profile;
    let visibility = match form.visibility.as_deref().filter(|v| !v.is_empty()) {
        None => defaults.privacy,
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
    let mentions = resolve_mentions(&api, auth.account.id, &body).await?;
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
                sensitive: form.sensitive.unwrap_or(defaults.sensitive),
                visibility,
                in_reply_to_id,
                reblog_of: None,
                mentions,
                language: form
                    .language
                    .filter(|l| !l.is_empty())
                    .or_else(|| defaults.language.clone()),
                media_ids: media_ids.clone(),
                poll,
            },
            key.as_deref(),
        )
        .await?;
    if !media_ids.is_empty() {
        attach(&api, auth.account.id, &created, &media_ids).await?;
    }
    // A replay of a post deleted since is not published again (it would reappear in
    // timelines and streams): it is gone, as a read of it would say.
    if !created.created
        && api
            .store
            .posts_by_ids(&[created.value.id])
            .await?
            .is_empty()
    {
        return Err(ApiError::not_found("Record"));
    }
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
    Ok(status.response())
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
    Ok(rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?
        .response())
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
    api.post_gone(id).await;
    api.publish(Event::PostDeleted {
        post_id: deleted.id,
        author_id: deleted.author_id,
        visibility: deleted.visibility,
        reblog_of: deleted.reblog_of,
        mentions: deleted.mentions.clone(),
    })
    .await?;
    let status = rendered
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    Ok(status.with_member("text", &Json::of(&post.text)).response())
}

/// `PUT /api/v1/statuses/:id`: the author replaces the text, content warning, sensitivity,
/// language, attachments and poll of a post (what is left out is cleared, as on Mastodon).
/// Someone else's post is not found; a reblog cannot be edited (403).
async fn update(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
    Body(form): Body<NewStatus>,
) -> ApiResult<HttpResponse> {
    bound_fields(&api, &form)?;
    let me = auth.account.id;
    let id = path_id(&path)?;
    let post = api
        .store
        .posts_by_ids(&[id])
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("Record"))?;
    if post.author_id != me {
        return Err(ApiError::not_found("Record"));
    }
    if post.reblog_of.is_some() {
        return Err(ApiError::forbidden("A reblog cannot be edited"));
    }
    let media_ids = media_ids(&api, me, Some(id), &form.media_ids).await?;
    let poll = new_poll(&form)?;
    let body = form.status.unwrap_or_default();
    let mentions = resolve_mentions(&api, me, &body).await?;
    let edit = PostEdit {
        hashtags: text::hashtags(&body),
        text: body,
        spoiler_text: form.spoiler_text.unwrap_or_default(),
        sensitive: form.sensitive.unwrap_or(false),
        language: form
            .language
            .filter(|l| !l.is_empty())
            .or_else(|| post.language.clone()),
        mentions,
        media_ids,
        poll,
    };
    let updated = api
        .store
        .update_post(me, id, edit)
        .await
        .map_err(|e| match e.kind() {
            // An upload refused while attaching reads as the create path's refusal.
            starling_schema::ErrorKind::Conflict => media_refused(e),
            _ => e.into(),
        })?;
    // Every node renders it afresh from now on, this one first.
    api.post_gone(id).await;
    api.publish(Event::PostUpdated {
        post: updated.clone(),
    })
    .await?;
    one_status(&api, me, Arc::new(updated)).await
}

/// `GET /api/v1/statuses/:id/history`: every version of a status the viewer may see,
/// oldest first, the current one last (Mastodon's `StatusEdit`s).
async fn history(
    api: web::Data<Api>,
    viewer: MaybeAuth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let viewer = viewer.0.map(|a| a.account.id);
    let post = visible_post(&api, viewer, path_id(&path)?).await?;
    let versions = api.store.post_versions(post.id).await?;
    let mut account_ids: Vec<Id> = versions
        .iter()
        .flat_map(|v| v.mentions.iter().copied())
        .chain(std::iter::once(post.author_id))
        .collect();
    account_ids.sort_unstable();
    account_ids.dedup();
    let accounts = api.accounts_by_ids(&account_ids).await?;
    let loaded = hydrate::Accounts::load(&api, &[post.author_id]).await?;
    let author = loaded
        .json(post.author_id)
        .ok_or_else(|| ApiError::not_found("Record"))?;
    let mut media_ids: Vec<Id> = versions
        .iter()
        .flat_map(|v| v.media_ids.iter().copied())
        .collect();
    media_ids.sort_unstable();
    media_ids.dedup();
    let media = api.store.media_by_ids(&media_ids).await?;
    let out: Vec<Json> = versions
        .iter()
        .map(|v| {
            let mentioned: Vec<&starling_schema::model::Account> = v
                .mentions
                .iter()
                .filter_map(|m| accounts.iter().find(|a| a.id == *m).map(|a| a.as_ref()))
                .collect();
            let attached: Vec<&starling_schema::media::MediaAttachment> = v
                .media_ids
                .iter()
                .filter_map(|m| media.iter().find(|x| x.id == *m))
                .collect();
            crate::entities::status_edit(
                v,
                &author,
                &mentioned,
                &attached,
                api.base_url(),
                &api.media_base,
            )
        })
        .collect();
    Ok(Json::array(&out).response())
}

/// `GET /api/v1/statuses/:id/source`: the text of a status as written (to edit it).
async fn source(
    api: web::Data<Api>,
    auth: Auth,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let post = visible_post(&api, Some(me), path_id(&path)?).await?;
    Ok(crate::entities::status_source(&post).response())
}
