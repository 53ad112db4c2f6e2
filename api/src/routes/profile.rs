//! Avatars and headers (issue 12): the `avatar` and `header` file parts of
//! `PATCH /api/v1/accounts/update_credentials`, and `DELETE /api/v1/profile/avatar` and
//! `/header` (back to the default images).
//!
//! The text fields of `update_credentials` (display name, note, flags, profile fields,
//! source) are not changed here: until they are, a request naming one is refused with a
//! clear 422 rather than half applied.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use starling_media::storage::{MediaStorage, Staged, key, new_token};
use starling_schema::events::Event;
use starling_schema::media::{AVATAR_SIZE, HEADER_SIZE, MediaKind, ProfileImages};
use starling_schema::model::Account;
use starling_store::Store;

use crate::Api;
use crate::entities;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/accounts/update_credentials",
        web::patch().to(update_credentials),
    )
    .route("/api/v1/profile/avatar", web::delete().to(delete_avatar))
    .route("/api/v1/profile/header", web::delete().to(delete_header));
}

/// Longest non-multipart body of `update_credentials` (text fields only).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Which of the profile's images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Avatar,
    Header,
}

impl Slot {
    fn size(self) -> (u32, u32) {
        match self {
            Slot::Avatar => AVATAR_SIZE,
            Slot::Header => HEADER_SIZE,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Slot::Avatar => "avatar",
            Slot::Header => "header",
        }
    }

    fn key_of(self, images: &mut ProfileImages) -> &mut Option<String> {
        match self {
            Slot::Avatar => &mut images.avatar_key,
            Slot::Header => &mut images.header_key,
        }
    }
}

fn unsupported_field(name: &str) -> ApiError {
    ApiError::invalid(format!(
        "Validation failed: {name} cannot be changed by this server yet (avatar and header can)"
    ))
}

async fn update_credentials(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut changes: Vec<(Slot, Staged, &'static str)> = Vec::new();
    if content_type.starts_with("multipart/") {
        let parts =
            super::media::read_multipart(&api, &req, payload, &["avatar", "header"]).await?;
        if let Some((name, _)) = parts.fields.first() {
            return Err(unsupported_field(name));
        }
        for (name, staged, content_type, kind) in parts.files {
            if !matches!(kind, MediaKind::Image | MediaKind::Gifv) {
                return Err(ApiError::invalid(format!(
                    "Validation failed: {name} must be a JPEG, PNG, WebP or GIF picture"
                )));
            }
            let slot = if name == "avatar" {
                Slot::Avatar
            } else {
                Slot::Header
            };
            changes.push((slot, staged, content_type));
        }
    } else {
        // A form or JSON body carries text fields only, none of which is handled here.
        let mut body = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::invalid(format!("Could not read the request body: {e}")))?;
            body.extend_from_slice(&chunk);
            if body.len() > MAX_FORM_BYTES {
                return Err(ApiError::too_large());
            }
        }
        let names: Vec<String> = if content_type.starts_with("application/json") {
            let value: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))?
            };
            value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        } else {
            serde_html_form::from_bytes::<Vec<(String, String)>>(&body)
                .map_err(|e| ApiError::invalid(format!("Invalid request body: {e}")))?
                .into_iter()
                .map(|(k, _)| k)
                .collect()
        };
        if let Some(name) = names.first() {
            return Err(unsupported_field(name));
        }
    }
    for (slot, staged, content_type) in changes {
        save_profile_image(&api, &auth.account, slot, Some((staged, content_type))).await?;
    }
    credential_account(&api, &auth.account).await
}

async fn credential_account(api: &Api, account: &Account) -> ApiResult<HttpResponse> {
    let counts = api.store.account_counts(&[account.id]).await?;
    let counts = counts.first().copied().unwrap_or_default();
    let members = api.account_members(account).await;
    Ok(entities::credential_account(&members, account, &counts).response())
}

async fn delete_avatar(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    save_profile_image(&api, &auth.account, Slot::Avatar, None).await?;
    credential_account(&api, &auth.account).await
}

async fn delete_header(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    save_profile_image(&api, &auth.account, Slot::Header, None).await?;
    credential_account(&api, &auth.account).await
}

/// Set (`Some`: a staged picture and its sniffed type) or clear (`None`) an account's avatar
/// or header: crop and scale it to Mastodon's size (400×400, 1500×500), store it under a
/// fresh key, point the account at it, remove the old file, and tell every node.
pub async fn save_profile_image(
    api: &Api,
    account: &Account,
    slot: Slot,
    picture: Option<(Staged, &'static str)>,
) -> ApiResult<()> {
    let new_key = match picture {
        Some((staged, content_type)) => {
            let bytes = tokio::fs::read(staged.path())
                .await
                .map_err(|e| ApiError::internal("reading a staged picture", &e))?;
            drop(staged);
            let size = slot.size();
            let (image, ext) = tokio::task::spawn_blocking(move || {
                starling_media::process::profile_image(&bytes, content_type, size)
            })
            .await
            .map_err(|e| ApiError::internal("processing a profile picture", &e))??;
            let k = key(&new_token(), &format!("{}.{ext}", slot.name()));
            api.storage.put(&k, image).await?;
            Some(k)
        }
        None => None,
    };
    let mut images = api
        .store
        .profile_images(&[account.id])
        .await?
        .pop()
        .unwrap_or_default();
    *slot.key_of(&mut images) = new_key;
    let mut old = api.store.set_profile_images(account.id, images).await?;
    if let Some(old_key) = slot.key_of(&mut old).take()
        && let Err(e) = api.storage.delete(&old_key).await
    {
        tracing::warn!(error = %e, key = %old_key, "could not remove a replaced profile picture");
    }
    api.forget_account(account.id).await;
    api.publish(Event::AccountUpdated {
        account: account.clone(),
    })
    .await
}
