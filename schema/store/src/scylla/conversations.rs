//! Direct conversations on ScyllaDB (`schema/cql/011_conversations.cql`). The rules are
//! `starling_schema::conversations::ConversationState`'s; a view changes only by a
//! compare-and-set on its newest post, retried on a lost race, and its index entry in
//! `conversations_by_last` is written before the change and the old one deleted after it,
//! so readers, which skip entries that do not match their view, never miss a view.

use starling_schema::Id;
use starling_schema::conversations::{Conversation, ConversationState, conversation_id};
use starling_schema::model::{Page, Window};

use super::ScyllaStore;
use super::exec::{db, each, id};
use crate::{Result, StoreError};

/// Compare-and-set attempts before a change gives up (each loses only to a concurrent
/// change of the same view).
const RETRIES: usize = 16;

type StateRow = (Option<Vec<i64>>, i64, Option<bool>, Option<i64>);

fn from_row((participants, last, unread, removed): StateRow) -> ConversationState {
    ConversationState {
        participants: participants
            .unwrap_or_default()
            .into_iter()
            .map(id)
            .collect(),
        last_status_id: id(last),
        unread: unread.unwrap_or(false),
        removed_through: removed.map(id),
    }
}

fn busy() -> StoreError {
    StoreError::Conflict("the conversation is being changed concurrently; try again".into())
}

impl ScyllaStore {
    async fn conversation_state(
        &self,
        context: &'static str,
        account: Id,
        conversation: Id,
    ) -> Result<Option<ConversationState>> {
        let row: Option<StateRow> = self
            .row(
                context,
                &self.st().conversation_get,
                (db(account), db(conversation)),
            )
            .await?;
        Ok(row.map(from_row))
    }

    /// Replace `old` with `new` if the view still is `old`; false when another change won.
    async fn swap_conversation(
        &self,
        context: &'static str,
        account: Id,
        conversation: Id,
        old: Option<&ConversationState>,
        new: &ConversationState,
    ) -> Result<bool> {
        let st = self.st();
        let (a, c) = (db(account), db(conversation));
        if new.visible() {
            self.write(
                context,
                &st.conversation_last_insert,
                (a, db(new.last_status_id), c),
            )
            .await?;
        }
        let participants: Vec<i64> = new.participants.iter().map(|p| db(*p)).collect();
        let applied = match old {
            None => {
                let values = (a, c, participants, db(new.last_status_id), new.unread);
                self.lwt(context, &st.conversation_create, values).await?
            }
            Some(old) => {
                let values = (
                    participants,
                    db(new.last_status_id),
                    new.unread,
                    new.removed_through.map(db),
                    a,
                    c,
                    db(old.last_status_id),
                );
                self.lwt(context, &st.conversation_update, values).await?
            }
        }
        .applied;
        // A lost race leaves the entry written above: readers skip it unless it becomes
        // the view's again, and another writer of the same post may need it.
        if !applied {
            return Ok(false);
        }
        if let Some(old) = old
            && old.visible()
            && (!new.visible() || old.last_status_id != new.last_status_id)
        {
            self.write(
                context,
                &st.conversation_last_delete,
                (a, db(old.last_status_id), c),
            )
            .await?;
        }
        Ok(true)
    }

    pub(super) async fn converse(
        &self,
        account: Id,
        participants: &[Id],
        post: Id,
        unread: bool,
    ) -> Result<Option<Conversation>> {
        const CTX: &str = "adding to a conversation";
        self.require_accounts([account]).await?;
        let conversation = conversation_id(participants);
        self.write(
            CTX,
            &self.st().conversation_post_insert,
            (db(account), db(conversation), db(post)),
        )
        .await?;
        for _ in 0..RETRIES {
            let old = self.conversation_state(CTX, account, conversation).await?;
            let Some(new) = ConversationState::with_post(old.as_ref(), participants, post, unread)
            else {
                return Ok(None);
            };
            if self
                .swap_conversation(CTX, account, conversation, old.as_ref(), &new)
                .await?
            {
                return Ok(new.view(conversation, account));
            }
        }
        Err(busy())
    }

    pub(super) async fn unconverse(
        &self,
        account: Id,
        conversation: Id,
        post: Id,
    ) -> Result<Option<Conversation>> {
        const CTX: &str = "removing from a conversation";
        let st = self.st();
        self.write(
            CTX,
            &st.conversation_post_delete,
            (db(account), db(conversation), db(post)),
        )
        .await?;
        for _ in 0..RETRIES {
            let Some(old) = self.conversation_state(CTX, account, conversation).await? else {
                return Ok(None);
            };
            let floor = old.removed_through.map_or(0, |r| db(r).saturating_add(1));
            let previous: Option<(i64,)> = self
                .row(
                    CTX,
                    &st.conversation_post_newest,
                    (db(account), db(conversation), floor, 1i32),
                )
                .await?;
            let Some(new) = old.without_post(post, previous.map(|(p,)| id(p))) else {
                return Ok(None);
            };
            if self
                .swap_conversation(CTX, account, conversation, Some(&old), &new)
                .await?
            {
                return Ok(new.view(conversation, account));
            }
        }
        Err(busy())
    }

    pub(super) async fn conversations_page(
        &self,
        account: Id,
        window: Window,
    ) -> Result<Page<Conversation>> {
        const CTX: &str = "reading conversations";
        let entries = self
            .window(
                CTX,
                self.st().conversations_page.pick(window.order),
                account,
                window,
                |(last, conversation): (i64, i64)| Ok((id(last), id(conversation))),
                |(last, _)| *last,
            )
            .await?;
        let views = each(entries.items, |(last, conversation)| async move {
            let state = self.conversation_state(CTX, account, conversation).await?;
            Ok(state
                .filter(|s| s.last_status_id == last)
                .and_then(|s| s.view(conversation, account)))
        })
        .await?;
        Ok(Page {
            items: views.into_iter().flatten().collect(),
            next: entries.next,
        })
    }

    pub(super) async fn conversation_of(
        &self,
        account: Id,
        conversation: Id,
    ) -> Result<Option<Conversation>> {
        Ok(self
            .conversation_state("reading a conversation", account, conversation)
            .await?
            .and_then(|s| s.view(conversation, account)))
    }

    /// Apply `change` to `account`'s view of `conversation`, if it has one; the view after.
    pub(super) async fn change_conversation(
        &self,
        account: Id,
        conversation: Id,
        change: fn(&ConversationState) -> Option<ConversationState>,
    ) -> Result<Option<ConversationState>> {
        const CTX: &str = "changing a conversation";
        for _ in 0..RETRIES {
            let Some(old) = self.conversation_state(CTX, account, conversation).await? else {
                return Ok(None);
            };
            let Some(new) = change(&old) else {
                return Ok(None);
            };
            if self
                .swap_conversation(CTX, account, conversation, Some(&old), &new)
                .await?
            {
                return Ok(Some(new));
            }
        }
        Err(busy())
    }

    /// Forget every conversation of `account`'s (the account is deleted).
    pub(super) async fn forget_conversations(&self, account: Id) -> Result<()> {
        const CTX: &str = "deleting an account's conversations";
        let st = self.st();
        let all: Vec<(i64,)> = self
            .rows(CTX, &st.conversations_all, (db(account),))
            .await?;
        each(all, |(conversation,)| {
            self.write(
                CTX,
                &st.conversation_posts_delete,
                (db(account), conversation),
            )
        })
        .await?;
        self.write(CTX, &st.conversations_last_delete, (db(account),))
            .await?;
        self.write(CTX, &st.conversations_delete, (db(account),))
            .await
    }
}
