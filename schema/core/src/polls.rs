//! Polls and post edits: what a poll is, what an edit supplies and what history keeps, and
//! the rules both store backends apply alike (a poll's shape, who may vote what, when it
//! has ended). Plain data and pure functions; no I/O.
//!
//! A poll belongs to one post (`Post::poll_id`). Its votes are one set of choices per
//! account, given once; its results are counted per option, with the number of voters.
//! Editing a post's poll into a different question (other options, or single/multiple
//! choice changed) makes a new poll with a new id and no votes, as Mastodon resets votes.

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::ids::Id;
use crate::model::{NewPost, Post};
use crate::settings::Limits;

/// What the author supplies for a poll.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPoll {
    pub options: Vec<String>,
    pub expires_in_secs: u64,
    pub multiple: bool,
    pub hide_totals: bool,
}

/// A poll as stored: the question and its end; its results are [`PollCounts`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Poll {
    pub id: Id,
    pub post_id: Id,
    pub author_id: Id,
    pub options: Vec<String>,
    pub multiple: bool,
    pub hide_totals: bool,
    pub expires_at_ms: u64,
    pub created_at_ms: u64,
    /// Votes per option, in option order, and how many accounts voted.
    #[serde(default)]
    pub votes: Vec<u64>,
    #[serde(default)]
    pub voters: u64,
}

impl Poll {
    /// The poll `new` describes, for post `post_id` by `author_id`, made at `now_ms`.
    pub fn from_new(id: Id, post_id: Id, author_id: Id, new: &NewPoll, now_ms: u64) -> Poll {
        Poll {
            id,
            post_id,
            author_id,
            options: new.options.clone(),
            multiple: new.multiple,
            hide_totals: new.hide_totals,
            expires_at_ms: now_ms.saturating_add(new.expires_in_secs.saturating_mul(1000)),
            created_at_ms: now_ms,
            votes: vec![0; new.options.len()],
            voters: 0,
        }
    }

    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms <= now_ms
    }

    /// Whether `new` asks the same question (same options, same single or multiple choice):
    /// an edit that does keeps the poll and its votes.
    pub fn same_question(&self, new: &NewPoll) -> bool {
        self.options == new.options && self.multiple == new.multiple
    }

    /// Counts in option order, padded to the number of options.
    pub fn votes_per_option(&self) -> Vec<u64> {
        let mut v = self.votes.clone();
        v.resize(self.options.len(), 0);
        v
    }

    pub fn votes_count(&self) -> u64 {
        self.votes.iter().sum()
    }
}

/// Why a vote is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VoteRefusal {
    #[error("You cannot vote in your own poll")]
    OwnPoll,
    #[error("The poll has already ended")]
    Expired,
    #[error("You have already voted on this poll")]
    AlreadyVoted,
    #[error("choices can't be blank")]
    NoChoice,
    #[error("a choice is not one of the poll's options")]
    UnknownChoice,
    #[error("this poll takes one choice")]
    OneChoiceOnly,
}

/// The choices `voter` may record on `poll` at `now_ms`, sorted and without repeats, or why
/// not. Whether the voter voted already is the store's to decide (it claims the vote).
pub fn check_vote(
    poll: &Poll,
    voter: Id,
    choices: &[u32],
    now_ms: u64,
) -> Result<Vec<u32>, VoteRefusal> {
    if poll.author_id == voter {
        return Err(VoteRefusal::OwnPoll);
    }
    if poll.expired(now_ms) {
        return Err(VoteRefusal::Expired);
    }
    let mut chosen: Vec<u32> = choices.to_vec();
    chosen.sort_unstable();
    chosen.dedup();
    if chosen.is_empty() {
        return Err(VoteRefusal::NoChoice);
    }
    if chosen
        .iter()
        .any(|c| usize::try_from(*c).map_or(true, |c| c >= poll.options.len()))
    {
        return Err(VoteRefusal::UnknownChoice);
    }
    if !poll.multiple && chosen.len() > 1 {
        return Err(VoteRefusal::OneChoiceOnly);
    }
    Ok(chosen)
}

