//! Who may see a post: one policy, decided here and nowhere else.
//!
//! Fan-out, timeline and list rebuilds, hydration, streaming, search, every single-status
//! route and both store backends ask these functions; each part only gathers the facts (does
//! the viewer follow the author, who blocks or mutes whom, is the author suspended) the way
//! that is cheapest for it. The rules
//! are Mastodon's (`StatusPolicy`, `FeedManager#filter?`):
//!
//! - public and unlisted posts: anyone; private: the author's followers and the accounts it
//!   mentions; direct: the mentioned accounts only. The author always sees their own post.
//! - a suspended author's posts: no one.
//! - the author blocks the viewer: the viewer never sees the post, not even by its id (404).
//! - the viewer blocks or mutes the author: the post stays out of the viewer's feeds
//!   (home, lists, public and tag timelines, streams, search) and notifications, but can
//!   still be opened by its id.
//! - a reply to someone else reaches a home timeline only when the reader follows the
//!   account replied to (or is that account); a reply to oneself (a thread) reaches everyone
//!   who follows the author.

use crate::Id;
use crate::model::{Account, Post, Relationship, Visibility};

/// Where a post would be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Opened or acted on by its id: show, context, favourite, reblog, reply.
    Direct,
    /// A feed: home, lists, public and tag timelines, streams, search results.
    Feed,
    /// A notification about it.
    Notification,
}

/// What is known of the viewer and the post's author.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    pub follows_author: bool,
    pub author_blocks_viewer: bool,
    pub viewer_blocks_author: bool,
    pub viewer_mutes_author: bool,
    pub author_suspended: bool,
}

impl Relation {
    /// What a relationship read from the viewer's side says (suspension is not in it).
    pub fn from_relationship(r: &Relationship) -> Relation {
        Relation {
            follows_author: r.following,
            author_blocks_viewer: r.blocked_by,
            viewer_blocks_author: r.blocking,
            viewer_mutes_author: r.muting,
            author_suspended: false,
        }
    }
}

/// Whether the post's visibility lets `viewer` see it (the author, a mentioned account, a
/// follower of a private post), before blocks, mutes and suspension.
pub fn audience_includes(post: &Post, viewer: Option<Id>, follows_author: bool) -> bool {
    let involved = viewer.is_some_and(|v| v == post.author_id || post.mentions.contains(&v));
    match post.visibility {
        Visibility::Public | Visibility::Unlisted => true,
        Visibility::Private => involved || follows_author,
        Visibility::Direct => involved,
    }
}

/// Whether `viewer` (`None`: anonymous) may see `post` on `surface`.
pub fn may_see(post: &Post, viewer: Option<Id>, rel: &Relation, surface: Surface) -> bool {
    if rel.author_suspended {
        return false;
    }
    if viewer == Some(post.author_id) {
        return true;
    }
    if rel.author_blocks_viewer {
        return false;
    }
    if surface != Surface::Direct && (rel.viewer_blocks_author || rel.viewer_mutes_author) {
        return false;
    }
    audience_includes(post, viewer, rel.follows_author)
}

/// Whether a post reaches the home timeline of `reader`, a follower of its author, by the
/// reply rule: `follows_replied_to` is whether the reader follows the account the post
/// replies to. (Private and direct posts reach the accounts they mention by
/// [`delivery`], whatever they reply to.)
pub fn home_takes_reply(post: &Post, reader: Id, follows_replied_to: bool) -> bool {
    match post.in_reply_to_account_id {
        None => true,
        Some(to) if to == post.author_id || to == reader || reader == post.author_id => true,
        Some(_) => follows_replied_to,
    }
}

/// Who fan-out delivers a post to besides its author.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The author's followers (pages of them).
    pub followers: bool,
    /// The mentioned accounts, whether or not they follow the author.
    pub mentioned: bool,
}

