//! Lists in the fan-out pass: list feeds are written together with homes (a page of
//! followers at a time, lists sliced by owner), exclusive lists keep their members' posts
//! out of home, replies policies, mutes and unfollows; and a rebuilt list agrees with what
//! fan-out wrote. On real Redis shards and the embedded store.

use anyhow::{Context, Result, bail};
use starling_schema::Id;
use starling_schema::events::Event;
use starling_schema::feeds::{List, ListDraft, RepliesPolicy};
use starling_schema::model::{NewPost, Post, Visibility, Window};
use starling_store::Store;
use starling_timeline::Feed;

use super::World;

fn feed(list: &List) -> Feed {
    Feed::List {
        owner: list.owner_id,
        list: list.id,
    }
}

impl World {
    /// A list of `owner`'s holding `members`, with its (empty) feed in Redis.
    async fn list(
        &self,
        owner: Id,
        members: &[Id],
        replies_policy: RepliesPolicy,
        exclusive: bool,
    ) -> Result<List> {
        let list = self
            .store
            .create_list(
                owner,
                ListDraft {
                    title: "a list".into(),
                    replies_policy,
                    exclusive,
                },
            )
            .await?;
        self.store.add_list_members(owner, list.id, members).await?;
        // Reading a missing feed builds it (empty: nobody posted yet).
        self.timelines
            .read_list(&self.store, &list, Window::newest(10))
            .await?;
        Ok(list)
    }

    async fn list_feed(&self, list: &List) -> Result<Vec<Id>> {
        self.timelines
            .range_of(feed(list), Window::newest(1_000))
            .await?
            .context("list feed missing")
    }

    /// The list's feed as a rebuild from the store computes it.
    async fn rebuilt_list(&self, list: &List) -> Result<Vec<Id>> {
        self.timelines.clear_feed(feed(list)).await?;
        Ok(self
            .timelines
            .read_list(&self.store, list, Window::newest(1_000))
            .await?)
    }

    async fn reply(&self, author: Id, to: &Post) -> Result<Post> {
        let new = NewPost {
            author_id: author,
            text: "re".into(),
            in_reply_to_id: Some(to.id),
            ..NewPost::default()
        };
        Ok(self.store.create_post(new, None).await?.value)
    }
}

#[tokio::test]
async fn lists_on_every_follower_page_take_the_post_in_the_home_pass() -> Result<()> {
    let w = World::start().await?;
    let ids = w.accounts("lf", 8).await?;
    let (author, followers) = (ids[0], &ids[1..]);
    for f in followers {
        w.store.follow(*f, author).await?;
    }
    // Two followers a page: owners on the first, a middle and the last page.
    let owners = [followers[0], followers[3], followers[6]];
    let mut lists = Vec::new();
    for owner in owners {
        lists.push(w.list(owner, &[author], RepliesPolicy::List, false).await?);
    }
    // A second list of the same owner, and a list of someone not following (never fed).
    lists.push(
        w.list(owners[1], &[author], RepliesPolicy::Followed, false)
            .await?,
    );
    let fanout = w.fanout(2, 1);
    let post = w.post(author, Visibility::Private, vec![]).await?;
    fanout
        .apply(&Event::PostCreated { post: post.clone() })
        .await?;
    for list in &lists {
        assert_eq!(w.list_feed(list).await?, vec![post.id], "{list:?}");
    }
    for f in followers {
        assert_eq!(w.timeline(*f).await?, vec![post.id], "home of {f}");
    }
    // A rebuilt list holds what fan-out wrote.
    assert_eq!(w.rebuilt_list(&lists[1]).await?, vec![post.id]);
    // A delete leaves every list.
    w.store.delete_post(post.id).await?;
    fanout
        .apply(&Event::PostDeleted {
            post_id: post.id,
            author_id: author,
            visibility: post.visibility,
            reblog_of: None,
            mentions: vec![],
        })
        .await?;
    for list in &lists {
        assert!(w.list_feed(list).await?.is_empty(), "{list:?}");
    }
    Ok(())
}

#[tokio::test]
async fn an_exclusive_list_takes_its_members_posts_out_of_home() -> Result<()> {
    let w = World::start().await?;
    let [owner, listed, other, bystander] = w.accounts("ex", 4).await?[..] else {
        bail!("four accounts")
    };
    for followee in [listed, other] {
        w.store.follow(owner, followee).await?;
        w.store.follow(bystander, followee).await?;
    }
    let list = w.list(owner, &[listed], RepliesPolicy::List, true).await?;
    let fanout = w.fanout(100, 1);
    let from_listed = w.post(listed, Visibility::Public, vec![]).await?;
    let from_other = w.post(other, Visibility::Public, vec![]).await?;
    for post in [&from_listed, &from_other] {
        fanout
            .apply(&Event::PostCreated { post: post.clone() })
            .await?;
    }
    assert_eq!(w.list_feed(&list).await?, vec![from_listed.id]);
    assert_eq!(
        w.timeline(owner).await?,
        vec![from_other.id],
        "home keeps only the other"
    );
    assert_eq!(
        w.timeline(bystander).await?,
        vec![from_other.id, from_listed.id],
        "someone else's exclusive list changes nothing for them"
    );
    // A rebuilt home agrees.
    w.timelines.clear(owner).await?;
    let home = w
        .timelines
        .read(&w.store, owner, Window::newest(100))
        .await?;
    assert_eq!(home, vec![from_other.id]);
    Ok(())
}

