//! Media attachments on the embedded store (schema version 7).
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `media`: media id → MediaAttachment
//! - `media_by_post`: post ++ position → media id (the post's attachments in order)
//! - `profile_images`: account → ProfileImages

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::media::{MediaAttachment, NewMedia, ProfileImages, check_attach};

use fjall::Readable;

use super::{Ctx, EmbeddedStore, decode, get, k1, k2, put, require_account, scan_table};
use crate::{Result, Scan, StoreError, attach_refused, check};

impl EmbeddedStore {
    pub(super) async fn put_new_media(&self, new: NewMedia) -> Result<MediaAttachment> {
        self.write(move |inner, tx| {
            let media = new.into_record(inner.mint()?, now_ms());
            put(tx, &inner.t.media, k1(media.id), &media)?;
            Ok(media)
        })
        .await
    }

    pub(super) async fn get_media(&self, ids: &[Id]) -> Result<Vec<MediaAttachment>> {
        check::batch(ids.len())?;
        let snap = self.snapshot();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(m) = get(&snap, &self.inner.t.media, k1(*id))? {
                out.push(m);
            }
        }
        Ok(out)
    }

    pub(super) async fn replace_media(&self, mut media: MediaAttachment) -> Result<()> {
        self.write(move |inner, tx| {
            let old: MediaAttachment =
                get(tx, &inner.t.media, k1(media.id))?.ok_or(StoreError::NotFound("media"))?;
            media.post_id = old.post_id;
            put(tx, &inner.t.media, k1(media.id), &media)
        })
        .await
    }

    pub(super) async fn attach(
        &self,
        account: Id,
        post: Id,
        ids: Vec<Id>,
    ) -> Result<Vec<MediaAttachment>> {
        check::batch(ids.len())?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            let mut out = Vec::with_capacity(ids.len());
            for (position, id) in ids.iter().enumerate() {
                let mut media: Option<MediaAttachment> = get(tx, &t.media, k1(*id))?;
                check_attach(media.as_ref(), account, post).map_err(attach_refused)?;
                if let Some(m) = media.as_mut() {
                    m.post_id = Some(post);
                    put(tx, &t.media, k1(*id), &*m)?;
                    put(tx, &t.media_by_post, k2(post, Id(position as u64)), id)?;
                }
                out.extend(media);
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn media_of(&self, posts: &[Id]) -> Result<Vec<MediaAttachment>> {
        check::batch(posts.len())?;
        let snap = self.snapshot();
        let t = &self.inner.t;
        let mut out = Vec::new();
        for post in posts {
            for row in snap.prefix(&t.media_by_post, k1(*post)) {
                let (_, value) = row.into_inner().ctx("listing a post's media")?;
                let id: Id = decode(&value)?;
                if let Some(m) = get::<MediaAttachment>(&snap, &t.media, k1(id))? {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn remove_media(&self, id: Id) -> Result<Option<MediaAttachment>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let Some(media) = get::<MediaAttachment>(tx, &t.media, k1(id))? else {
                return Ok(None);
            };
            tx.remove(&t.media, k1(id));
            if let Some(post) = media.post_id {
                let rows: Vec<_> = tx
                    .prefix(&t.media_by_post, k1(post))
                    .map(|row| row.into_inner().ctx("listing a post's media"))
                    .collect::<Result<_>>()?;
                for (key, value) in rows {
                    if decode::<Id>(&value)? == id {
                        tx.remove(&t.media_by_post, key);
                    }
                }
            }
            Ok(Some(media))
        })
        .await
    }

    pub(super) async fn scan_all_media(
        &self,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Scan<MediaAttachment>> {
        check::scan_limit(limit)?;
        let snap = self.snapshot();
        scan_table(&snap, &self.inner.t.media, after, limit, |bytes| {
            decode(bytes).map(Some)
        })
    }

    pub(super) async fn put_profile_images(
        &self,
        account: Id,
        images: ProfileImages,
    ) -> Result<ProfileImages> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            require_account(tx, t, account)?;
            let old = get(tx, &t.profile_images, k1(account))?.unwrap_or_default();
            put(tx, &t.profile_images, k1(account), &images)?;
            Ok(old)
        })
        .await
    }

    pub(super) async fn get_profile_images(&self, accounts: &[Id]) -> Result<Vec<ProfileImages>> {
        check::batch(accounts.len())?;
        let snap = self.snapshot();
        accounts
            .iter()
            .map(|a| Ok(get(&snap, &self.inner.t.profile_images, k1(*a))?.unwrap_or_default()))
            .collect()
    }
}
