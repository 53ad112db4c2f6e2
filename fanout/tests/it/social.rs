//! Who a post may reach (blocks, mutes, the reply rule, private and direct audiences),
//! reblog dedupe and notifications, applied straight through `Fanout::apply` and checked on
//! the Redis timelines themselves, below any read-time filter.

use anyhow::{Result, bail};
use starling_schema::events::Event;
use starling_schema::model::{NewNotification, NewPost, NotificationKind, Visibility, Window};
use starling_store::Store;

use super::World;

#[tokio::test]
async fn followers_who_block_or_mute_the_author_get_nothing() -> Result<()> {
    let w = World::start().await?;
    let [author, muter, fan, blocker, stranger] = w.accounts("sh", 5).await?[..] else {
        bail!("five accounts")
    };
    w.store.follow(muter, author).await?;
    w.store.follow(fan, author).await?;
    w.store.mute(muter, author, false).await?;
    w.store.block(blocker, author).await?;
    let fanout = w.fanout(100, 1);
    let post = w
        .post(author, Visibility::Private, vec![blocker, stranger])
        .await?;
    fanout
        .apply(&Event::PostCreated { post: post.clone() })
        .await?;
    assert!(w.timeline(author).await?.contains(&post.id));
    assert!(w.timeline(fan).await?.contains(&post.id), "a follower");
    assert!(
        w.timeline(stranger).await?.contains(&post.id),
        "mentioned in a private post"
    );
    assert!(
        !w.timeline(muter).await?.contains(&post.id),
        "mutes the author"
    );
    assert!(
        !w.timeline(blocker).await?.contains(&post.id),
        "blocks the author, though mentioned"
    );
    // The mention notifies the stranger, not the blocker.
    let store = &w.store;
    let notified = |user| async move {
        let page = store.notifications(user, Window::newest(10), None).await?;
        anyhow::Ok(page.items)
    };
    let got = notified(stranger).await?;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].kind, NotificationKind::Mention);
    assert_eq!(got[0].post_id, Some(post.id));
    assert!(notified(blocker).await?.is_empty());
    // Applied again (a redelivery): still one.
    fanout.apply(&Event::PostCreated { post }).await?;
    assert_eq!(notified(stranger).await?.len(), 1);
    Ok(())
}

#[tokio::test]
async fn a_reply_to_someone_else_reaches_only_those_who_follow_both() -> Result<()> {
    let w = World::start().await?;
    let [alice, bob, only_alice, both] = w.accounts("rr", 4).await?[..] else {
        bail!("four accounts")
    };
    for (who, whom) in [
        (only_alice, alice),
        (both, alice),
        (both, bob),
        (bob, alice),
    ] {
        w.store.follow(who, whom).await?;
    }
    let fanout = w.fanout(1, 1);
    let parent = w.post(bob, Visibility::Public, vec![]).await?;
    let reply = w
        .store
        .create_post(
            NewPost {
                author_id: alice,
                text: "a reply".into(),
                in_reply_to_id: Some(parent.id),
                ..NewPost::default()
            },
            None,
        )
        .await?
        .value;
    fanout
        .apply(&Event::PostCreated {
            post: reply.clone(),
        })
        .await?;
    assert!(w.timeline(both).await?.contains(&reply.id));
    assert!(
        w.timeline(bob).await?.contains(&reply.id),
        "the one replied to"
    );
    assert!(!w.timeline(only_alice).await?.contains(&reply.id));
    // A reply to oneself (a thread) reaches every follower.
    let thread = w
        .store
        .create_post(
            NewPost {
                author_id: alice,
                text: "and another thing".into(),
                in_reply_to_id: Some(reply.id),
                ..NewPost::default()
            },
            None,
        )
        .await?
        .value;
    fanout
        .apply(&Event::PostCreated {
            post: thread.clone(),
        })
        .await?;
    assert!(w.timeline(only_alice).await?.contains(&thread.id));
    Ok(())
}

