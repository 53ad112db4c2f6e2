//! Reading a home timeline back from the store: the user's own posts and the recent posts of
//! everyone they follow, newest first, as fan-out would have delivered them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use starling_schema::Id;
use starling_schema::feeds::{List, list_admits};
use starling_schema::model::{NotificationKind, Post, Window};
use starling_schema::policy::{self, Relation, Surface};
use starling_store::{MAX_BATCH, MAX_PAGE, Store, StoreError, all_ids as all_pages};

/// Store reads in flight at once during one rebuild.
const CONCURRENCY: usize = 16;

/// The ids of the newest `cap` posts that belong in `user`'s home timeline, newest first.
///
/// Besides own and followed posts (and private or direct posts that mention the user, found
/// through their mention notifications), this applies the rules fan-out applies, asking the
/// visibility policy ([`policy::home_takes`]): direct posts reach only the accounts they
/// mention; muted accounts are left out; a reply to someone else reaches only those who
/// follow that account too; reblogs of posts whose author blocks, is blocked or muted by the
/// user (or whose original is gone) are dropped; and a reblog is dropped when its original,
/// or another reblog of it, is among the [`crate::REBLOG_WINDOW`] entries before it.
pub(crate) async fn newest_posts<S: Store>(
    store: &S,
    user: Id,
    cap: usize,
) -> Result<Vec<Id>, StoreError> {
    let muted: HashSet<Id> = all_pages(|w| store.mutes_of(user, w))
        .await?
        .into_iter()
        .collect();
    let followed: HashSet<Id> = all_pages(|w| store.following(user, w))
        .await?
        .into_iter()
        .collect();
    // Members of the user's exclusive lists show in those lists, not at home.
    let mut listed_away = HashSet::new();
    for list in store.lists_of(user).await?.iter().filter(|l| l.exclusive) {
        listed_away.extend(all_pages(|w| store.list_members(list.id, w)).await?);
    }
    let mut authors = vec![user];
    authors.extend(
        followed
            .iter()
            .copied()
            .filter(|a| *a != user && !muted.contains(a) && !listed_away.contains(a)),
    );
    let shown = |post: &Post| {
        let author = post.author_id;
        let rel = Relation::in_feed(followed.contains(&author), muted.contains(&author));
        let follows_replied_to = post
            .in_reply_to_account_id
            .is_some_and(|to| followed.contains(&to));
        post.id != Id::MIN && policy::home_takes(post, user, &rel, None, follows_replied_to)
    };
    // Those by followed accounts come with their authors' posts.
    let mut extra: Vec<Post> = mentioning(store, user, cap)
        .await?
        .into_iter()
        .filter(|p| !followed.contains(&p.author_id))
        .collect();
    extra.extend(tagged(store, user, &followed, cap).await?);
    newest_of(store, user, authors, shown, extra, cap).await
}

