//! Media attachments on ScyllaDB (`schema/cql/007_media.cql`): each upload stored whole as
//! JSON by id, with `post_id` in its own column so that attaching is a conditional write.

use std::ops::ControlFlow;

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages, check_attach};

use super::ScyllaStore;
use super::exec::{corrupt, db, id};
use crate::{Result, Scan, StoreError, attach_refused, check};

type MediaRow = (Option<i64>, Option<String>);

fn to_doc(context: &'static str, m: &MediaAttachment) -> Result<String> {
    serde_json::to_string(m).map_err(|e| StoreError::backend(context, e))
}

/// The record of a row: the `post_id` column has the last word over the document.
fn from_row(context: &'static str, (post, doc): MediaRow) -> Result<Option<MediaAttachment>> {
    let Some(doc) = doc else {
        // A row left with only `post_id` by a conditional write racing its deletion.
        return Ok(None);
    };
    let mut m: MediaAttachment = serde_json::from_str(&doc).map_err(corrupt(context))?;
    m.post_id = post.map(id);
    Ok(Some(m))
}

impl ScyllaStore {
    pub(super) async fn put_new_media(&self, new: NewMedia) -> Result<MediaAttachment> {
        const CTX: &str = "storing an upload";
        let media = new.into_record(self.mint().await?, now_ms());
        let doc = to_doc(CTX, &media)?;
        self.write(CTX, &self.st().media_insert, (db(media.id), doc))
            .await?;
        Ok(media)
    }

    async fn one_media(&self, context: &'static str, mid: Id) -> Result<Option<MediaAttachment>> {
        let row: Option<MediaRow> = self.row(context, &self.st().media_get, (db(mid),)).await?;
        match row {
            Some(r) => from_row(context, r),
            None => Ok(None),
        }
    }

    pub(super) async fn get_media(&self, ids: &[Id]) -> Result<Vec<MediaAttachment>> {
        const CTX: &str = "reading uploads";
        check::batch(ids.len())?;
        let found = super::exec::each(ids.iter().copied(), |mid| self.one_media(CTX, mid)).await?;
        Ok(found.into_iter().flatten().collect())
    }

    pub(super) async fn replace_media(&self, media: MediaAttachment) -> Result<()> {
        const CTX: &str = "updating an upload";
        let doc = to_doc(CTX, &media)?;
        let done = self
            .lwt(CTX, &self.st().media_update, (doc, db(media.id)))
            .await?;
        if done.applied {
            Ok(())
        } else {
            Err(StoreError::NotFound("media"))
        }
    }

    pub(super) async fn attach(
        &self,
        account: Id,
        post: Id,
        ids: &[Id],
    ) -> Result<Vec<MediaAttachment>> {
        const CTX: &str = "attaching uploads";
        check::batch(ids.len())?;
        let st = self.st();
        let mut found = Vec::with_capacity(ids.len());
        for mid in ids {
            let m = self.one_media(CTX, *mid).await?;
            check_attach(m.as_ref(), account, post).map_err(attach_refused)?;
            found.extend(m);
        }
        // Claim each; if another post claimed one meanwhile, give back what was claimed.
        let mut claimed: Vec<Id> = Vec::new();
        for m in &found {
            if m.post_id == Some(post) {
                continue;
            }
            let lwt = self
                .lwt(CTX, &st.media_attach, (db(post), db(m.id)))
                .await?;
            if !lwt.applied {
                for c in claimed {
                    self.lwt(CTX, &st.media_detach, (db(c), db(post))).await?;
                }
                return Err(attach_refused(
                    starling_schema::media::AttachRefusal::AttachedElsewhere,
                ));
            }
            claimed.push(m.id);
        }
        for (position, m) in found.iter_mut().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            self.write(
                CTX,
                &st.media_by_post_insert,
                (db(post), position, db(m.id)),
            )
            .await?;
            m.post_id = Some(post);
        }
        Ok(found)
    }

    pub(super) async fn media_of(&self, posts: &[Id]) -> Result<Vec<MediaAttachment>> {
        const CTX: &str = "reading the media of posts";
        check::batch(posts.len())?;
        let lists = super::exec::each(posts.iter().copied(), |post| async move {
            let mut rows: Vec<(i32, i64)> = self
                .rows(CTX, &self.st().media_by_post_get, (db(post),))
                .await?;
            rows.sort_unstable();
            let ids: Vec<Id> = rows.into_iter().map(|(_, m)| id(m)).collect();
            self.get_media(&ids).await
        })
        .await?;
        Ok(lists.into_iter().flatten().collect())
    }

    pub(super) async fn remove_media(&self, mid: Id) -> Result<Option<MediaAttachment>> {
        const CTX: &str = "deleting an upload";
        let st = self.st();
        let Some(m) = self.one_media(CTX, mid).await? else {
            return Ok(None);
        };
        if let Some(post) = m.post_id {
            let rows: Vec<(i32, i64)> = self.rows(CTX, &st.media_by_post_get, (db(post),)).await?;
            for (position, other) in rows {
                if other == db(mid) {
                    self.write(CTX, &st.media_by_post_delete, (db(post), position))
                        .await?;
                }
            }
        }
        self.write(CTX, &st.media_delete, (db(mid),)).await?;
        Ok(Some(m))
    }

    pub(super) async fn scan_all_media(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Scan<MediaAttachment>> {
        const CTX: &str = "scanning uploads";
        check::scan_limit(limit)?;
        let mut items: Vec<MediaAttachment> = Vec::with_capacity(limit);
        let mut seen = 0usize;
        let mut last: Option<Id> = None;
        let n = i32::try_from(limit).unwrap_or(i32::MAX);
        let each = |row: MediaRow| {
            seen += 1;
            if let Some(m) = from_row(CTX, row)? {
                last = Some(m.id);
                items.push(m);
            }
            Ok(ControlFlow::Continue(()))
        };
        match after {
            None => {
                self.scan(CTX, &self.st().media_scan_first, (n,), each)
                    .await?
            }
            Some(a) => {
                self.scan(CTX, &self.st().media_scan, (db(a), n), each)
                    .await?
            }
        }
        let next = if seen == limit { last } else { None };
        Ok(Scan { items, next })
    }

    pub(super) async fn put_profile_images(
        &self,
        account: Id,
        images: ProfileImages,
    ) -> Result<ProfileImages> {
        const CTX: &str = "saving profile images";
        if crate::Store::accounts_by_ids(self, &[account])
            .await?
            .is_empty()
        {
            return Err(StoreError::NotFound("account"));
        }
        let old = self
            .get_profile_images(&[account])
            .await?
            .pop()
            .unwrap_or_default();
        let doc = serde_json::to_string(&images).map_err(|e| StoreError::backend(CTX, e))?;
        self.write(CTX, &self.st().profile_images_insert, (db(account), doc))
            .await?;
        Ok(old)
    }

    pub(super) async fn get_profile_images(&self, accounts: &[Id]) -> Result<Vec<ProfileImages>> {
        const CTX: &str = "reading profile images";
        check::batch(accounts.len())?;
        super::exec::each(accounts.iter().copied(), |a| async move {
            let row: Option<(Option<String>,)> = self
                .row(CTX, &self.st().profile_images_get, (db(a),))
                .await?;
            match row.and_then(|(doc,)| doc) {
                Some(doc) => serde_json::from_str(&doc).map_err(corrupt(CTX)),
                None => Ok(ProfileImages::default()),
            }
        })
        .await
    }
}
