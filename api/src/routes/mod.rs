//! The routes, grouped as Mastodon's documentation groups them.

use actix_web::{HttpResponse, web};
use starling_schema::Id;

use crate::error::{ApiError, ApiResult};

mod accounts;
pub(crate) mod discovery;
mod instance;
pub(crate) mod notifications;
pub(crate) mod oauth;
mod ops;
mod search;
mod statuses;
mod timelines;

pub fn configure(cfg: &mut web::ServiceConfig) {
    instance::configure(cfg);
    oauth::configure(cfg);
    discovery::configure(cfg);
    accounts::configure(cfg);
    statuses::configure(cfg);
    timelines::configure(cfg);
    ops::configure(cfg);
    search::configure(cfg);
    notifications::configure(cfg);
    crate::streaming::configure(cfg);
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
