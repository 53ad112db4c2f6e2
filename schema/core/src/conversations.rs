//! Direct conversations (issue 13): direct posts grouped by who takes part in them, kept per
//! participant (Mastodon's `AccountConversation`).
//!
//! A conversation is the set of its participants: a direct post's author and the accounts
//! it mentions. Its id is a digest of that set, so every participant, node and backend
//! names it alike without coordinating. Each participant keeps their own view of it
//! ([`ConversationState`]): its newest post, whether it is unread, and whether they removed
//! it. The rules for changing a view live here once; both store backends only persist what
//! they decide.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Id;
use crate::model::{Post, Visibility};

/// One participant's view of a conversation, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The same for every participant (see [`conversation_id`]).
    pub id: Id,
    /// Whose view this is.
    pub account_id: Id,
    /// Everyone taking part, `account_id` included, by id.
    pub participants: Vec<Id>,
    pub last_status_id: Id,
    pub unread: bool,
}

impl Conversation {
    /// The accounts shown beside the viewer (Mastodon's `accounts`): the other participants,
    /// or the viewer alone in a conversation with themself.
    pub fn others(&self) -> Vec<Id> {
        let others: Vec<Id> = self
            .participants
            .iter()
            .copied()
            .filter(|p| *p != self.account_id)
            .collect();
        if others.is_empty() {
            vec![self.account_id]
        } else {
            others
        }
    }
}

/// Whether `post` belongs to a conversation: direct originals only.
pub fn is_conversational(post: &Post) -> bool {
    post.visibility == Visibility::Direct && post.reblog_of.is_none()
}

/// Who takes part in the conversation of a post by `author` mentioning `mentions`: the
/// author and every mentioned account, by id, once each.
pub fn participants(author: Id, mentions: &[Id]) -> Vec<Id> {
    let mut all = Vec::with_capacity(mentions.len() + 1);
    all.push(author);
    all.extend_from_slice(mentions);
    all.sort_unstable();
    all.dedup();
    all
}

/// The id of the conversation among `participants` (sorted, distinct, as [`participants`]
/// makes them): the first 63 bits of a SHA-256 of their ids, never 0. Stable across nodes,
/// versions and backends; finding another set with the same id takes about 2^63 tries.
pub fn conversation_id(participants: &[Id]) -> Id {
    let mut digest = Sha256::new();
    digest.update(b"starling.conversation.v1");
    for p in participants {
        digest.update(p.to_be_bytes());
    }
    let hash = digest.finalize();
    let id = Id::from_be_slice(&hash).map_or(1, |id| id.0 & (i64::MAX as u64));
    Id(id.max(1))
}

/// What a participant's view of a conversation holds between changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Everyone taking part, by id.
    pub participants: Vec<Id>,
    /// The newest post of the conversation this participant received.
    pub last_status_id: Id,
    pub unread: bool,
    /// The participant removed the conversation when this was its newest post: it shows
    /// again only once a newer post arrives.
    #[serde(default)]
    pub removed_through: Option<Id>,
}

impl ConversationState {
    /// Whether the participant sees it in their conversations.
    pub fn visible(&self) -> bool {
        self.removed_through
            .is_none_or(|through| self.last_status_id > through)
    }

    /// The view the API shows, if it is visible.
    pub fn view(&self, id: Id, account: Id) -> Option<Conversation> {
        self.visible().then(|| Conversation {
            id,
            account_id: account,
            participants: self.participants.clone(),
            last_status_id: self.last_status_id,
            unread: self.unread,
        })
    }

    /// The state after `post` (with `participants`) reached the participant; `unread` when
    /// someone else wrote it. `None` when nothing changes: the post is not newer than what
    /// the view shows, or the participant removed the conversation after it (a replayed
    /// event changes nothing).
    pub fn with_post(
        current: Option<&ConversationState>,
        participants: &[Id],
        post: Id,
        unread: bool,
    ) -> Option<ConversationState> {
        match current {
            None => Some(ConversationState {
                participants: participants.to_vec(),
                last_status_id: post,
                unread,
                removed_through: None,
            }),
            Some(s) if post <= s.last_status_id || s.removed_through.is_some_and(|r| post <= r) => {
                None
            }
            Some(s) => Some(ConversationState {
                participants: participants.to_vec(),
                last_status_id: post,
                unread,
                removed_through: s.removed_through,
            }),
        }
    }