/// A poll's shape within the instance's limits (Mastodon's `PollValidator`): 2 to
/// `poll_max_options` distinct, non-blank options of at most `poll_max_option_chars`
/// characters, lasting `poll_min_expiration_secs` to `poll_max_expiration_secs`.
pub fn validate_new_poll(poll: &NewPoll, limits: &Limits) -> Result<(), Invalid> {
    let n = poll.options.len();
    if n < 2 {
        return Err(Invalid::new("poll", "must have at least 2 options"));
    }
    if n > limits.poll_max_options {
        return Err(Invalid::new(
            "poll",
            format!("must have at most {} options", limits.poll_max_options),
        ));
    }
    for option in &poll.options {
        if option.trim().is_empty() {
            return Err(Invalid::new("poll", "options can't be blank"));
        }
        if option.chars().count() > limits.poll_max_option_chars {
            return Err(Invalid::new(
                "poll",
                format!(
                    "options must be at most {} characters",
                    limits.poll_max_option_chars
                ),
            ));
        }
    }
    let mut distinct = poll.options.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != n {
        return Err(Invalid::new("poll", "options must be different"));
    }
    if poll.expires_in_secs < limits.poll_min_expiration_secs {
        return Err(Invalid::new(
            "poll",
            format!(
                "must last at least {} seconds",
                limits.poll_min_expiration_secs
            ),
        ));
    }
    if poll.expires_in_secs > limits.poll_max_expiration_secs {
        return Err(Invalid::new(
            "poll",
            format!(
                "must last at most {} seconds",
                limits.poll_max_expiration_secs
            ),
        ));
    }
    Ok(())
}

/// What an edit of a post supplies: its new text and settings, whole (what is left out
/// is cleared, as Mastodon's `PUT /api/v1/statuses/:id`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostEdit {
    pub text: String,
    pub spoiler_text: String,
    pub sensitive: bool,
    pub language: Option<String>,
    pub mentions: Vec<Id>,
    pub hashtags: Vec<String>,
    /// The attachments it carries from now on, in order: its own, or uploads not attached
    /// to another post.
    pub media_ids: Vec<Id>,
    /// Its poll from now on: the same question keeps the poll and its votes, another one
    /// makes a new poll; `None` removes it.
    pub poll: Option<NewPoll>,
}

impl PostEdit {
    /// The edit as a new post would be validated (text, tags, mentions, language).
    pub fn as_new_post(&self, author: Id) -> NewPost {
        NewPost {
            author_id: author,
            text: self.text.clone(),
            spoiler_text: self.spoiler_text.clone(),
            sensitive: self.sensitive,
            mentions: self.mentions.clone(),
            hashtags: self.hashtags.clone(),
            language: self.language.clone(),
            media_ids: self.media_ids.clone(),
            poll: self.poll.clone(),
            ..NewPost::default()
        }
    }
}

/// One version of a post in its edit history (Mastodon's `StatusEdit`): what it said from
/// `created_at_ms` until the next version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostVersion {
    pub post_id: Id,
    pub text: String,
    pub spoiler_text: String,
    pub sensitive: bool,
    pub language: Option<String>,
    pub mentions: Vec<Id>,
    pub hashtags: Vec<String>,
    pub media_ids: Vec<Id>,
    /// The poll's options in this version, if it had a poll.
    pub poll_options: Option<Vec<String>>,
    /// When this version was written: the post's creation for the first.
    pub created_at_ms: u64,
}

/// Why a post cannot be edited by someone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditRefusal {
    #[error("This action is not allowed")]
    NotTheAuthor,
    #[error("a reblog cannot be edited")]
    Reblog,
}

/// Whether `editor` may edit `post`: only its author, and never a reblog.
pub fn check_editable(post: &Post, editor: Id) -> Result<(), EditRefusal> {
    if post.author_id != editor {
        return Err(EditRefusal::NotTheAuthor);
    }
    if post.reblog_of.is_some() {
        return Err(EditRefusal::Reblog);
    }
    Ok(())
}

