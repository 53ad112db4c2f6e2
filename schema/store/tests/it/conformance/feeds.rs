//! Conformance cases for lists and marks (schema version 9).

use starling_schema::feeds::{ListDraft, ListRef, MAX_PINS, MarkKind, RepliesPolicy};
use starling_schema::model::{Visibility, Window};
use starling_schema::{ErrorKind, Id};
use starling_store::Store;

use super::{Backend, kind, post, text, users};

fn draft(title: &str, replies_policy: RepliesPolicy, exclusive: bool) -> ListDraft {
    ListDraft {
        title: title.into(),
        replies_policy,
        exclusive,
    }
}

pub async fn lists_round_trip_update_and_delete<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "ls", 2).await;
    let (me, other) = (ids[0], ids[1]);
    let friends = s
        .create_list(me, draft("  friends ", RepliesPolicy::List, false))
        .await
        .unwrap();
    assert_eq!(friends.title, "friends");
    assert_eq!(friends.owner_id, me);
    let work = s
        .create_list(me, draft("work", RepliesPolicy::Followed, true))
        .await
        .unwrap();
    assert_eq!(
        s.lists_of(me).await.unwrap(),
        vec![friends.clone(), work.clone()]
    );
    assert!(s.lists_of(other).await.unwrap().is_empty());
    assert_eq!(
        kind(
            s.create_list(me, draft("   ", RepliesPolicy::None, false))
                .await
        ),
        ErrorKind::Invalid
    );
    let renamed = s
        .update_list(me, friends.id, draft("pals", RepliesPolicy::None, true))
        .await
        .unwrap();
    assert_eq!(
        (
            renamed.title.as_str(),
            renamed.replies_policy,
            renamed.exclusive
        ),
        ("pals", RepliesPolicy::None, true)
    );
    // Someone else's list is not found, for any change.
    assert_eq!(
        kind(
            s.update_list(other, friends.id, draft("mine", RepliesPolicy::None, false))
                .await
        ),
        ErrorKind::NotFound
    );
    assert!(!s.delete_list(other, friends.id).await.unwrap());
    assert!(s.delete_list(me, friends.id).await.unwrap());
    assert!(!s.delete_list(me, friends.id).await.unwrap());
    assert_eq!(s.lists_of(me).await.unwrap(), vec![work]);
}