/// The newest public originals carrying the hashtags `user` follows, by accounts `user`
/// does not follow (fan-out delivered those by tag) and neither blocks nor mutes, nor is
/// blocked by.
async fn tagged<S: Store>(
    store: &S,
    user: Id,
    followed: &HashSet<Id>,
    cap: usize,
) -> Result<Vec<Post>, StoreError> {
    let window = Window::newest(cap.clamp(1, MAX_PAGE));
    let mut ids = Vec::new();
    for tag in store.followed_tags(user).await? {
        ids.extend(store.tagged_posts(&tag, window).await?.items);
    }
    ids.sort_unstable();
    ids.dedup();
    let posts: Vec<Post> = stream::iter(owned_chunks(&ids))
        .map(|ids| async move { store.posts_by_ids(&ids).await })
        .buffer_unordered(CONCURRENCY)
        .try_concat()
        .await?
        .into_iter()
        .filter(|p| p.author_id != user && !followed.contains(&p.author_id))
        .collect();
    let authors: Vec<Id> = posts
        .iter()
        .map(|p| p.author_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let shunned = shunned_by(store, user, &authors).await?;
    Ok(posts
        .into_iter()
        .filter(|p| !shunned.contains(&p.author_id))
        .collect())
}

/// The ids of the newest `cap` posts of list `list`, newest first: its members' posts that
/// the list's replies policy admits ([`list_admits`]), never direct posts nor posts of
/// accounts the owner mutes; reblogs as at home.
pub(crate) async fn newest_list_posts<S: Store>(
    store: &S,
    list: &List,
    cap: usize,
) -> Result<Vec<Id>, StoreError> {
    let owner = list.owner_id;
    let muted: HashSet<Id> = all_pages(|w| store.mutes_of(owner, w))
        .await?
        .into_iter()
        .collect();
    let followed: HashSet<Id> = all_pages(|w| store.following(owner, w))
        .await?
        .into_iter()
        .collect();
    let members: HashSet<Id> = all_pages(|w| store.list_members(list.id, w))
        .await?
        .into_iter()
        .collect();
    let authors: Vec<Id> = members
        .iter()
        .copied()
        .filter(|a| !muted.contains(a))
        .collect();
    let shown = |post: &Post| {
        let to = post.in_reply_to_account_id;
        let rel = Relation::in_feed(true, muted.contains(&post.author_id));
        // A list holds what fan-out gives followers: never a direct post.
        post.id != Id::MIN
            && policy::delivery(post).followers
            && policy::may_see(post, Some(owner), &rel, Surface::Feed)
            && list_admits(
                list.replies_policy,
                post,
                owner,
                to.is_some_and(|to| followed.contains(&to)),
                to.is_some_and(|to| members.contains(&to)),
            )
    };
    newest_of(store, owner, authors, shown, Vec::new(), cap).await
}

/// The newest `cap` of `authors`' posts that `shown` keeps, plus `extra` posts, as `user`
/// would see them (reblogs of hidden originals dropped, reblogs deduplicated), newest first.
async fn newest_of<S: Store>(
    store: &S,
    user: Id,
    authors: Vec<Id>,
    shown: impl Fn(&Post) -> bool,
    extra: Vec<Post>,
    cap: usize,
) -> Result<Vec<Id>, StoreError> {
    let per_author = Window::newest(cap.clamp(1, MAX_PAGE));
    let mut pages = stream::iter(authors)
        .map(|author| store.posts_by_author(author, per_author))
        .buffer_unordered(CONCURRENCY);
    // A min-heap of the newest `cap` seen so far: (post, original if it is a reblog).
    let mut newest: BinaryHeap<Reverse<(Id, Option<Id>)>> = BinaryHeap::with_capacity(cap + 1);
    let mut offer = |post: &Post| {
        if shown(post) {
            newest.push(Reverse((post.id, post.reblog_of)));
            if newest.len() > cap {
                newest.pop();
            }
        }
    };
    while let Some(page) = pages.next().await {
        for post in page?.items {
            offer(&post);
        }
    }
    for post in &extra {
        offer(post);
    }
    let mut kept: Vec<(Id, Option<Id>)> = newest.into_iter().map(|Reverse(e)| e).collect();
    let hidden = hidden_originals(store, user, &kept).await?;
    kept.retain(|(_, original)| original.is_none_or(|o| !hidden.contains(&o)));
    kept.sort_unstable_by_key(|(id, _)| *id);
    kept.dedup_by_key(|(id, _)| *id);
    let mut ids = dedupe_reblogs(&kept);
    ids.reverse();
    Ok(ids)
}

/// Oldest first in, oldest first out: every entry except a reblog whose original (or
/// another reblog of it) is among the [`crate::REBLOG_WINDOW`] entries kept before it, as
/// `tl_insert_reblog` decides at fan-out.
fn dedupe_reblogs(oldest_first: &[(Id, Option<Id>)]) -> Vec<Id> {
    // What each kept entry shows: its original for a reblog, itself otherwise.
    let mut shows: Vec<Id> = Vec::with_capacity(oldest_first.len());
    let mut ids = Vec::with_capacity(oldest_first.len());
    for (id, original) in oldest_first {
        if let Some(original) = original {
            let from = shows.len().saturating_sub(crate::REBLOG_WINDOW);
            if shows.get(from..).is_some_and(|w| w.contains(original)) {
                continue;
            }
        }
        shows.push(original.unwrap_or(*id));
        ids.push(*id);
    }
    ids
}

/// Live private and direct posts that mention `user`, through the newest `cap` of their
/// mention notifications (fan-out delivered them to the mentioned without a follow).
async fn mentioning<S: Store>(store: &S, user: Id, cap: usize) -> Result<Vec<Post>, StoreError> {
    let kinds = [NotificationKind::Mention];
    let window = Window::newest(cap.clamp(1, MAX_PAGE));
    let page = store.notifications(user, window, Some(&kinds)).await?;
    let ids: Vec<Id> = page.items.iter().filter_map(|n| n.post_id).collect();
    let posts: Vec<Post> = stream::iter(owned_chunks(&ids))
        .map(|ids| async move { store.posts_by_ids(&ids).await })
        .buffer_unordered(CONCURRENCY)
        .try_concat()
        .await?;
    Ok(posts
        .into_iter()
        .filter(|p| policy::delivery(p).mentioned && p.mentions.contains(&user))
        .collect())
}

/// Originals among the reblogs in `posts` that `user` must not see: gone, or by an author
/// who blocks, is blocked by, or is muted by `user`.
async fn hidden_originals<S: Store>(
    store: &S,
    user: Id,
    posts: &[(Id, Option<Id>)],
) -> Result<HashSet<Id>, StoreError> {
    let originals: Vec<Id> = posts
        .iter()
        .filter_map(|(_, original)| *original)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if originals.is_empty() {
        return Ok(HashSet::new());
    }
    // Owned chunks: closures over borrowed slices make the future not provably `Send`.
    let found: Vec<Post> = stream::iter(owned_chunks(&originals))
        .map(|ids| async move { store.posts_by_ids(&ids).await })
        .buffer_unordered(CONCURRENCY)
        .try_concat()
        .await?;
    let others: Vec<Id> = found
        .iter()
        .map(|p| p.author_id)
        .filter(|a| *a != user)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let shunned = shunned_by(store, user, &others).await?;
    let seen: HashSet<Id> = found
        .iter()
        .filter(|o| {
            let rel = Relation::in_feed(false, shunned.contains(&o.author_id));
            policy::may_see(o, Some(user), &rel, Surface::Feed)
        })
        .map(|o| o.id)
        .collect();
    Ok(originals
        .into_iter()
        .filter(|o| !seen.contains(o))
        .collect())
}

/// Those of `accounts` that `user` blocks, is blocked by, or mutes.
async fn shunned_by<S: Store>(
    store: &S,
    user: Id,
    accounts: &[Id],
) -> Result<HashSet<Id>, StoreError> {
    Ok(stream::iter(owned_chunks(accounts))
        .map(|targets| async move { store.relationships(user, &targets).await })
        .buffer_unordered(CONCURRENCY)
        .try_concat()
        .await?
        .into_iter()
        .filter(|r| r.blocking || r.blocked_by || r.muting)
        .map(|r| r.target)
        .collect())
}

fn owned_chunks(ids: &[Id]) -> Vec<Vec<Id>> {
    ids.chunks(MAX_BATCH).map(<[Id]>::to_vec).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reblog_of_something_recent_is_dropped_and_an_old_one_kept() {
        let original = Id(1 << 16);
        let mut entries = vec![(original, None), (Id(2 << 16), Some(original))];
        assert_eq!(dedupe_reblogs(&entries), vec![original]);
        // Two reblogs of an original not in the timeline: the first one only.
        let other = Id(3);
        entries = vec![(Id(4 << 16), Some(other)), (Id(5 << 16), Some(other))];
        assert_eq!(dedupe_reblogs(&entries), vec![Id(4 << 16)]);
        // 40 entries in between: shown again.
        let mut long = vec![(original, None)];
        long.extend((0..40).map(|i| (Id((10 + i) << 16), None)));
        long.push((Id(100 << 16), Some(original)));
        assert_eq!(dedupe_reblogs(&long).last(), Some(&Id(100 << 16)));
    }
}
