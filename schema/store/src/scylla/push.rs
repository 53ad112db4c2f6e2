//! Web Push on ScyllaDB (`schema/cql/008_push.cql`): an account's subscriptions in one
//! partition, each stored whole under its token's digest, and the server keys, claimed with
//! a conditional insert so every node agrees on the first one kept.

use starling_schema::Id;
use starling_schema::push::PushSubscription;

use super::ScyllaStore;
use super::exec::{corrupt, db};
use crate::{Result, StoreError};

impl ScyllaStore {
    pub(super) async fn put_push_subscription(&self, sub: PushSubscription) -> Result<()> {
        const CTX: &str = "saving a push subscription";
        let doc = serde_json::to_string(&sub).map_err(|e| StoreError::backend(CTX, e))?;
        self.write(
            CTX,
            &self.st().push_subscription_insert,
            (db(sub.account_id), sub.token_hash.as_str(), doc),
        )
        .await
    }

    pub(super) async fn push_subscriptions_for(
        &self,
        account: Id,
    ) -> Result<Vec<PushSubscription>> {
        const CTX: &str = "reading push subscriptions";
        let rows: Vec<(String,)> = self
            .rows(CTX, &self.st().push_subscriptions_get, (db(account),))
            .await?;
        rows.iter()
            .map(|(doc,)| serde_json::from_str(doc).map_err(corrupt(CTX)))
            .collect()
    }

    pub(super) async fn remove_push_subscription(
        &self,
        account: Id,
        token_hash: &str,
    ) -> Result<bool> {
        const CTX: &str = "deleting a push subscription";
        let st = self.st();
        let existed: Option<(String,)> = self
            .row(CTX, &st.push_subscription_get, (db(account), token_hash))
            .await?;
        if existed.is_some() {
            self.write(CTX, &st.push_subscription_delete, (db(account), token_hash))
                .await?;
        }
        Ok(existed.is_some())
    }

    pub(super) async fn remove_push_subscriptions(&self, account: Id) -> Result<()> {
        const CTX: &str = "deleting an account's push subscriptions";
        self.write(CTX, &self.st().push_subscriptions_delete, (db(account),))
            .await
    }

    pub(super) async fn keep_server_key(&self, name: &str, candidate: String) -> Result<String> {
        const CTX: &str = "keeping a server key";
        let st = self.st();
        let claim = self
            .lwt(CTX, &st.server_key_claim, (name, candidate.as_str()))
            .await?;
        if claim.applied {
            return Ok(candidate);
        }
        let kept: Option<(String,)> = self.row(CTX, &st.server_key_get, (name,)).await?;
        kept.map(|(value,)| value)
            .ok_or_else(|| StoreError::backend(CTX, "a claimed server key could not be read"))
    }
}
