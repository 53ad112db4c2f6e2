//! Profile edits and follow requests on ScyllaDB (schema version 6, `006_profiles_requests.cql`).
//!
//! A pending request is a row of `follow_requests`, claimed with `IF NOT EXISTS` and taken
//! with `DELETE ... IF EXISTS`: whatever decides a request (authorize, reject, withdraw,
//! a block) takes the row first, and only the call whose take applied goes on, so two
//! concurrent decisions never both apply. `follow_requests_sent` mirrors the rows from the
//! requester's side for the `requested` flag; it is written after the claim and removed
//! after the take, so a crash between the two leaves a flag that the next decision clears.

use starling_schema::Id;
use starling_schema::ids::now_ms;
use starling_schema::model::{Account, Page, Visibility, Window};
use starling_schema::profile::{self, Profile, ProfileField, ProfileUpdate};

use super::ScyllaStore;
use super::exec::{self, db, ms};
use crate::{Result, StoreError, check};

/// The columns of `account_profiles` after its key, as read.
pub(super) type ProfileRow = (
    Option<bool>,
    Option<Vec<(String, String)>>,
    Option<String>,
    Option<bool>,
    Option<String>,
);

/// A stored profile row as a [`Profile`] (missing cells read as the defaults).
pub(super) fn profile_of(row: Option<ProfileRow>) -> Profile {
    let Some((discoverable, fields, privacy, sensitive, language)) = row else {
        return Profile::default();
    };
    let default = Profile::default();
    Profile {
        discoverable: discoverable.unwrap_or(default.discoverable),
        fields: fields
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| ProfileField { name, value })
            .collect(),
        privacy: privacy
            .as_deref()
            .and_then(Visibility::parse)
            .unwrap_or(default.privacy),
        sensitive: sensitive.unwrap_or(default.sensitive),
        language: language.filter(|l| !l.is_empty()),
    }
}

impl ScyllaStore {
    /// The profile of account `id` (the default if it never edited one).
    pub(super) async fn profile(&self, id: Id) -> Result<Profile> {
        let row = self
            .row::<ProfileRow>("reading a profile", &self.st().profile_get, (db(id),))
            .await?;
        Ok(profile_of(row))
    }

    pub(super) async fn update_profile_(&self, id: Id, update: ProfileUpdate) -> Result<Account> {
        const CTX: &str = "editing a profile";
        let account = self
            .account(id)
            .await?
            .ok_or(StoreError::NotFound("account"))?;
        let next = profile::apply(&account, update)?;
        if next == account {
            return Ok(next);
        }
        if next.profile != account.profile {
            let p = &next.profile;
            let fields: Vec<(&str, &str)> = p
                .fields
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_str()))
                .collect();
            let values = (
                db(id),
                p.discoverable,
                fields,
                p.privacy.as_str(),
                p.sensitive,
                p.language.as_deref(),
            );
            self.write(CTX, &self.st().profile_insert, values).await?;
        }
        self.write_account(CTX, &next).await?;
        Ok(next)
    }

    pub(super) async fn request_follow_(&self, follower: Id, followee: Id) -> Result<bool> {
        const CTX: &str = "asking to follow";
        check::distinct(follower, followee)?;
        let st = self.st();
        let pair = [db(followee)];
        let (_, blocked, following) = futures::try_join!(
            self.require_accounts([follower, followee]),
            self.blocked_either_way(follower, followee),
            self.among::<(i64,)>(CTX, &st.following_among, follower, &pair),
        )?;
        if blocked {
            return Err(StoreError::Forbidden(
                "a block stands between these accounts",
            ));
        }
        if !following.is_empty() {
            return Ok(false);
        }
        let values = (db(followee), db(follower), ms(now_ms()));
        if !self
            .lwt(CTX, &st.follow_request_claim, values)
            .await?
            .applied
        {
            return Ok(false);
        }
        let values = (db(follower), db(followee));
        self.write(CTX, &st.follow_request_sent_insert, values)
            .await?;
        Ok(true)
    }

    pub(super) async fn follow_requests_(&self, account: Id, window: Window) -> Result<Page<Id>> {
        check::window(&window)?;
        self.ids_page(
            "reading follow requests",
            &self.st().follow_requests_page,
            account,
            window,
        )
        .await
    }

    /// Take `requester`'s pending request to follow `account`; true for the one caller
    /// whose take applied.
    pub(super) async fn withdraw(&self, requester: Id, account: Id) -> Result<bool> {
        const CTX: &str = "deciding a follow request";
        let st = self.st();
        let key = (db(account), db(requester));
        // Spares the conditional delete when there is nothing to take (most unfollows).
        if !self.exists(CTX, &st.follow_request_get, key).await? {
            // A flag left by a crash after a take would otherwise stay forever.
            let sent = (db(requester), db(account));
            self.write(CTX, &st.follow_request_sent_delete, sent)
                .await?;
            return Ok(false);
        }
        let taken = self.lwt(CTX, &st.follow_request_take, key).await?.applied;
        let sent = (db(requester), db(account));
        self.write(CTX, &st.follow_request_sent_delete, sent)
            .await?;
        Ok(taken)
    }

    pub(super) async fn decide_follow_request(
        &self,
        account: Id,
        requester: Id,
        accept: bool,
    ) -> Result<bool> {
        if !self.withdraw(requester, account).await? {
            return Ok(false);
        }
        if accept {
            self.set_follow(requester, account, true).await?;
        }
        Ok(true)
    }

    pub(super) async fn set_conversation_muted(
        &self,
        account: Id,
        root: Id,
        muted: bool,
    ) -> Result<bool> {
        const CTX: &str = "muting a conversation";
        let st = self.st();
        let key = (db(account), db(root));
        if muted {
            self.require_accounts([account]).await?;
            Ok(self
                .lwt(CTX, &st.conversation_mute_claim, key)
                .await?
                .applied)
        } else {
            Ok(self
                .lwt(CTX, &st.conversation_mute_release, key)
                .await?
                .applied)
        }
    }

    pub(super) async fn muted_conversations_(
        &self,
        account: Id,
        roots: &[Id],
    ) -> Result<Vec<bool>> {
        check::batch(roots.len())?;
        let ids: Vec<i64> = roots.iter().copied().map(db).collect();
        let muted: std::collections::HashSet<i64> = self
            .among::<(i64,)>(
                "reading muted conversations",
                &self.st().conversation_mutes_among,
                account,
                &ids,
            )
            .await?
            .into_iter()
            .map(|(r,)| r)
            .collect();
        Ok(ids.iter().map(|r| muted.contains(r)).collect())
    }

    /// Every pending request to or from `id`, its profile and muted threads, for deleting
    /// the account.
    pub(super) async fn withdraw_all(&self, id: Id) -> Result<()> {
        const CTX: &str = "deleting an account's follow requests";
        let st = self.st();
        let (incoming, outgoing) = futures::try_join!(
            self.rows::<(i64,)>(CTX, &st.follow_requests_all, (db(id),)),
            self.rows::<(i64,)>(CTX, &st.follow_requests_sent_all, (db(id),)),
        )?;
        for (requester,) in incoming {
            self.withdraw(exec::id(requester), id).await?;
        }
        for (account,) in outgoing {
            self.withdraw(id, exec::id(account)).await?;
        }
        futures::try_join!(
            self.write(CTX, &st.profile_delete, (db(id),)),
            self.write(CTX, &st.conversation_mutes_delete, (db(id),)),
        )?;
        Ok(())
    }
}
