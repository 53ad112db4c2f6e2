//! The home timeline: one range read on the reader's Redis shard (rebuilt from the store if
//! missing), then hydration in batches.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiResult;
use crate::extract::{Auth, Query};
use crate::pagination::{PageParams, link_header};
use crate::{Api, hydrate};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/timelines/home", web::get().to(home));
}

async fn home(
    req: HttpRequest,
    api: web::Data<Api>,
    auth: Auth,
    Query(page): Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let me = auth.account.id;
    let cursor = page.cursor()?;
    let mut ids = match api.timelines.read(&api.store, me, cursor.window).await {
        Ok(ids) => ids,
        // Degrade, don't fail: a shard that is down or busy is replaced by the store.
        Err(e) if e.kind() == starling_schema::ErrorKind::Unavailable => {
            tracing::warn!(error = %e, user = %me, "timeline shard unavailable; reading home from the store");
            api.timelines
                .read_from_store(&api.store, me, cursor.window)
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    if cursor.reverse {
        ids.reverse();
    }
    let posts = api.posts_by_ids(&ids).await?;
    let body = hydrate::statuses(&api, Some(me), &posts).await?;
    let mut res = HttpResponse::Ok();
    if let (Some(newest), Some(oldest)) = (ids.first(), ids.last()) {
        res.insert_header((header::LINK, link_header(&req, *newest, *oldest)));
    }
    Ok(res.json(body))
}