/// Who fan-out delivers `post` to: public, unlisted and private posts to the author's
/// followers; private and direct posts also to the accounts they mention (a mention of a
/// public post reaches its account as a notification, not in home).
pub fn delivery(post: &Post) -> Delivery {
    Delivery {
        followers: post.visibility != Visibility::Direct,
        mentioned: matches!(post.visibility, Visibility::Private | Visibility::Direct),
    }
}

/// Whether a post belongs on the public and hashtag timelines: public originals only.
pub fn listed_publicly(post: &Post) -> bool {
    post.visibility == Visibility::Public && post.reblog_of.is_none()
}

/// Whether `account` may reblog `original` (the post itself, never a reblog wrapper): public
/// and unlisted posts by anyone, a private one only by its author (Mastodon's self-boost of a
/// followers-only post), a direct one by no one.
pub fn may_reblog(original: &Post, account: Id) -> bool {
    match original.visibility {
        Visibility::Public | Visibility::Unlisted => true,
        Visibility::Private => original.author_id == account,
        Visibility::Direct => false,
    }
}

/// Whether a post goes into the full-text index: public and unlisted originals. Private and
/// direct posts, and reblogs (which have no text of their own), are never indexed.
pub fn indexed(post: &Post) -> bool {
    matches!(post.visibility, Visibility::Public | Visibility::Unlisted) && post.reblog_of.is_none()
}

/// Whether search may find an indexed `post` for a viewer: public posts for anyone, unlisted
/// ones only for signed-in users (Mastodon keeps them out of public discovery).
pub fn found_by_search(post: &Post, signed_in: bool) -> bool {
    indexed(post) && (signed_in || post.visibility == Visibility::Public)
}

impl Relation {
    /// The relation as a feed knows it: whether the viewer follows the author, and whether
    /// a block (either way) or a mute keeps them apart. On [`Surface::Feed`] and
    /// [`Surface::Notification`] those act alike, so a part that keeps them as one set
    /// (fan-out, rebuilds, streams, search) states one fact. Not for [`Surface::Direct`],
    /// where only the author's block hides a post.
    pub fn in_feed(follows_author: bool, kept_apart: bool) -> Self {
        Relation {
            follows_author,
            viewer_blocks_author: kept_apart,
            ..Relation::default()
        }
    }
}

/// Whether `reader`'s home timeline (or a list of theirs, or their stream) takes `post`: the
/// reader may see it on a feed ([`may_see`]); for a reblog, may see its original too
/// (`original`: the original and the reader's relation to its author); and the reply rule
/// ([`home_takes_reply`]) admits it.
pub fn home_takes(
    post: &Post,
    reader: Id,
    rel: &Relation,
    original: Option<(&Post, &Relation)>,
    follows_replied_to: bool,
) -> bool {
    may_see(post, Some(reader), rel, Surface::Feed)
        && original.is_none_or(|(o, r)| may_see(o, Some(reader), r, Surface::Feed))
        && home_takes_reply(post, reader, follows_replied_to)
}

/// Whether a post counts toward trends, its hashtags and links and the post itself: a
/// public original ([`listed_publicly`]) by an account that is not suspended.
pub fn counts_for_trends(post: &Post, author: &Account) -> bool {
    listed_publicly(post) && !author.suspended && author.id == post.author_id
}

/// Whether a post may itself be shown among trending statuses (Mastodon's
/// `Trends::Statuses#eligible?`): it [`counts_for_trends`], its author lets themselves be
/// featured (`discoverable`), and it is not a reply, not sensitive and has no content
/// warning.
pub fn status_may_trend(post: &Post, author: &Account) -> bool {
    counts_for_trends(post, author)
        && author.profile.discoverable
        && post.in_reply_to_id.is_none()
        && !post.sensitive
        && post.spoiler_text.trim().is_empty()
}