pub async fn list_members_must_be_followed_and_are_found_by_member<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "lm", 4).await;
    let (me, a, c, stranger) = (ids[0], ids[1], ids[2], ids[3]);
    s.follow(me, a).await.unwrap();
    s.follow(me, c).await.unwrap();
    s.follow(c, a).await.unwrap();
    let list = s
        .create_list(me, draft("close", RepliesPolicy::Followed, false))
        .await
        .unwrap();
    let theirs = s
        .create_list(c, draft("theirs", RepliesPolicy::List, true))
        .await
        .unwrap();
    s.add_list_members(me, list.id, &[a, c]).await.unwrap();
    // Again: nothing changes.
    s.add_list_members(me, list.id, &[a]).await.unwrap();
    s.add_list_members(c, theirs.id, &[a]).await.unwrap();
    // An account the owner does not follow: refused, nothing written.
    assert_eq!(
        kind(s.add_list_members(me, list.id, &[stranger]).await),
        ErrorKind::Invalid
    );
    // Someone else's list.
    assert_eq!(
        kind(s.add_list_members(stranger, list.id, &[a]).await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(s.remove_list_members(stranger, list.id, &[a]).await),
        ErrorKind::NotFound
    );
    let mut want = vec![a, c];
    want.sort_unstable();
    assert_eq!(
        s.list_members(list.id, Window::oldest(10))
            .await
            .unwrap()
            .items,
        want
    );
    // By member, in owner order, sliced by owner.
    let mut holding = s.lists_with_member(a, None, None).await.unwrap();
    holding.sort_by_key(|r| r.owner_id);
    let mut expected = vec![ListRef::from(&list), ListRef::from(&theirs)];
    expected.sort_by_key(|r| r.owner_id);
    assert_eq!(holding, expected);
    assert_eq!(
        s.lists_with_member(a, Some(Id(me.0 - 1)), Some(me))
            .await
            .unwrap(),
        vec![ListRef::from(&list)]
    );
    assert_eq!(
        s.lists_with_member(a, Some(me), Some(me)).await.unwrap(),
        vec![]
    );
    // A policy change reaches the index fan-out reads.
    let changed = s
        .update_list(me, list.id, draft("close", RepliesPolicy::None, true))
        .await
        .unwrap();
    let mine = s
        .lists_with_member(c, Some(Id(me.0 - 1)), Some(me))
        .await
        .unwrap();
    assert_eq!(mine, vec![ListRef::from(&changed)]);
    // Unfollowing takes the account out of the follower's lists only.
    assert!(s.unfollow(me, a).await.unwrap());
    assert_eq!(
        s.list_members(list.id, Window::oldest(10))
            .await
            .unwrap()
            .items,
        vec![c]
    );
    assert_eq!(
        s.lists_with_member(a, None, None).await.unwrap(),
        vec![ListRef::from(&theirs)]
    );
    s.remove_list_members(me, list.id, &[c]).await.unwrap();
    assert!(
        s.list_members(list.id, Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.lists_with_member(c, None, None).await.unwrap().is_empty());
    // Deleting a list forgets its memberships.
    assert!(s.delete_list(c, theirs.id).await.unwrap());
    assert!(s.lists_with_member(a, None, None).await.unwrap().is_empty());
}

pub async fn bookmarks_and_favourites_are_listed_newest_kept_first<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "bm", 2).await;
    let (me, author) = (ids[0], ids[1]);
    let p1 = post(s, author, "one").await;
    let p2 = post(s, author, "two").await;
    let p3 = post(s, author, "three").await;
    // Kept in another order than posted: listed by when kept.
    for p in [&p2, &p1, &p3] {
        assert!(s.mark(MarkKind::Bookmark, me, p.id).await.unwrap());
    }
    assert!(!s.mark(MarkKind::Bookmark, me, p1.id).await.unwrap());
    let page = s
        .marks(MarkKind::Bookmark, me, Window::newest(2))
        .await
        .unwrap();
    let posts: Vec<Id> = page.items.iter().map(|m| m.post_id).collect();
    assert_eq!(posts, vec![p3.id, p1.id]);
    let rest = s
        .marks(MarkKind::Bookmark, me, page.next.expect("a second page"))
        .await
        .unwrap();
    assert_eq!(
        rest.items.iter().map(|m| m.post_id).collect::<Vec<_>>(),
        vec![p2.id]
    );
    assert!(rest.next.is_none());
    let flags = s.viewer_flags(me, &[p1.id]).await.unwrap();
    assert!(flags[0].bookmarked && !flags[0].pinned && !flags[0].favourited);
    assert!(s.unmark(MarkKind::Bookmark, me, p1.id).await.unwrap());
    assert!(!s.unmark(MarkKind::Bookmark, me, p1.id).await.unwrap());
    assert!(!s.viewer_flags(me, &[p1.id]).await.unwrap()[0].bookmarked);
    assert_eq!(
        kind(s.mark(MarkKind::Bookmark, me, Id(4242)).await),
        ErrorKind::NotFound
    );
    // Favourites are listed as they are made and undone.
    s.favourite(me, p1.id).await.unwrap();
    s.favourite(me, p3.id).await.unwrap();
    s.favourite(me, p2.id).await.unwrap();
    s.unfavourite(me, p3.id).await.unwrap();
    let faves: Vec<Id> = s
        .marks(MarkKind::Favourite, me, Window::newest(10))
        .await
        .unwrap()
        .items
        .iter()
        .map(|m| m.post_id)
        .collect();
    assert_eq!(faves, vec![p2.id, p1.id]);
    assert!(
        s.marks(MarkKind::Favourite, author, Window::newest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn pins_are_own_posts_five_at_most_and_leave_with_the_post<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "pn", 2).await;
    let (me, other) = (ids[0], ids[1]);
    let theirs = post(s, other, "not yours").await;
    assert_eq!(
        kind(s.mark(MarkKind::Pin, me, theirs.id).await),
        ErrorKind::Invalid
    );
    let direct = s
        .create_post(
            starling_schema::model::NewPost {
                visibility: Visibility::Direct,
                mentions: vec![other],
                ..text(me, "psst")
            },
            None,
        )
        .await
        .unwrap()
        .value;
    assert_eq!(
        kind(s.mark(MarkKind::Pin, me, direct.id).await),
        ErrorKind::Invalid
    );
    let mut mine = Vec::new();
    for i in 0..=MAX_PINS {
        mine.push(post(s, me, &format!("pin {i}")).await);
    }
    for p in &mine[..MAX_PINS] {
        assert!(s.mark(MarkKind::Pin, me, p.id).await.unwrap());
    }
    assert_eq!(
        kind(s.mark(MarkKind::Pin, me, mine[MAX_PINS].id).await),
        ErrorKind::Invalid
    );
    assert!(s.viewer_flags(me, &[mine[0].id]).await.unwrap()[0].pinned);
    // A deleted post is unpinned, which frees its place.
    s.delete_post(mine[0].id).await.unwrap();
    let pinned = s
        .marks(MarkKind::Pin, me, Window::newest(10))
        .await
        .unwrap()
        .items;
    assert_eq!(pinned.len(), MAX_PINS - 1);
    assert!(pinned.iter().all(|m| m.post_id != mine[0].id));
    assert!(s.mark(MarkKind::Pin, me, mine[MAX_PINS].id).await.unwrap());
    assert!(s.unmark(MarkKind::Pin, me, mine[1].id).await.unwrap());
    assert_eq!(
        s.marks(MarkKind::Pin, me, Window::newest(10))
            .await
            .unwrap()
            .items
            .len(),
        MAX_PINS - 1
    );
}

