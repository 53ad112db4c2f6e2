//! Avatars and headers (issue 12): the `avatar` and `header` file parts of
//! `PATCH /api/v1/accounts/update_credentials` (read in [`super::profile`]), and
//! `DELETE /api/v1/profile/avatar` and `/header` (back to the default images).

use actix_web::{HttpResponse, web};
use starling_media::storage::{MediaStorage, Staged, key, new_token};
use starling_schema::events::Event;
use starling_schema::media::{AVATAR_SIZE, HEADER_SIZE, MediaKind, ProfileImages};
use starling_schema::model::Account;
use starling_store::Store;

use crate::Api;
use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/profile/avatar", web::delete().to(delete_avatar))
        .route("/api/v1/profile/header", web::delete().to(delete_header));
}

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

/// The `avatar` and `header` file parts of a multipart body, as slots to save; any other
/// kind of file is refused.
pub fn pictures(
    files: Vec<(String, Staged, &'static str, MediaKind)>,
) -> ApiResult<Vec<(Slot, Staged, &'static str)>> {
    let mut out = Vec::with_capacity(files.len());
    for (name, staged, content_type, kind) in files {
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
        out.push((slot, staged, content_type));
    }
    Ok(out)
}

async fn delete_avatar(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    save_profile_image(&api, &auth.account, Slot::Avatar, None).await?;
    super::profile::credential_account(&api, &auth.account).await
}

async fn delete_header(api: web::Data<Api>, auth: Auth) -> ApiResult<HttpResponse> {
    save_profile_image(&api, &auth.account, Slot::Header, None).await?;
    super::profile::credential_account(&api, &auth.account).await
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
