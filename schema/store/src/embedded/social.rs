//! Profile edits and follow requests on the embedded store (schema version 6).
//!
//! Tables (keys as in the parent module, big-endian ids):
//! - `follow_requests`: account ++ requester → requested at (ms): who waits on `account`
//! - `follow_requests_sent`: requester ++ account → (): the `requested` flag, from the
//!   requester's side
//! - `conversation_mutes`: account ++ thread root → (): muted conversations
//!
//! Every decision runs in one write transaction, and transactions run one at a time, so of
//! two concurrent decisions on one request exactly one finds it pending.

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::{Account, Page, Window};
use starling_schema::profile::{self, ProfileUpdate};

use super::{EmbeddedStore, Tables, Tx, bump_account, exists, get, ids_page, k1, k2, put};
use crate::{Result, StoreError, check};

/// Drop a pending request of `requester` to follow `account`; true if there was one.
pub(super) fn withdraw(tx: &mut Tx<'_>, t: &Tables, requester: Id, account: Id) -> Result<bool> {
    if !exists(tx, &t.follow_requests, k2(account, requester))? {
        return Ok(false);
    }
    tx.remove(&t.follow_requests, k2(account, requester));
    tx.remove(&t.follow_requests_sent, k2(requester, account));
    Ok(true)
}

/// Every pending request to or from `id`, for deleting the account.
pub(super) fn withdraw_all(tx: &mut Tx<'_>, t: &Tables, id: Id) -> Result<()> {
    for requester in super::partition_ids(tx, &t.follow_requests, id)? {
        withdraw(tx, t, requester, id)?;
    }
    for account in super::partition_ids(tx, &t.follow_requests_sent, id)? {
        withdraw(tx, t, id, account)?;
    }
    Ok(())
}

impl EmbeddedStore {
    pub(super) async fn update_profile_(&self, id: Id, update: ProfileUpdate) -> Result<Account> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let account: Account =
                get(tx, &t.accounts, k1(id))?.ok_or(StoreError::NotFound("account"))?;
            let next = profile::apply(&account, update)?;
            if next != account {
                put(tx, &t.accounts, k1(id), &next)?;
            }
            Ok(next)
        })
        .await
    }

    pub(super) async fn request_follow_(&self, follower: Id, followee: Id) -> Result<bool> {
        check::distinct(follower, followee)?;
        self.write(move |inner, tx| {
            let t = &inner.t;
            super::may_follow(tx, t, follower, followee)?;
            if exists(tx, &t.following, k2(follower, followee))?
                || exists(tx, &t.follow_requests, k2(followee, follower))?
            {
                return Ok(false);
            }
            tx.insert(
                &t.follow_requests,
                k2(followee, follower),
                now_ms().to_be_bytes(),
            );
            tx.insert(&t.follow_requests_sent, k2(follower, followee), []);
            Ok(true)
        })
        .await
    }

    pub(super) async fn follow_requests_(&self, account: Id, window: Window) -> Result<Page<Id>> {
        check::window(&window)?;
        ids_page(
            &self.snapshot(),
            &self.inner.t.follow_requests,
            account,
            &window,
        )
    }

    pub(super) async fn set_conversation_muted(
        &self,
        account: Id,
        root: Id,
        muted: bool,
    ) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            let was = exists(tx, &t.conversation_mutes, k2(account, root))?;
            if muted {
                super::require_account(tx, t, account)?;
                tx.insert(&t.conversation_mutes, k2(account, root), []);
            } else {
                tx.remove(&t.conversation_mutes, k2(account, root));
            }
            Ok(was != muted)
        })
        .await
    }

    pub(super) fn muted_conversations_(&self, account: Id, roots: &[Id]) -> Result<Vec<bool>> {
        check::batch(roots.len())?;
        let snap = self.snapshot();
        roots
            .iter()
            .map(|root| exists(&snap, &self.inner.t.conversation_mutes, k2(account, *root)))
            .collect()
    }

    pub(super) async fn decide_follow_request(
        &self,
        account: Id,
        requester: Id,
        accept: bool,
    ) -> Result<bool> {
        self.write(move |inner, tx| {
            let t = &inner.t;
            if !withdraw(tx, t, requester, account)? {
                return Ok(false);
            }
            if accept && !exists(tx, &t.following, k2(requester, account))? {
                let at = now_ms().to_be_bytes();
                tx.insert(&t.following, k2(requester, account), at);
                tx.insert(&t.followers, k2(account, requester), at);
                bump_account(tx, t, requester, |c| c.following += 1)?;
                bump_account(tx, t, account, |c| c.followers += 1)?;
            }
            Ok(true)
        })
        .await
    }
}