    /// The state after `post` was deleted, where `previous` is the participant's newest
    /// other post of the conversation after what they removed. `None` when nothing changes.
    pub fn without_post(&self, post: Id, previous: Option<Id>) -> Option<ConversationState> {
        if post != self.last_status_id || !self.visible() {
            return None;
        }
        Some(match previous {
            Some(previous) => ConversationState {
                last_status_id: previous,
                ..self.clone()
            },
            // Nothing left to show: hidden until a new post arrives.
            None => ConversationState {
                removed_through: Some(post),
                ..self.clone()
            },
        })
    }

    /// Marked read; `None` if it is not visible (not found, to the participant).
    pub fn read(&self) -> Option<ConversationState> {
        self.visible().then(|| ConversationState {
            unread: false,
            ..self.clone()
        })
    }

    /// Removed by the participant; `None` if it is not visible.
    pub fn removed(&self) -> Option<ConversationState> {
        self.visible().then(|| ConversationState {
            removed_through: Some(self.last_status_id),
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Id = Id(1 << 16);
    const B: Id = Id(2 << 16);
    const C: Id = Id(3 << 16);

    #[test]
    fn a_conversation_is_its_participants_whoever_writes() {
        let from_a = participants(A, &[C, B, B]);
        let from_c = participants(C, &[A, B]);
        assert_eq!(from_a, vec![A, B, C]);
        assert_eq!(conversation_id(&from_a), conversation_id(&from_c));
        assert_ne!(
            conversation_id(&from_a),
            conversation_id(&participants(A, &[B]))
        );
        let id = conversation_id(&from_a);
        assert!(id.0 > 0 && id.0 <= i64::MAX as u64, "fits a CQL bigint");
        // Pinned: the id must never change between versions, or stored views are lost.
        assert_eq!(
            conversation_id(&participants(B, &[A])),
            Id(2_451_017_710_882_625_559)
        );
    }

    #[test]
    fn others_are_everyone_but_the_viewer() {
        let c = Conversation {
            id: Id(9),
            account_id: A,
            participants: vec![A, B, C],
            last_status_id: Id(5),
            unread: true,
        };
        assert_eq!(c.others(), vec![B, C]);
        let alone = Conversation {
            participants: vec![A],
            ..c
        };
        assert_eq!(alone.others(), vec![A]);
    }

    #[test]
    fn views_change_by_the_rules() {
        let ps = [A, B];
        let first = ConversationState::with_post(None, &ps, Id(10), true).unwrap();
        assert!(first.visible() && first.unread);
        // Older or the same post again: nothing changes (replays are idempotent).
        assert_eq!(
            ConversationState::with_post(Some(&first), &ps, Id(10), true),
            None
        );
        assert_eq!(
            ConversationState::with_post(Some(&first), &ps, Id(9), true),
            None
        );
        let read = first.read().unwrap();
        assert!(!read.unread);
        assert_eq!(
            ConversationState::with_post(Some(&read), &ps, Id(10), true),
            None,
            "a replay does not make it unread again"
        );
        // Own reply: newest, read.
        let own = ConversationState::with_post(Some(&read), &ps, Id(12), false).unwrap();
        assert_eq!((own.last_status_id, own.unread), (Id(12), false));
        // Removed: hidden, and a replay of an older post keeps it hidden.
        let gone = own.removed().unwrap();
        assert!(!gone.visible());
        assert_eq!(gone.read(), None);
        assert_eq!(gone.removed(), None);
        assert_eq!(
            ConversationState::with_post(Some(&gone), &ps, Id(11), true),
            None
        );
        // A new post brings it back.
        let back = ConversationState::with_post(Some(&gone), &ps, Id(20), true).unwrap();
        assert!(back.visible() && back.unread);
        // Deleting the newest post falls back to the previous one, or hides it.
        let fell = back.without_post(Id(20), Some(Id(15))).unwrap();
        assert_eq!(fell.last_status_id, Id(15));
        assert!(fell.visible());
        assert_eq!(back.without_post(Id(15), None), None, "not the newest");
        let empty = back.without_post(Id(20), None).unwrap();
        assert!(!empty.visible());
        assert_eq!(
            ConversationState::with_post(Some(&empty), &ps, Id(20), true),
            None,
            "the deleted post's replay does not revive it"
        );
        assert_eq!(back.view(Id(7), A).map(|v| v.last_status_id), Some(Id(20)));
        assert_eq!(gone.view(Id(7), A), None);
    }
}