pub async fn followed_tags_are_kept_both_ways_and_bounded<B: Backend>(b: &B) {
    let s = b.store();
    let ids = users(s, "ft", 5).await;
    for id in &ids[1..] {
        assert!(s.follow_tag(*id, "rust").await.unwrap());
    }
    assert!(!s.follow_tag(ids[1], "rust").await.unwrap());
    assert!(s.follow_tag(ids[1], "zig").await.unwrap());
    assert!(s.follow_tag(ids[1], "ada").await.unwrap());
    assert_eq!(
        s.followed_tags(ids[1]).await.unwrap(),
        vec!["ada", "rust", "zig"]
    );
    assert!(s.followed_tags(ids[0]).await.unwrap().is_empty());
    // Paged like an author's followers.
    let page = s.tag_followers("rust", Window::oldest(3)).await.unwrap();
    assert_eq!(page.items, ids[1..4].to_vec());
    let rest = s
        .tag_followers("rust", page.next.expect("more"))
        .await
        .unwrap();
    assert_eq!(rest.items, vec![ids[4]]);
    assert!(rest.next.is_none());
    assert!(
        s.tag_followers("ru", Window::oldest(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(s.unfollow_tag(ids[2], "rust").await.unwrap());
    assert!(!s.unfollow_tag(ids[2], "rust").await.unwrap());
    assert!(
        !s.tag_followers("rust", Window::oldest(10))
            .await
            .unwrap()
            .items
            .contains(&ids[2])
    );
    // A tag of 10,000 characters, an empty one.
    let long = "t".repeat(10_000);
    assert_eq!(kind(s.follow_tag(ids[0], &long).await), ErrorKind::Invalid);
    assert_eq!(kind(s.follow_tag(ids[0], "").await), ErrorKind::Invalid);
    assert_eq!(
        kind(s.tag_followers(&long, Window::oldest(1)).await),
        ErrorKind::Invalid
    );
    assert_eq!(
        kind(s.follow_tag(Id(777), "rust").await),
        ErrorKind::NotFound
    );
    // Deleting the account forgets its tags.
    assert!(s.delete_account(ids[1]).await.unwrap());
    assert!(
        !s.tag_followers("zig", Window::oldest(10))
            .await
            .unwrap()
            .items
            .contains(&ids[1])
    );
}
