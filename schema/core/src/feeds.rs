//! Feeds beyond home (issue 13): lists and what an account keeps of posts (bookmarks,
//! favourites, pins), with the rules that fan-out, rebuilds and both store backends share.

use serde::{Deserialize, Serialize};

use crate::Id;
use crate::error::Invalid;
use crate::model::{Post, Visibility};

/// Most lists one account may own.
pub const MAX_LISTS: usize = 50;
/// Most accounts one list may hold.
pub const MAX_LIST_MEMBERS: usize = 5_000;
pub const LIST_TITLE_MAX_CHARS: usize = 256;
/// Most posts one account may pin (Mastodon's limit).
pub const MAX_PINS: usize = 5;
/// Most hashtags one account may follow.
pub const MAX_FOLLOWED_TAGS: usize = 1_000;
/// Longest hashtag name, in characters.
pub const TAG_MAX_CHARS: usize = 100;

/// A hashtag name as the store keeps it (lower-cased by the caller, without `#`): not
/// empty, at most [`TAG_MAX_CHARS`], no NUL (the embedded store's key separator).
pub fn check_tag(tag: &str) -> Result<(), Invalid> {
    if tag.is_empty() || tag.contains('\0') || tag.chars().count() > TAG_MAX_CHARS {
        return Err(Invalid::new(
            "tag",
            format!("must be a hashtag of at most {TAG_MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Which replies by a list's members show in the list (Mastodon's `replies_policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepliesPolicy {
    /// Replies to anyone the owner follows.
    Followed,
    /// Replies to other members of the list (Mastodon's default).
    #[default]
    List,
    /// Replies to the owner only.
    None,
}

impl RepliesPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            RepliesPolicy::Followed => "followed",
            RepliesPolicy::List => "list",
            RepliesPolicy::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<RepliesPolicy> {
        Some(match s {
            "followed" => RepliesPolicy::Followed,
            "list" => RepliesPolicy::List,
            "none" => RepliesPolicy::None,
            _ => return None,
        })
    }
}

/// A list: a second home timeline of the owner's, fed with the posts of its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct List {
    pub id: Id,
    pub owner_id: Id,
    pub title: String,
    pub replies_policy: RepliesPolicy,
    /// Members' posts show in this list and leave the owner's home timeline.
    pub exclusive: bool,
}

/// What a list is created or updated with.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListDraft {
    pub title: String,
    pub replies_policy: RepliesPolicy,
    pub exclusive: bool,
}

impl ListDraft {
    /// The title trimmed and bounded; every backend checks before writing.
    pub fn validate(&self) -> Result<(), Invalid> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err(Invalid::new("title", "can't be blank"));
        }
        if title.chars().count() > LIST_TITLE_MAX_CHARS {
            return Err(Invalid::new(
                "title",
                format!("is too long (at most {LIST_TITLE_MAX_CHARS} characters)"),
            ));
        }
        Ok(())
    }

    /// The list this draft makes (title trimmed).
    pub fn build(self, id: Id, owner_id: Id) -> List {
        List {
            id,
            owner_id,
            title: self.title.trim().to_owned(),
            replies_policy: self.replies_policy,
            exclusive: self.exclusive,
        }
    }
}

/// One list that holds a given account, as fan-out needs it: where to write and what to
/// admit, without reading the list itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRef {
    pub owner_id: Id,
    pub list_id: Id,
    pub replies_policy: RepliesPolicy,
    pub exclusive: bool,
}

impl From<&List> for ListRef {
    fn from(l: &List) -> ListRef {
        ListRef {
            owner_id: l.owner_id,
            list_id: l.id,
            replies_policy: l.replies_policy,
            exclusive: l.exclusive,
        }
    }
}

/// Whether a post by a member of a list belongs in that list's timeline: home's reply
/// rule first ([`crate::policy::home_takes_reply`] with the owner as reader), then the
/// list's `replies_policy`: `followed` keeps what home keeps; `list` only replies to the
/// owner or to other members; `none` only replies to the owner. Posts that are not replies
/// to someone else always belong.
pub fn list_admits(
    policy: RepliesPolicy,
    post: &Post,
    owner: Id,
    follows_target: bool,
    target_in_list: bool,
) -> bool {
    if !crate::policy::home_takes_reply(post, owner, follows_target) {
        return false;
    }
    if post
        .in_reply_to_account_id
        .is_none_or(|to| to == post.author_id || to == owner)
    {
        return true;
    }
    match policy {
        RepliesPolicy::Followed => true,
        RepliesPolicy::List => target_in_list,
        RepliesPolicy::None => false,
    }
}

/// Whether `account` may pin `post` while `pinned` posts are pinned already (Mastodon's
/// `StatusPinValidator`): its own original, not direct, at most [`MAX_PINS`].
pub fn may_pin(post: &Post, account: Id, pinned: usize) -> Result<(), Invalid> {
    if post.reblog_of.is_some() {
        return Err(Invalid::new("status", "a reblog cannot be pinned"));
    }
    if post.author_id != account {
        return Err(Invalid::new("status", "you can only pin your own posts"));
    }
    if post.visibility == Visibility::Direct {
        return Err(Invalid::new("status", "a direct post cannot be pinned"));
    }
    if pinned >= MAX_PINS {
        return Err(Invalid::new(
            "status",
            format!("you can pin at most {MAX_PINS} posts"),
        ));
    }
    Ok(())
}