/// `post` as a version of its history, written at `at_ms`.
pub fn version_of(
    post: &Post,
    media_ids: Vec<Id>,
    poll_options: Option<Vec<String>>,
    at_ms: u64,
) -> PostVersion {
    PostVersion {
        post_id: post.id,
        text: post.text.clone(),
        spoiler_text: post.spoiler_text.clone(),
        sensitive: post.sensitive,
        language: post.language.clone(),
        mentions: post.mentions.clone(),
        hashtags: post.hashtags.clone(),
        media_ids,
        poll_options,
        created_at_ms: at_ms,
    }
}

/// `post` after `edit`, made at `now_ms`, with poll `poll_id` (what stays: id, author,
/// visibility, the reply it is, its creation time).
pub fn edited(post: &Post, edit: &PostEdit, poll_id: Option<Id>, now_ms: u64) -> Post {
    Post {
        text: edit.text.clone(),
        spoiler_text: edit.spoiler_text.clone(),
        sensitive: edit.sensitive,
        language: edit.language.clone(),
        mentions: edit.mentions.clone(),
        hashtags: edit.hashtags.clone(),
        // Strictly after creation and any earlier edit, whatever the clock says.
        edited_at_ms: Some(
            now_ms
                .max(post.created_at_ms + 1)
                .max(post.edited_at_ms.map_or(0, |e| e + 1)),
        ),
        poll_id,
        ..post.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits::default()
    }

    fn new(options: &[&str], secs: u64) -> NewPoll {
        NewPoll {
            options: options.iter().map(|s| s.to_string()).collect(),
            expires_in_secs: secs,
            multiple: false,
            hide_totals: false,
        }
    }

    #[test]
    fn poll_shapes_are_checked_as_mastodon_does() {
        let long = "x".repeat(51);
        let cases: &[(NewPoll, bool)] = &[
            (new(&["a", "b"], 300), true),
            (new(&["a", "b", "c", "d"], 86_400), true),
            (new(&["a"], 300), false),
            (new(&[], 300), false),
            (new(&["a", "b", "c", "d", "e"], 300), false),
            (new(&["a", &long], 300), false),
            (new(&["a", " "], 300), false),
            (new(&["a", "a"], 300), false),
            (new(&["a", "b"], 299), false),
            (new(&["a", "b"], 2_629_747), false),
        ];
        for (poll, ok) in cases {
            assert_eq!(validate_new_poll(poll, &limits()).is_ok(), *ok, "{poll:?}");
        }
    }

    #[test]
    fn votes_are_checked_against_the_poll() {
        let author = Id(1 << 16);
        let voter = Id(2 << 16);
        let mut poll = Poll::from_new(Id(9), Id(8), author, &new(&["a", "b", "c"], 300), 1_000);
        assert_eq!(check_vote(&poll, voter, &[1], 2_000), Ok(vec![1]));
        assert_eq!(
            check_vote(&poll, author, &[1], 2_000),
            Err(VoteRefusal::OwnPoll)
        );
        assert_eq!(
            check_vote(&poll, voter, &[1], 301_000),
            Err(VoteRefusal::Expired)
        );
        assert_eq!(
            check_vote(&poll, voter, &[], 2_000),
            Err(VoteRefusal::NoChoice)
        );
        assert_eq!(
            check_vote(&poll, voter, &[3], 2_000),
            Err(VoteRefusal::UnknownChoice)
        );
        assert_eq!(
            check_vote(&poll, voter, &[0, 2], 2_000),
            Err(VoteRefusal::OneChoiceOnly)
        );
        poll.multiple = true;
        assert_eq!(check_vote(&poll, voter, &[2, 0, 2], 2_000), Ok(vec![0, 2]));
    }

    #[test]
    fn the_same_question_keeps_the_poll() {
        let poll = Poll::from_new(Id(9), Id(8), Id(1), &new(&["a", "b"], 300), 0);
        assert!(poll.same_question(&new(&["a", "b"], 600)));
        assert!(!poll.same_question(&new(&["b", "a"], 300)));
        let mut multiple = new(&["a", "b"], 300);
        multiple.multiple = true;
        assert!(!poll.same_question(&multiple));
    }
}
