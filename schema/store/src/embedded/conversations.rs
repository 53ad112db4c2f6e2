//! Direct conversations on the embedded store (schema version 11). The rules are
//! `starling_schema::conversations::ConversationState`'s; this only persists them, each
//! change in one transaction, so a view and its index never disagree.
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `conversations`: account ++ conversation → ConversationState
//! - `conversations_by_last`: account ++ newest post → conversation (the visible views,
//!   paged by their newest post)
//! - `conversation_posts`: account ++ conversation ++ post → () (what a view falls back to
//!   when its newest post is deleted)

use fjall::Readable;
use starling_schema::Id;
use starling_schema::conversations::{Conversation, ConversationState, conversation_id};
use starling_schema::model::{Page, Window};

use super::{Ctx, EmbeddedStore, Tables, Tx, get, k1, k2, put, scan};
use crate::{Result, StoreError};

fn k3(a: Id, b: Id, c: Id) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&k2(a, b));
    key[16..].copy_from_slice(&c.to_be_bytes());
    key
}

/// Replace `account`'s view of `conversation` (`old` as it was) with `new`, keeping the
/// index of visible views in step.
fn save(
    tx: &mut Tx<'_>,
    t: &Tables,
    account: Id,
    conversation: Id,
    old: Option<&ConversationState>,
    new: &ConversationState,
) -> Result<()> {
    if let Some(old) = old.filter(|o| o.visible()) {
        tx.remove(&t.conversations_by_last, k2(account, old.last_status_id));
    }
    if new.visible() {
        tx.insert(
            &t.conversations_by_last,
            k2(account, new.last_status_id),
            k1(conversation),
        );
    }
    put(tx, &t.conversations, k2(account, conversation), new)
}

fn state(r: &impl Readable, t: &Tables, account: Id, id: Id) -> Result<Option<ConversationState>> {
    get(r, &t.conversations, k2(account, id))
}

/// Forget every conversation of `account`'s (the account is deleted).
pub(super) fn forget_all(tx: &mut Tx<'_>, t: &Tables, account: Id) -> Result<()> {
    for table in [
        &t.conversations,
        &t.conversations_by_last,
        &t.conversation_posts,
    ] {
        let keys: Vec<Vec<u8>> = tx
            .prefix(table, k1(account))
            .map(|row| row.key().ctx("listing conversations").map(|k| k.to_vec()))
            .collect::<Result<_>>()?;
        for key in keys {
            tx.remove(table, key.as_slice());
        }
    }
    Ok(())
}

impl EmbeddedStore {
    pub(super) async fn converse(
        &self,
        account: Id,
        participants: Vec<Id>,
        post: Id,
        unread: bool,
    ) -> Result<Option<Conversation>> {
        let id = conversation_id(&participants);
        self.write(move |inner, tx| {
            let t = &inner.t;
            super::require_account(tx, t, account)?;
            tx.insert(&t.conversation_posts, k3(account, id, post), []);
            let old = state(tx, t, account, id)?;
            let Some(new) = ConversationState::with_post(old.as_ref(), &participants, post, unread)
            else {
                return Ok(None);
            };
            save(tx, t, account, id, old.as_ref(), &new)?;
            Ok(new.view(id, account))
        })
        .await
    }

    pub(super) async fn unconverse(
        &self,
        account: Id,
        id: Id,
        post: Id,
    ) -> Result<Option<Conversation>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            tx.remove(&t.conversation_posts, k3(account, id, post));
            let Some(old) = state(tx, t, account, id)? else {
                return Ok(None);
            };
            // The newest other post after what the account removed.
            let floor = old.removed_through.map_or(0, |r| r.0.saturating_add(1));
            let range = k3(account, id, Id(floor)).to_vec()..=k3(account, id, Id::MAX).to_vec();
            let previous = match tx.range(&t.conversation_posts, range).next_back() {
                Some(row) => {
                    let key = row.key().ctx("reading a conversation's posts")?;
                    Some(
                        Id::from_be_slice(key.get(16..).unwrap_or_default()).ok_or_else(|| {
                            StoreError::backend("reading a conversation's posts", "short key")
                        })?,
                    )
                }
                None => None,
            };
            let Some(new) = old.without_post(post, previous) else {
                return Ok(None);
            };
            save(tx, t, account, id, Some(&old), &new)?;
            Ok(new.view(id, account))
        })
        .await
    }

    pub(super) fn conversations_page(
        &self,
        account: Id,
        window: &Window,
    ) -> Result<Page<Conversation>> {
        let snap = self.snapshot();
        let t = &self.inner.t;
        scan(
            &snap,
            &t.conversations_by_last,
            account,
            window,
            |last, value| {
                let id = Id::from_be_slice(value)
                    .ok_or_else(|| StoreError::backend("reading conversations", "short value"))?;
                Ok(state(&snap, t, account, id)?
                    .filter(|s| s.last_status_id == last)
                    .and_then(|s| s.view(id, account)))
            },
        )
    }

    pub(super) fn conversation_of(&self, account: Id, id: Id) -> Result<Option<Conversation>> {
        let snap = self.snapshot();
        Ok(state(&snap, &self.inner.t, account, id)?.and_then(|s| s.view(id, account)))
    }

    /// Apply `change` to `account`'s view of `id`, if it has one; the view after it.
    pub(super) async fn change_conversation(
        &self,
        account: Id,
        id: Id,
        change: fn(&ConversationState) -> Option<ConversationState>,
    ) -> Result<Option<ConversationState>> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let Some(old) = state(tx, t, account, id)? else {
                return Ok(None);
            };
            let Some(new) = change(&old) else {
                return Ok(None);
            };
            save(tx, t, account, id, Some(&old), &new)?;
            Ok(Some(new))
        })
        .await
    }
}
