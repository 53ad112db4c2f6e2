//! Web Push on the embedded store (schema version 8).
//!
//! Tables:
//! - `push_subscriptions`: account ++ token digest (hex) → PushSubscription
//! - `server_keys`: name → value

use starling_schema::Id;
use starling_schema::push::PushSubscription;

use fjall::Readable;

use super::{Ctx, EmbeddedStore, Inner, decode, exists, get, k1, put};
use crate::Result;

fn subscription_key(account: Id, token_hash: &str) -> Vec<u8> {
    [k1(account).as_slice(), token_hash.as_bytes()].concat()
}

impl EmbeddedStore {
    pub(super) async fn put_push_subscription(&self, sub: PushSubscription) -> Result<()> {
        self.write(move |inner: &Inner, tx| {
            let key = subscription_key(sub.account_id, &sub.token_hash);
            put(tx, &inner.t.push_subscriptions, key, &sub)
        })
        .await
    }

    pub(super) async fn push_subscriptions_for(
        &self,
        account: Id,
    ) -> Result<Vec<PushSubscription>> {
        let snap = self.snapshot();
        snap.prefix(&self.inner.t.push_subscriptions, k1(account))
            .map(|row| {
                let (_, value) = row.into_inner().ctx("listing push subscriptions")?;
                decode(&value)
            })
            .collect()
    }

    pub(super) async fn remove_push_subscription(
        &self,
        account: Id,
        token_hash: &str,
    ) -> Result<bool> {
        let key = subscription_key(account, token_hash);
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            let existed = exists(tx, &t.push_subscriptions, key.as_slice())?;
            tx.remove(&t.push_subscriptions, key.as_slice());
            Ok(existed)
        })
        .await
    }

    pub(super) async fn keep_server_key(&self, name: &str, candidate: String) -> Result<String> {
        let name = name.to_owned();
        self.write(move |inner: &Inner, tx| {
            let t = &inner.t;
            if let Some(kept) = get::<String>(tx, &t.server_keys, name.as_str())? {
                return Ok(kept);
            }
            put(tx, &t.server_keys, name.as_str(), &candidate)?;
            Ok(candidate)
        })
        .await
    }
}