/// Whether `candidate` may be suggested to someone to follow: not suspended and
/// discoverable (Mastodon suggests only accounts that opted into discovery).
pub fn may_suggest(candidate: &Account) -> bool {
    !candidate.suspended && candidate.profile.discoverable
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: Id = Id(1);
    const VIEWER: Id = Id(2);
    const OTHER: Id = Id(3);

    fn post(visibility: Visibility, mentions_viewer: bool) -> Post {
        Post {
            id: Id(100),
            author_id: AUTHOR,
            text: String::new(),
            spoiler_text: String::new(),
            sensitive: false,
            visibility,
            in_reply_to_id: None,
            in_reply_to_account_id: None,
            reblog_of: None,
            mentions: if mentions_viewer {
                vec![VIEWER]
            } else {
                vec![]
            },
            hashtags: Vec::new(),
            language: None,
            created_at_ms: 0,
            edited_at_ms: None,
            poll_id: None,
        }
    }

    /// visibility × following × mention × block either way × mute × suspension × surface.
    #[test]
    fn who_sees_a_post_where() {
        use Surface::{Direct, Feed, Notification};
        use Visibility::{Direct as Dm, Private, Public, Unlisted};
        let none = Relation::default();
        let follows = Relation {
            follows_author: true,
            ..none
        };
        let blocked = Relation {
            follows_author: true,
            author_blocks_viewer: true,
            ..none
        };
        let blocking = Relation {
            viewer_blocks_author: true,
            ..none
        };
        let muting = Relation {
            follows_author: true,
            viewer_mutes_author: true,
            ..none
        };
        let suspended = Relation {
            follows_author: true,
            author_suspended: true,
            ..none
        };
        // (visibility, mentions viewer, viewer, relation, surface, sees)
        let anon: Option<Id> = None;
        let me = Some(VIEWER);
        type Case = (Visibility, bool, Option<Id>, Relation, Surface, bool);
        let cases: &[Case] = &[
            (Public, false, anon, none, Feed, true),
            (Unlisted, false, anon, none, Direct, true),
            (Private, false, anon, none, Direct, false),
            (Dm, false, anon, none, Direct, false),
            (Public, false, me, none, Feed, true),
            (Private, false, me, none, Feed, false),
            (Private, false, me, follows, Feed, true),
            (Private, true, me, none, Feed, true),
            (Dm, false, me, follows, Feed, false),
            (Dm, true, me, none, Notification, true),
            // The author blocks the viewer: nowhere, not even by id.
            (Public, false, me, blocked, Direct, false),
            (Public, true, me, blocked, Notification, false),
            (Private, false, me, blocked, Feed, false),
            // The viewer blocks or mutes the author: out of feeds and notifications only.
            (Public, false, me, blocking, Feed, false),
            (Public, true, me, blocking, Notification, false),
            (Public, false, me, blocking, Direct, true),
            (Public, false, me, muting, Feed, false),
            (Public, true, me, muting, Notification, false),
            (Private, false, me, muting, Direct, true),
            // A suspended author: no one, whatever else holds.
            (Public, false, anon, suspended, Direct, false),
            (Public, true, me, suspended, Notification, false),
            (Private, false, me, suspended, Feed, false),
        ];
        for (i, (visibility, mentioned, viewer, rel, surface, sees)) in cases.iter().enumerate() {
            let p = post(*visibility, *mentioned);
            assert_eq!(
                may_see(&p, *viewer, rel, *surface),
                *sees,
                "case {i}: {visibility:?} mentioned={mentioned} {viewer:?} {rel:?} {surface:?}"
            );
        }
    }

    #[test]
    fn the_author_always_sees_their_own_post_unless_suspended() {
        for visibility in [
            Visibility::Public,
            Visibility::Unlisted,
            Visibility::Private,
            Visibility::Direct,
        ] {
            let p = post(visibility, false);
            for surface in [Surface::Direct, Surface::Feed, Surface::Notification] {
                assert!(may_see(&p, Some(AUTHOR), &Relation::default(), surface));
                let gone = Relation {
                    author_suspended: true,
                    ..Relation::default()
                };
                assert!(!may_see(&p, Some(AUTHOR), &gone, surface));
            }
        }
    }

    #[test]
    fn replies_reach_home_only_through_the_account_replied_to() {
        let reply_to = |to: Option<Id>, mentions: Vec<Id>| Post {
            in_reply_to_account_id: to,
            mentions,
            ..post(Visibility::Public, false)
        };
        // (post, reader, follows the replied-to account, takes it)
        let cases = [
            (reply_to(None, vec![]), VIEWER, false, true),
            (reply_to(Some(AUTHOR), vec![]), VIEWER, false, true),
            (reply_to(Some(OTHER), vec![OTHER]), VIEWER, false, false),
            (reply_to(Some(OTHER), vec![OTHER]), VIEWER, true, true),
            (reply_to(Some(VIEWER), vec![VIEWER]), VIEWER, false, true),
            // A mention does not let a public reply into home: it notifies instead.
            (
                reply_to(Some(OTHER), vec![OTHER, VIEWER]),
                VIEWER,
                false,
                false,
            ),
            (reply_to(Some(OTHER), vec![OTHER]), AUTHOR, false, true),
        ];
        for (i, (p, reader, follows, takes)) in cases.iter().enumerate() {
            assert_eq!(home_takes_reply(p, *reader, *follows), *takes, "case {i}");
        }
    }

    /// The home rule whole: visibility × following × mention × block or mute × suspension ×
    /// reply × a reblog's original.
    #[test]
    fn what_a_home_timeline_takes() {
        use Visibility::{Direct as Dm, Private, Public, Unlisted};
        let reply = |visibility, to: Id, mentions_viewer| Post {
            in_reply_to_account_id: Some(to),
            in_reply_to_id: Some(Id(50)),
            ..post(visibility, mentions_viewer)
        };
        let follows = Relation::in_feed(true, false);
        let stranger = Relation::in_feed(false, false);
        let apart = Relation::in_feed(true, true);
        let suspended = Relation {
            author_suspended: true,
            ..follows
        };
        let original = post(Public, false);
        // (post, relation, original's relation if a reblog, follows the replied-to, takes)
        type Case = (Post, Relation, Option<Relation>, bool, bool);
        let cases: Vec<Case> = vec![
            (post(Public, false), follows, None, false, true),
            (post(Unlisted, false), follows, None, false, true),
            (post(Private, false), follows, None, false, true),
            (post(Private, false), stranger, None, false, false),
            (post(Private, true), stranger, None, false, true),
            (post(Dm, false), follows, None, false, false),
            (post(Dm, true), stranger, None, false, true),
            (post(Public, false), apart, None, false, false),
            (
                post(Dm, true),
                Relation::in_feed(false, true),
                None,
                false,
                false,
            ),
            (post(Public, false), suspended, None, false, false),
            // Replies: to the author (a thread), to the reader, to someone the reader follows.
            (reply(Public, AUTHOR, false), follows, None, false, true),
            (reply(Public, VIEWER, true), follows, None, false, true),
            (reply(Public, OTHER, false), follows, None, false, false),
            (reply(Public, OTHER, false), follows, None, true, true),
            (reply(Private, OTHER, false), follows, None, true, true),
            (reply(Public, OTHER, false), apart, None, true, false),
            // A reblog: its original's author kept apart from the reader, or suspended.
            (post(Public, false), follows, Some(stranger), false, true),
            (post(Public, false), follows, Some(apart), false, false),
            (
                post(Public, false),
                follows,
                Some(Relation {
                    author_suspended: true,
                    ..stranger
                }),
                false,
                false,
            ),
        ];
        for (i, (p, rel, original_rel, follows_replied_to, takes)) in cases.iter().enumerate() {
            let original = original_rel.as_ref().map(|r| (&original, r));
            assert_eq!(
                home_takes(p, VIEWER, rel, original, *follows_replied_to),
                *takes,
                "case {i}: {:?} {rel:?} {original_rel:?}",
                p.visibility
            );
        }
    }

    #[test]
    fn search_finds_public_posts_for_anyone_and_unlisted_for_the_signed_in() {
        use Visibility::{Direct as Dm, Private, Public, Unlisted};
        let reblog = Post {
            reblog_of: Some(Id(7)),
            ..post(Public, false)
        };
        // (post, signed in, found)
        let cases = [
            (post(Public, false), false, true),
            (post(Public, false), true, true),
            (post(Unlisted, false), false, false),
            (post(Unlisted, false), true, true),
            (post(Private, false), true, false),
            (post(Dm, true), true, false),
            (reblog.clone(), true, false),
        ];
        for (i, (p, signed_in, found)) in cases.iter().enumerate() {
            assert_eq!(found_by_search(p, *signed_in), *found, "case {i}");
        }
        assert!(indexed(&post(Unlisted, false)));
        assert!(!indexed(&reblog));
    }

    #[test]
    fn who_may_reblog_what() {
        use Visibility::{Direct as Dm, Private, Public, Unlisted};
        // (visibility, reblogger, allowed)
        let cases = [
            (Public, VIEWER, true),
            (Unlisted, VIEWER, true),
            (Private, VIEWER, false),
            (Private, AUTHOR, true),
            (Dm, VIEWER, false),
            (Dm, AUTHOR, false),
        ];
        for (visibility, account, allowed) in cases {
            assert_eq!(
                may_reblog(&post(visibility, true), account),
                allowed,
                "{visibility:?} by {account:?}"
            );
        }
    }

    #[test]
    fn what_may_trend_and_who_may_be_suggested() {
        let author = |suspended: bool, discoverable: bool| {
            let mut a = Account::local(
                AUTHOR,
                "a".into(),
                String::new(),
                false,
                crate::model::Role::User,
            );
            a.suspended = suspended;
            a.profile.discoverable = discoverable;
            a
        };
        let public = post(Visibility::Public, false);
        let reply = Post {
            in_reply_to_id: Some(Id(9)),
            in_reply_to_account_id: Some(OTHER),
            ..public.clone()
        };
        let sensitive = Post {
            sensitive: true,
            ..public.clone()
        };
        let warned = Post {
            spoiler_text: "cw".into(),
            ..public.clone()
        };
        let reblog = Post {
            reblog_of: Some(Id(7)),
            ..public.clone()
        };
        // (post, suspended, discoverable, counts for tags and links, may trend itself)
        let cases = [
            (public.clone(), false, true, true, true),
            (public.clone(), false, false, true, false),
            (public.clone(), true, true, false, false),
            (post(Visibility::Unlisted, false), false, true, false, false),
            (post(Visibility::Private, false), false, true, false, false),
            (post(Visibility::Direct, true), false, true, false, false),
            (reblog, false, true, false, false),
            (reply, false, true, true, false),
            (sensitive, false, true, true, false),
            (warned, false, true, true, false),
        ];
        for (i, (p, suspended, discoverable, counts, trends)) in cases.iter().enumerate() {
            let a = author(*suspended, *discoverable);
            assert_eq!(counts_for_trends(p, &a), *counts, "case {i}: counts");
            assert_eq!(status_may_trend(p, &a), *trends, "case {i}: trends");
        }
        assert!(may_suggest(&author(false, true)));
        assert!(!may_suggest(&author(true, true)));
        assert!(!may_suggest(&author(false, false)));
    }

    #[test]
    fn fan_out_delivers_by_visibility() {
        let cases = [
            (Visibility::Public, true, false),
            (Visibility::Unlisted, true, false),
            (Visibility::Private, true, true),
            (Visibility::Direct, false, true),
        ];
        for (visibility, followers, mentioned) in cases {
            assert_eq!(
                delivery(&post(visibility, true)),
                Delivery {
                    followers,
                    mentioned
                },
                "{visibility:?}"
            );
        }
        let reblog = Post {
            reblog_of: Some(Id(7)),
            ..post(Visibility::Public, false)
        };
        assert!(listed_publicly(&post(Visibility::Public, false)));
        assert!(!listed_publicly(&post(Visibility::Unlisted, false)));
        assert!(!listed_publicly(&reblog));
    }
}