#[tokio::test]
async fn replies_policies_decide_which_replies_a_list_shows() -> Result<()> {
    let w = World::start().await?;
    let [owner, member, other_member, followed, stranger] = w.accounts("rp", 5).await?[..] else {
        bail!("five accounts")
    };
    for followee in [member, other_member, followed] {
        w.store.follow(owner, followee).await?;
    }
    let by_followed = w
        .list(owner, &[member], RepliesPolicy::Followed, false)
        .await?;
    let by_list = w
        .list(owner, &[member, other_member], RepliesPolicy::List, false)
        .await?;
    let by_none = w.list(owner, &[member], RepliesPolicy::None, false).await?;
    let fanout = w.fanout(100, 1);
    let mut replies = Vec::new();
    let mut originals = Vec::new();
    for to in [other_member, followed, stranger, owner, member] {
        let original = w.post(to, Visibility::Public, vec![]).await?;
        originals.push(original.id);
        let reply = w.reply(member, &original).await?;
        fanout
            .apply(&Event::PostCreated {
                post: reply.clone(),
            })
            .await?;
        replies.push(reply.id);
    }
    let [to_member, to_followed, to_stranger, to_owner, to_self] = replies[..] else {
        bail!("five replies")
    };
    let newest_first = |mut ids: Vec<Id>| {
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    };
    let want_followed = newest_first(vec![to_member, to_followed, to_owner, to_self]);
    let want_list = newest_first(vec![to_member, to_owner, to_self]);
    let want_none = newest_first(vec![to_owner, to_self]);
    assert_eq!(w.list_feed(&by_followed).await?, want_followed);
    assert_eq!(w.list_feed(&by_list).await?, want_list);
    assert_eq!(w.list_feed(&by_none).await?, want_none);
    assert!(!w.list_feed(&by_followed).await?.contains(&to_stranger));
    // Rebuilds apply the same rule (the one in `starling_schema::feeds`); they also find
    // the members' originals, which were not fanned out here.
    let with = |want: &[Id], extra: &[Id]| newest_first([want, extra].concat());
    let (by_other, by_member) = (originals[0], originals[4]);
    assert_eq!(
        w.rebuilt_list(&by_followed).await?,
        with(&want_followed, &[by_member])
    );
    assert_eq!(
        w.rebuilt_list(&by_list).await?,
        with(&want_list, &[by_member, by_other])
    );
    assert_eq!(
        w.rebuilt_list(&by_none).await?,
        with(&want_none, &[by_member])
    );
    Ok(())
}

#[tokio::test]
async fn muted_blocked_and_unfollowed_members_leave_the_list() -> Result<()> {
    let w = World::start().await?;
    let [owner, muted, blocker, left] = w.accounts("mb", 4).await?[..] else {
        bail!("four accounts")
    };
    for followee in [muted, blocker, left] {
        w.store.follow(owner, followee).await?;
    }
    let list = w
        .list(owner, &[muted, blocker, left], RepliesPolicy::List, false)
        .await?;
    let fanout = w.fanout(100, 1);
    let early = w.post(left, Visibility::Public, vec![]).await?;
    fanout
        .apply(&Event::PostCreated {
            post: early.clone(),
        })
        .await?;
    assert_eq!(w.list_feed(&list).await?, vec![early.id]);
    w.store.mute(owner, muted, false).await?;
    let muted_post = w.post(muted, Visibility::Public, vec![]).await?;
    fanout
        .apply(&Event::PostCreated { post: muted_post })
        .await?;
    assert_eq!(w.list_feed(&list).await?, vec![early.id], "muted");
    // The block ends the follow (and the membership) at the store; fan-out cleans the feed.
    w.store.block(blocker, owner).await?;
    let blocked_post = w.post(blocker, Visibility::Public, vec![]).await?;
    fanout
        .apply(&Event::PostCreated { post: blocked_post })
        .await?;
    assert_eq!(w.list_feed(&list).await?, vec![early.id], "blocked");
    // Unfollowing takes the account's posts out of the owner's lists.
    w.store.unfollow(owner, left).await?;
    fanout
        .apply(&Event::Unfollowed {
            follower_id: owner,
            followee_id: left,
        })
        .await?;
    assert!(w.list_feed(&list).await?.is_empty());
    assert_eq!(
        w.store
            .list_members(list.id, Window::oldest(10))
            .await?
            .items,
        vec![muted],
        "the blocker and the unfollowed left the list at the store"
    );
    Ok(())
}