/// What an account keeps of posts, each listed newest kept first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkKind {
    Bookmark,
    Favourite,
    Pin,
}

impl MarkKind {
    pub const ALL: [MarkKind; 3] = [MarkKind::Bookmark, MarkKind::Favourite, MarkKind::Pin];

    pub fn as_str(self) -> &'static str {
        match self {
            MarkKind::Bookmark => "bookmark",
            MarkKind::Favourite => "favourite",
            MarkKind::Pin => "pin",
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            MarkKind::Bookmark => 1,
            MarkKind::Favourite => 2,
            MarkKind::Pin => 3,
        }
    }
}

/// A post an account kept, under the id of the keeping (pages run by it, newest first,
/// as Mastodon pages bookmarks and favourites by when they were made).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub id: Id,
    pub post_id: Id,
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: Id = Id(10);
    const OWNER: Id = Id(20);
    const MEMBER: Id = Id(30);
    const STRANGER: Id = Id(40);

    fn post(author: Id, visibility: Visibility, reblog_of: Option<Id>) -> Post {
        Post {
            id: Id(99),
            author_id: author,
            text: String::new(),
            spoiler_text: String::new(),
            sensitive: false,
            visibility,
            in_reply_to_id: None,
            in_reply_to_account_id: None,
            reblog_of,
            mentions: Vec::new(),
            hashtags: Vec::new(),
            language: None,
            created_at_ms: 0,
            edited_at_ms: None,
            poll_id: None,
        }
    }

    #[test]
    fn a_list_keeps_replies_by_its_policy() {
        use RepliesPolicy::{Followed, List as InList, None as Nobody};
        // (policy, reply_to, owner follows the target, target in the list, admitted)
        let cases = [
            (Followed, None, false, false, true),
            (InList, None, false, false, true),
            (Nobody, None, false, false, true),
            (Nobody, Some(AUTHOR), false, false, true),
            (Nobody, Some(OWNER), false, false, true),
            (InList, Some(OWNER), false, false, true),
            (Followed, Some(MEMBER), true, true, true),
            (InList, Some(MEMBER), true, true, true),
            (Nobody, Some(MEMBER), true, true, false),
            (Followed, Some(STRANGER), true, false, true),
            (InList, Some(STRANGER), true, false, false),
            (Nobody, Some(STRANGER), true, false, false),
            // Home's rule first: a reply to someone the owner does not follow never shows.
            (Followed, Some(STRANGER), false, false, false),
            (InList, Some(MEMBER), false, true, false),
        ];
        for (policy, reply_to, follows, in_list, want) in cases {
            let mut post = post(AUTHOR, Visibility::Public, None);
            post.in_reply_to_account_id = reply_to;
            assert_eq!(
                list_admits(policy, &post, OWNER, follows, in_list),
                want,
                "{policy:?} {reply_to:?} follows={follows} in_list={in_list}"
            );
        }
    }

    #[test]
    fn only_own_originals_not_direct_and_five_at_most_are_pinned() {
        // (post, pinned already, allowed)
        let cases = [
            (post(OWNER, Visibility::Public, None), 0, true),
            (post(OWNER, Visibility::Private, None), 4, true),
            (post(OWNER, Visibility::Unlisted, None), MAX_PINS, false),
            (post(OWNER, Visibility::Direct, None), 0, false),
            (post(AUTHOR, Visibility::Public, None), 0, false),
            (post(OWNER, Visibility::Public, Some(Id(5))), 0, false),
        ];
        for (post, pinned, want) in cases {
            assert_eq!(
                may_pin(&post, OWNER, pinned).is_ok(),
                want,
                "{post:?} {pinned}"
            );
        }
    }

    #[test]
    fn tags_are_bounded() {
        let long = "t".repeat(TAG_MAX_CHARS + 1);
        for (tag, ok) in [
            ("rust", true),
            ("", false),
            ("a\0b", false),
            (long.as_str(), false),
        ] {
            assert_eq!(check_tag(tag).is_ok(), ok, "{tag:?}");
        }
    }

    #[test]
    fn list_titles_are_checked() {
        let draft = |t: &str| ListDraft {
            title: t.to_owned(),
            ..ListDraft::default()
        };
        assert!(draft("friends").validate().is_ok());
        assert!(draft("   ").validate().is_err());
        assert!(
            draft(&"x".repeat(LIST_TITLE_MAX_CHARS + 1))
                .validate()
                .is_err()
        );
        assert_eq!(draft("  pals ").build(Id(1), Id(2)).title, "pals");
        for p in ["followed", "list", "none"] {
            assert_eq!(RepliesPolicy::parse(p).map(RepliesPolicy::as_str), Some(p));
        }
        assert_eq!(RepliesPolicy::parse("all"), None);
    }
}
