//! Post edits and polls on ScyllaDB (`schema/cql/010_edits_polls.cql`).
//!
//! An edit rewrites the post's rows (`posts`, `posts_by_author`) and its tag feeds at the
//! edit's time as the write time, after keeping the original in `post_versions` (keyed by
//! its creation time, so racing first edits write the same row). A vote is claimed with
//! `INSERT ... IF NOT EXISTS` and counted only by the request whose claim applied.

use ::scylla::value::Counter;
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::{Page, Post, Window};
use starling_schema::polls::{
    EditRefusal, Poll, PostEdit, PostVersion, VoteRefusal, check_editable, check_vote, edited,
    version_of,
};
use starling_schema::validate;

use super::ScyllaStore;
use super::exec::{self, corrupt, db, each, ms, ms_to_us};
use super::ops::{day_of, feeds_of, post_values};
use crate::{Result, StoreError, check, vote_refused};

/// The one partition of `polls_due`.
const DUE_BUCKET: i32 = 0;
/// The `poll_counters` row counting voters.
const VOTERS: i32 = -1;

fn to_doc<T: serde::Serialize>(context: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::backend(context, e))
}

fn edit_refused(refusal: EditRefusal) -> StoreError {
    match refusal {
        EditRefusal::NotTheAuthor => StoreError::Forbidden("This action is not allowed"),
        EditRefusal::Reblog => StoreError::Forbidden("a reblog cannot be edited"),
    }
}

impl ScyllaStore {
    /// Keep a new poll and put it on the due list (before its post names it).
    pub(super) async fn insert_poll(&self, poll: &Poll) -> Result<()> {
        const CTX: &str = "storing a poll";
        let st = self.st();
        let doc = to_doc(CTX, poll)?;
        futures::try_join!(
            self.write(CTX, &st.poll_insert, (db(poll.id), doc)),
            self.write(
                CTX,
                &st.poll_due_insert,
                (DUE_BUCKET, ms(poll.expires_at_ms), db(poll.id))
            ),
        )?;
        Ok(())
    }

    /// A poll's question (without results).
    async fn poll_doc(&self, poll: Id) -> Result<Option<Poll>> {
        const CTX: &str = "reading a poll";
        let row: Option<(Option<String>,)> =
            self.row(CTX, &self.st().poll_get, (db(poll),)).await?;
        match row.and_then(|(doc,)| doc) {
            Some(doc) => Ok(Some(serde_json::from_str(&doc).map_err(corrupt(CTX))?)),
            None => Ok(None),
        }
    }

    /// A poll with its results.
    async fn poll_with_results(&self, poll: Id) -> Result<Option<Poll>> {
        const CTX: &str = "reading a poll's results";
        let Some(mut found) = self.poll_doc(poll).await? else {
            return Ok(None);
        };
        let rows: Vec<(i32, Option<Counter>)> = self
            .rows(CTX, &self.st().poll_counters_get, (db(poll),))
            .await?;
        found.votes = vec![0; found.options.len()];
        found.voters = 0;
        for (choice, votes) in rows {
            let n = exec::count(votes);
            if choice == VOTERS {
                found.voters = n;
            } else if let Some(slot) = usize::try_from(choice)
                .ok()
                .and_then(|c| found.votes.get_mut(c))
            {
                *slot = n;
            }
        }
        Ok(Some(found))
    }

    async fn media_ids_of(&self, post: Id) -> Result<Vec<Id>> {
        let mut rows: Vec<(i32, i64)> = self
            .rows(
                "reading a post's media",
                &self.st().media_by_post_get,
                (db(post),),
            )
            .await?;
        rows.sort_unstable();
        Ok(rows.into_iter().map(|(_, m)| exec::id(m)).collect())
    }

    async fn options_of(&self, poll: Option<Id>) -> Result<Option<Vec<String>>> {
        Ok(match poll {
            Some(p) => self.poll_doc(p).await?.map(|p| p.options),
            None => None,
        })
    }