#[tokio::test]
async fn a_reblog_is_inserted_only_when_its_original_is_not_among_the_recent_40() -> Result<()> {
    let w = World::start().await?;
    let [reader, author, r1, r2, r3, chatty] = w.accounts("rb", 6).await?[..] else {
        bail!("six accounts")
    };
    for whom in [r1, r2, r3, chatty] {
        w.store.follow(reader, whom).await?;
    }
    let fanout = w.fanout(100, 1);
    let original = w.post(author, Visibility::Public, vec![]).await?;
    let reblog = |by| {
        let store = w.store.clone();
        let id = original.id;
        async move {
            let wrapper = store.reblog(by, id).await?.value;
            anyhow::Ok(Event::Reblogged {
                reblog: wrapper,
                post_author_id: author,
            })
        }
    };
    let first = reblog(r1).await?;
    fanout.apply(&first).await?;
    let second = reblog(r2).await?;
    fanout.apply(&second).await?;
    let ids = w.timeline(reader).await?;
    let Event::Reblogged {
        reblog: first_wrapper,
        ..
    } = &first
    else {
        bail!("a reblog")
    };
    let Event::Reblogged {
        reblog: second_wrapper,
        ..
    } = &second
    else {
        bail!("a reblog")
    };
    assert!(ids.contains(&first_wrapper.id));
    assert!(
        !ids.contains(&second_wrapper.id),
        "shown once among the recent 40"
    );
    fanout.apply(&first).await?;
    assert_eq!(
        w.timeline(reader).await?,
        ids,
        "a redelivery changes nothing"
    );
    // Forty newer entries push the first reblog out of the window: shown again.
    for _ in 0..40 {
        let p = w.post(chatty, Visibility::Public, vec![]).await?;
        fanout.apply(&Event::PostCreated { post: p }).await?;
    }
    let third = reblog(r3).await?;
    fanout.apply(&third).await?;
    let Event::Reblogged {
        reblog: third_wrapper,
        ..
    } = &third
    else {
        bail!("a reblog")
    };
    assert_eq!(w.timeline(reader).await?.first(), Some(&third_wrapper.id));
    // The reblogger's own timeline and the original's author are not deduped away.
    assert!(w.timeline(r2).await?.contains(&second_wrapper.id));
    let notes = w
        .store
        .notifications(author, Window::newest(10), None)
        .await?;
    assert_eq!(
        notes.items.len(),
        3,
        "one reblog notification per reblogger"
    );
    Ok(())
}

#[tokio::test]
async fn notify_skips_oneself_blocks_and_notification_mutes() -> Result<()> {
    let w = World::start().await?;
    let [me, friend, blocked, muted, quiet] = w.accounts("nf", 5).await?[..] else {
        bail!("five accounts")
    };
    w.store.block(me, blocked).await?;
    w.store.mute(me, muted, true).await?;
    // Muted without hiding notifications: those still come.
    w.store.mute(me, quiet, false).await?;
    let fanout = w.fanout(100, 1);
    let follow = |from| NewNotification {
        account_id: me,
        kind: NotificationKind::Follow,
        from_account_id: from,
        post_id: None,
    };
    assert!(fanout.notify(follow(me)).await?.is_none(), "not to oneself");
    assert!(fanout.notify(follow(blocked)).await?.is_none());
    assert!(fanout.notify(follow(muted)).await?.is_none());
    let made = fanout.notify(follow(quiet)).await?.expect("a notification");
    assert_eq!(made.from_account_id, quiet);
    assert!(fanout.notify(follow(friend)).await?.is_some());
    assert!(
        fanout.notify(follow(friend)).await?.is_none(),
        "once per cause"
    );
    let post = w.post(me, Visibility::Public, vec![]).await?;
    fanout
        .apply(&Event::Favourited {
            account_id: friend,
            post_id: post.id,
            post_author_id: me,
        })
        .await?;
    let kinds: Vec<NotificationKind> = w
        .store
        .notifications(me, Window::newest(10), None)
        .await?
        .items
        .iter()
        .map(|n| n.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            NotificationKind::Favourite,
            NotificationKind::Follow,
            NotificationKind::Follow
        ]
    );
    Ok(())
}
