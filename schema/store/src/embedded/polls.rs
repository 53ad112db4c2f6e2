//! Post edits and polls on the embedded store (schema version 10).
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `post_versions`: post ++ version id → PostVersion (a post's history, oldest first;
//!   written from its first edit on, the original first)
//! - `polls`: poll → Poll (with its results, updated in the vote's transaction)
//! - `poll_votes`: poll ++ account → choices (one vote set per account)
//! - `polls_due`: end (ms) ++ poll → () (the expiry job's due list)
//! - `poll_claims`: poll → lease end (ms)
//!
//! An edit, a vote and a claim are each one transaction: a vote's claim and its counts
//! cannot disagree, and two votes by one account cannot both pass.

use fjall::Readable;
use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::media::check_attach;
use starling_schema::model::{Page, Post, Window};
use starling_schema::polls::{
    EditRefusal, Poll, PostEdit, PostVersion, VoteRefusal, check_editable, check_vote, edited,
    version_of,
};
use starling_schema::validate;

use super::{
    Ctx, EmbeddedStore, Inner, StoredPost, Tables, Tx, decode, exists, get, k1, k2, listed,
    live_post, put, scan, tag_prefix,
};
use crate::{Result, StoreError, attach_refused, check, vote_refused};

fn due_key(expires_at_ms: u64, poll: Id) -> [u8; 16] {
    k2(Id(expires_at_ms), poll)
}

/// The ids of a post's attachments, in order.
fn media_ids_of(r: &impl Readable, t: &Tables, post: Id) -> Result<Vec<Id>> {
    r.prefix(&t.media_by_post, k1(post))
        .map(|row| {
            let (_, value) = row.into_inner().ctx("listing a post's media")?;
            decode(&value)
        })
        .collect()
}

fn poll_options(r: &impl Readable, t: &Tables, poll: Option<Id>) -> Result<Option<Vec<String>>> {
    Ok(match poll {
        Some(id) => get::<Poll>(r, &t.polls, k1(id))?.map(|p| p.options),
        None => None,
    })
}

/// Keep a new poll for `post` and put it on the due list.
pub(super) fn insert_poll(tx: &mut Tx<'_>, t: &Tables, poll: &Poll) -> Result<()> {
    put(tx, &t.polls, k1(poll.id), poll)?;
    tx.insert(&t.polls_due, due_key(poll.expires_at_ms, poll.id), []);
    Ok(())
}

fn edit_refused(refusal: EditRefusal) -> StoreError {
    match refusal {
        EditRefusal::NotTheAuthor => StoreError::Forbidden("This action is not allowed"),
        EditRefusal::Reblog => StoreError::Forbidden("a reblog cannot be edited"),
    }
}

/// Point `post`'s attachments at `ids`, in order, dropping the positions past them.
fn set_media(tx: &mut Tx<'_>, t: &Tables, author: Id, post: Id, ids: &[Id]) -> Result<()> {
    for (position, id) in ids.iter().enumerate() {
        let mut media: Option<starling_schema::media::MediaAttachment> =
            get(tx, &t.media, k1(*id))?;
        check_attach(media.as_ref(), author, post).map_err(attach_refused)?;
        if let Some(m) = media.as_mut() {
            m.post_id = Some(post);
            put(tx, &t.media, k1(*id), &*m)?;
            put(tx, &t.media_by_post, k2(post, Id(position as u64)), id)?;
        }
    }
    let old: Vec<Vec<u8>> = tx
        .prefix(&t.media_by_post, k1(post))
        .map(|row| row.key().ctx("listing a post's media").map(|k| k.to_vec()))
        .collect::<Result<_>>()?;
    for key in old {
        let position = Id::from_be_slice(key.get(8..16).unwrap_or_default()).unwrap_or(Id(0));
        if position.0 >= ids.len() as u64 {
            tx.remove(&t.media_by_post, key);
        }
    }
    Ok(())
}

fn update(inner: &Inner, tx: &mut Tx<'_>, author: Id, id: Id, edit: PostEdit) -> Result<Post> {
    let t = &inner.t;
    let post = live_post(tx, t, id)?.ok_or(StoreError::NotFound("post"))?;
    check_editable(&post, author).map_err(edit_refused)?;
    let now = now_ms();
    // The first edit keeps the original as the first version.
    if tx.prefix(&t.post_versions, k1(id)).next().is_none() {
        let original = version_of(
            &post,
            media_ids_of(tx, t, id)?,
            poll_options(tx, t, post.poll_id)?,
            post.created_at_ms,
        );
        put(tx, &t.post_versions, k2(id, inner.mint()?), &original)?;
    }
    set_media(tx, t, author, id, &edit.media_ids)?;
    let current: Option<Poll> = match post.poll_id {
        Some(p) => get(tx, &t.polls, k1(p))?,
        None => None,
    };
    let poll_id = match (&edit.poll, current) {
        (Some(new), Some(cur)) if cur.same_question(new) => Some(cur.id),
        (new, cur) => {
            if let Some(cur) = cur {
                tx.remove(&t.polls_due, due_key(cur.expires_at_ms, cur.id));
            }
            match new {
                Some(new) => {
                    let poll = Poll::from_new(inner.mint()?, id, author, new, now);
                    insert_poll(tx, t, &poll)?;
                    Some(poll.id)
                }
                None => None,
            }
        }
    };
    let updated = edited(&post, &edit, poll_id, now);
    if listed(&post) {
        for tag in &post.hashtags {
            tx.remove(&t.tagged_posts, [tag_prefix(tag), k1(id).to_vec()].concat());
        }
        for tag in &updated.hashtags {
            tx.insert(
                &t.tagged_posts,
                [tag_prefix(tag), k1(id).to_vec()].concat(),
                [],
            );
        }
    }
    put(
        tx,
        &t.posts,
        k1(id),
        &StoredPost {
            post: updated.clone(),
            deleted_at_ms: None,
        },
    )?;
    let version = version_of(
        &updated,
        edit.media_ids.clone(),
        poll_options(tx, t, poll_id)?,
        updated.edited_at_ms.unwrap_or(now),
    );
    put(tx, &t.post_versions, k2(id, inner.mint()?), &version)?;
    Ok(updated)
}

impl EmbeddedStore {
    pub(super) async fn edit_post(&self, author: Id, id: Id, edit: PostEdit) -> Result<Post> {
        validate::validate_new_post(&edit.as_new_post(author), &self.inner.limits)?;
        self.write(move |inner, tx| update(inner, tx, author, id, edit))
            .await
    }

    pub(super) async fn versions_of(&self, id: Id) -> Result<Vec<PostVersion>> {
        let snap = self.snapshot();
        let t = &self.inner.t;
        let Some(post) = live_post(&snap, t, id)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in snap.prefix(&t.post_versions, k1(id)) {
            let (_, value) = row.into_inner().ctx("reading a post's history")?;
            out.push(decode(&value)?);
        }
        if out.is_empty() {
            out.push(version_of(
                &post,
                media_ids_of(&snap, t, id)?,
                poll_options(&snap, t, post.poll_id)?,
                post.created_at_ms,
            ));
        }
        Ok(out)
    }

    pub(super) async fn get_polls(&self, ids: &[Id]) -> Result<Vec<Poll>> {
        check::batch(ids.len())?;
        let snap = self.snapshot();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = get(&snap, &self.inner.t.polls, k1(*id))? {
                out.push(p);
            }
        }
        Ok(out)
    }

    pub(super) async fn votes_of(
        &self,
        account: Id,
        polls: &[Id],
    ) -> Result<Vec<Option<Vec<u32>>>> {
        check::batch(polls.len())?;
        let snap = self.snapshot();
        polls
            .iter()
            .map(|p| get(&snap, &self.inner.t.poll_votes, k2(*p, account)))
            .collect()
    }

    pub(super) async fn cast_vote(&self, account: Id, poll: Id, choices: Vec<u32>) -> Result<Poll> {
        if choices.len() > 64 {
            return Err(vote_refused(VoteRefusal::UnknownChoice));
        }
        self.write(move |inner, tx| {
            let t = &inner.t;
            let mut found: Poll =
                get(tx, &t.polls, k1(poll))?.ok_or(StoreError::NotFound("poll"))?;
            let chosen = check_vote(&found, account, &choices, now_ms()).map_err(vote_refused)?;
            if exists(tx, &t.poll_votes, k2(poll, account))? {
                return Err(vote_refused(VoteRefusal::AlreadyVoted));
            }
            put(tx, &t.poll_votes, k2(poll, account), &chosen)?;
            found.votes.resize(found.options.len(), 0);
            for c in &chosen {
                if let Some(n) = found.votes.get_mut(*c as usize) {
                    *n += 1;
                }
            }
            found.voters += 1;
            put(tx, &t.polls, k1(poll), &found)?;
            Ok(found)
        })
        .await
    }

    pub(super) async fn voters_of(&self, poll: Id, window: Window) -> Result<Page<Id>> {
        let snap = self.snapshot();
        scan(&snap, &self.inner.t.poll_votes, poll, &window, |id, _| {
            Ok(Some(id))
        })
    }

    pub(super) async fn due(&self, until_ms: u64, limit: usize) -> Result<Vec<(Id, u64)>> {
        check::scan_limit(limit)?;
        let snap = self.snapshot();
        let mut out = Vec::new();
        for row in snap.range(&self.inner.t.polls_due, ..=due_key(until_ms, Id(u64::MAX))) {
            let key = row.key().ctx("reading the due polls")?;
            let at = Id::from_be_slice(key.get(..8).unwrap_or_default());
            let poll = Id::from_be_slice(key.get(8..16).unwrap_or_default());
            if let (Some(at), Some(poll)) = (at, poll) {
                out.push((poll, at.0));
            }
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    pub(super) async fn claim_expiry(&self, poll: Id, lease_ms: u64) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let now = now_ms();
            if let Some(until) = get::<u64>(tx, &t.poll_claims, k1(poll))?
                && until > now
            {
                return Ok(false);
            }
            put(tx, &t.poll_claims, k1(poll), &now.saturating_add(lease_ms))?;
            Ok(true)
        })
        .await
    }

    pub(super) async fn finish_expiry(&self, poll: Id) -> Result<()> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if let Some(found) = get::<Poll>(tx, &t.polls, k1(poll))? {
                tx.remove(&t.polls_due, due_key(found.expires_at_ms, poll));
            }
            // Taken for good: a worker that read the due list before this finds it taken.
            put(tx, &t.poll_claims, k1(poll), &u64::MAX)
        })
        .await
    }
}
