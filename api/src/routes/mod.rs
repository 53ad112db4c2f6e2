//! The routes, grouped as Mastodon's documentation groups them.

use actix_web::{HttpResponse, web};
use starling_schema::Id;

use crate::error::{ApiError, ApiResult};

mod accounts;
pub(crate) mod conversations;
pub(crate) mod discovery;
pub(crate) mod explore;
mod filters;
mod instance;
mod kept;
mod lists;
mod media;
pub(crate) mod notifications;
mod notifications_v2;
pub(crate) mod oauth;
mod ops;
mod polls;
mod profile;
mod profile_images;
mod push;
mod search;
mod startup;
mod statuses;
mod tags;
mod timelines;

pub fn configure(cfg: &mut web::ServiceConfig) {
    instance::configure(cfg);
    oauth::configure(cfg);
    discovery::configure(cfg);
    // Before `accounts`: `update_credentials` is not an account id.
    profile::configure(cfg);
    search::configure_accounts(cfg);
    accounts::configure(cfg);
    statuses::configure(cfg);
    polls::configure(cfg);
    media::configure(cfg);
    profile_images::configure(cfg);
    timelines::configure(cfg);
    ops::configure(cfg);
    search::configure(cfg);
    // Lists, bookmarks, favourites and pins (issue 13).
    lists::configure(cfg);
    kept::configure(cfg);
    tags::configure(cfg);
    conversations::configure(cfg);
    // Trends and who to follow (issue 13).
    explore::configure(cfg);
    // Start-up endpoints (issue 11): preferences, custom emojis, announcements, markers,
    // filters, grouped notifications and unread counts. Before `notifications` so that
    // `/api/v1/notifications/unread_count` is not taken for a notification id.
    startup::configure(cfg);
    filters::configure(cfg);
    notifications_v2::configure(cfg);
    notifications::configure(cfg);
    push::configure(cfg);
    crate::streaming::configure(cfg);
    crate::openapi::configure(cfg);
}

pub async fn not_found() -> ApiResult<HttpResponse> {
    Err(ApiError::not_found("Record"))
}

/// A path id; anything that is not one names no record.
fn path_id(raw: &str) -> ApiResult<Id> {
    raw.parse().map_err(|_| ApiError::not_found("Record"))
}

fn json<T: serde::Serialize>(value: &T) -> HttpResponse {
    HttpResponse::Ok().json(value)
}