    async fn put_version(&self, v: &PostVersion) -> Result<()> {
        const CTX: &str = "keeping a post's version";
        let doc = to_doc(CTX, v)?;
        self.write(
            CTX,
            &self.st().post_version_insert,
            (db(v.post_id), ms(v.created_at_ms), doc),
        )
        .await
    }

    pub(super) async fn edit_post(&self, author: Id, id: Id, edit: PostEdit) -> Result<Post> {
        const CTX: &str = "editing a post";
        validate::validate_new_post(&edit.as_new_post(author), &self.inner.limits)?;
        let st = self.st();
        let post = self
            .live_post(id)
            .await?
            .ok_or(StoreError::NotFound("post"))?;
        check_editable(&post, author).map_err(edit_refused)?;
        let now = now_ms();
        // The original first: written at its creation time, the same row however often.
        let versions: Vec<(Option<String>,)> =
            self.rows(CTX, &st.post_versions_get, (db(id),)).await?;
        if versions.is_empty() {
            let original = version_of(
                &post,
                self.media_ids_of(id).await?,
                self.options_of(post.poll_id).await?,
                post.created_at_ms,
            );
            self.put_version(&original).await?;
        }
        let old_media = self.media_ids_of(id).await?;
        self.attach(author, id, &edit.media_ids).await?;
        for position in edit.media_ids.len()..old_media.len() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            self.write(CTX, &st.media_by_post_delete, (db(id), position))
                .await?;
        }
        let current = match post.poll_id {
            Some(p) => self.poll_doc(p).await?,
            None => None,
        };
        let poll_id = match (&edit.poll, current) {
            (Some(new), Some(cur)) if cur.same_question(new) => Some(cur.id),
            (new, cur) => {
                if let Some(cur) = cur {
                    let key = (DUE_BUCKET, ms(cur.expires_at_ms), db(cur.id));
                    self.write(CTX, &st.poll_due_delete, key).await?;
                }
                match new {
                    Some(new) => {
                        let poll = Poll::from_new(self.mint().await?, id, author, new, now);
                        self.insert_poll(&poll).await?;
                        Some(poll.id)
                    }
                    None => None,
                }
            }
        };
        let updated = edited(&post, &edit, poll_id, now);
        let written = ms_to_us(updated.edited_at_ms.unwrap_or(now));
        futures::try_join!(
            self.write_at(CTX, &st.post_insert, written, post_values(&updated)),
            self.write_at(CTX, &st.post_of_insert, written, post_values(&updated)),
        )?;
        // The tag feeds follow the new text.
        let (before, after) = (feeds_of(&post), feeds_of(&updated));
        let day = day_of(id);
        for feed in before.iter().filter(|f| !after.contains(f)) {
            let values = (feed.as_str(), day, db(id));
            self.write_at(CTX, &st.feed_post_delete, written, values)
                .await?;
        }
        for feed in after.iter().filter(|f| !before.contains(f)) {
            self.write(CTX, &st.feed_day_insert, (feed.as_str(), day))
                .await?;
            let values = (feed.as_str(), day, db(id));
            self.write_at(CTX, &st.feed_post_insert, written, values)
                .await?;
        }
        let version = version_of(
            &updated,
            edit.media_ids.clone(),
            self.options_of(poll_id).await?,
            updated.edited_at_ms.unwrap_or(now),
        );
        self.put_version(&version).await?;
        Ok(updated)
    }

    pub(super) async fn versions_of(&self, id: Id) -> Result<Vec<PostVersion>> {
        const CTX: &str = "reading a post's history";
        let Some(post) = self.live_post(id).await? else {
            return Ok(Vec::new());
        };
        let rows: Vec<(Option<String>,)> = self
            .rows(CTX, &self.st().post_versions_get, (db(id),))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for (doc,) in rows {
            if let Some(doc) = doc {
                out.push(serde_json::from_str(&doc).map_err(corrupt(CTX))?);
            }
        }
        if out.is_empty() {
            out.push(version_of(
                &post,
                self.media_ids_of(id).await?,
                self.options_of(post.poll_id).await?,
                post.created_at_ms,
            ));
        }
        Ok(out)
    }

    pub(super) async fn get_polls(&self, ids: &[Id]) -> Result<Vec<Poll>> {
        check::batch(ids.len())?;
        let found = each(ids.iter().copied(), |p| self.poll_with_results(p)).await?;
        Ok(found.into_iter().flatten().collect())
    }

    pub(super) async fn votes_of(
        &self,
        account: Id,
        polls: &[Id],
    ) -> Result<Vec<Option<Vec<u32>>>> {
        const CTX: &str = "reading votes";
        check::batch(polls.len())?;
        let st = self.st();
        each(polls.iter().copied(), |p| async move {
            let row: Option<(Option<Vec<i32>>,)> = self
                .row(CTX, &st.poll_vote_get, (db(p), db(account)))
                .await?;
            Ok(row.map(|(choices,)| {
                choices
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|c| u32::try_from(c).ok())
                    .collect()
            }))
        })
        .await
    }

    pub(super) async fn cast_vote(&self, account: Id, poll: Id, choices: &[u32]) -> Result<Poll> {
        const CTX: &str = "voting";
        if choices.len() > 64 {
            return Err(vote_refused(VoteRefusal::UnknownChoice));
        }
        let st = self.st();
        let found = self
            .poll_doc(poll)
            .await?
            .ok_or(StoreError::NotFound("poll"))?;
        let chosen = check_vote(&found, account, choices, now_ms()).map_err(vote_refused)?;
        let values: Vec<i32> = chosen
            .iter()
            .map(|c| i32::try_from(*c).unwrap_or(i32::MAX))
            .collect();
        let claim = self
            .lwt(
                CTX,
                &st.poll_vote_claim,
                (db(poll), db(account), values.clone()),
            )
            .await?;
        if !claim.applied {
            return Err(vote_refused(VoteRefusal::AlreadyVoted));
        }
        // Counted only by the request whose claim applied.
        let mut bumps = values;
        bumps.push(VOTERS);
        each(bumps, |choice| async move {
            self.write(CTX, &st.poll_votes_add, (Counter(1), db(poll), choice))
                .await
        })
        .await?;
        self.poll_with_results(poll)
            .await?
            .ok_or(StoreError::NotFound("poll"))
    }

    pub(super) async fn voters_of(&self, poll: Id, window: Window) -> Result<Page<Id>> {
        self.ids_page(
            "reading a poll's voters",
            &self.st().poll_voters_page,
            poll,
            window,
        )
        .await
    }

    pub(super) async fn due(&self, until_ms: u64, limit: usize) -> Result<Vec<(Id, u64)>> {
        const CTX: &str = "reading the due polls";
        check::scan_limit(limit)?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<(i64, i64)> = self
            .rows(
                CTX,
                &self.st().polls_due_get,
                (DUE_BUCKET, ms(until_ms), limit),
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|(at, p)| (exec::id(p), exec::unms(at)))
            .collect())
    }

    pub(super) async fn claim_expiry(&self, poll: Id, lease_ms: u64) -> Result<bool> {
        const CTX: &str = "claiming a poll's expiry";
        let ttl = i32::try_from(lease_ms.div_ceil(1000).max(1)).unwrap_or(i32::MAX);
        let holder = db(self.mint().await?);
        Ok(self
            .lwt(CTX, &self.st().poll_expiry_claim, (db(poll), holder, ttl))
            .await?
            .applied)
    }

    pub(super) async fn finish_expiry(&self, poll: Id) -> Result<()> {
        const CTX: &str = "finishing a poll's expiry";
        if let Some(found) = self.poll_doc(poll).await? {
            let key = (DUE_BUCKET, ms(found.expires_at_ms), db(poll));
            self.write(CTX, &self.st().poll_due_delete, key).await?;
        }
        Ok(())
    }
}
