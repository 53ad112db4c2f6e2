use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::Api;
use crate::error::ApiResult;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/instance", web::get().to(v1))
        .route("/api/v1/instance/", web::get().to(v1))
        .route("/api/v2/instance", web::get().to(v2))
        .route("/api/v2/instance/", web::get().to(v2));
}

fn version() -> String {
    format!("4.3.0 (compatible; Starling {})", env!("CARGO_PKG_VERSION"))
}

fn streaming_url(api: &Api) -> String {
    let base = api.base_url();
    match base.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => base.to_owned(),
    }
}

fn statuses_config(api: &Api) -> serde_json::Value {
    json!({
        "max_characters": api.settings.limits.max_post_chars,
        "max_media_attachments": starling_schema::media::MAX_ATTACHMENTS,
        "characters_reserved_per_url": 23,
    })
}

/// What uploads are accepted: types (sniffed from the bytes) and sizes from `media.*`.
fn media_config(api: &Api) -> serde_json::Value {
    use starling_schema::media::{
        ACCEPTED_TYPES, MAX_DESCRIPTION_CHARS, ORIGINAL_MAX_PIXELS, PREVIEW_MAX_PIXELS,
    };
    let types: Vec<&str> = ACCEPTED_TYPES.iter().map(|(t, _)| *t).collect();
    json!({
        "supported_mime_types": types,
        "description_limit": MAX_DESCRIPTION_CHARS,
        "image_size_limit": api.settings.media.image_max_bytes,
        "image_matrix_limit": ORIGINAL_MAX_PIXELS,
        "video_size_limit": api.settings.media.video_max_bytes,
        "video_frame_rate_limit": 120,
        "video_matrix_limit": ORIGINAL_MAX_PIXELS,
        "preview_matrix_limit": PREVIEW_MAX_PIXELS,
    })
}

async fn v1(api: web::Data<Api>) -> ApiResult<HttpResponse> {
    let s = &api.settings.api;
    // The same counts nodeinfo reports (recounted at most every 10 minutes); every account
    // is local, so there are no other domains.
    let (users, posts) = api.usage.get(&api).await?;
    Ok(HttpResponse::Ok().json(json!({
        "uri": s.domain,
        "title": s.title,
        "short_description": s.description,
        "description": s.description,
        "email": "",
        "version": version(),
        "urls": { "streaming_api": streaming_url(&api) },
        "thumbnail": format!("{}/thumbnail.png", api.base_url()),
        "languages": ["en"],
        "stats": { "user_count": users, "status_count": posts, "domain_count": 0 },
        "registrations": s.registrations,
        "approval_required": false,
        "invites_enabled": false,
        "configuration": {
            "accounts": { "max_featured_tags": 0 },
            "statuses": statuses_config(&api),
            "media_attachments": media_config(&api),
            "polls": polls_config(&api),
        },
        "contact_account": null,
        "rules": [],
    })))
}

/// `configuration.polls`: the limits `starling_schema::polls::validate_new_poll` applies.
fn polls_config(api: &Api) -> serde_json::Value {
    let l = &api.settings.limits;
    json!({
        "max_options": l.poll_max_options,
        "max_characters_per_option": l.poll_max_option_chars,
        "min_expiration": l.poll_min_expiration_secs,
        "max_expiration": l.poll_max_expiration_secs,
    })
}

async fn v2(api: web::Data<Api>) -> HttpResponse {
    let s = &api.settings.api;
    // Web Push: the server's VAPID key (null only while the store cannot be read).
    let vapid_key = api.vapid().await.ok().map(|k| k.public_key().to_owned());
    HttpResponse::Ok().json(json!({
        "domain": s.domain,
        "title": s.title,
        "version": version(),
        "source_url": "https://example.invalid/starling",
        "description": s.description,
        "thumbnail": { "url": format!("{}/thumbnail.png", api.base_url()) },
        "languages": ["en"],
        "configuration": {
            "urls": { "streaming": streaming_url(&api) },
            "accounts": { "max_featured_tags": 0, "max_pinned_statuses": 0 },
            "statuses": statuses_config(&api),
            "media_attachments": media_config(&api),
            "polls": polls_config(&api),
            "translation": { "enabled": false },
            "vapid": { "public_key": vapid_key },
        },
        "registrations": { "enabled": s.registrations, "approval_required": false, "message": null },
        "api_versions": { "mastodon": 2 },
        "contact": { "email": "", "account": null },
        "rules": [],
    }))
}
