//! Conformance cases for direct conversations (schema version 11).

use starling_schema::Id;
use starling_schema::conversations::{conversation_id, participants};
use starling_schema::model::{NewPost, Visibility, Window};
use starling_store::Store;

use super::{Backend, users};

async fn dm<S: Store>(s: &S, author: Id, to: &[Id]) -> Id {
    s.create_post(
        NewPost {
            author_id: author,
            text: "psst".into(),
            visibility: Visibility::Direct,
            mentions: to.to_vec(),
            ..NewPost::default()
        },
        None,
    )
    .await
    .expect("create post")
    .value
    .id
}

/// What fan-out does for a direct post: every participant's view takes it.
async fn deliver<S: Store>(s: &S, author: Id, to: &[Id], post: Id) {
    let ps = participants(author, to);
    for p in &ps {
        s.add_to_conversation(*p, &ps, post, *p != author)
            .await
            .expect("add to conversation");
    }
}

fn ids<T>(items: &[T], f: impl Fn(&T) -> Id) -> Vec<Id> {
    items.iter().map(f).collect()
}

pub async fn conversations_are_kept_per_participant<B: Backend>(b: &B) {
    let s = b.store();
    let u = users(s, "cv", 4).await;
    let (alice, bob, carol, dave) = (u[0], u[1], u[2], u[3]);
    // Alice writes to Bob and Carol; Bob answers all; Alice writes to Bob alone.
    let p1 = dm(s, alice, &[bob, carol]).await;
    deliver(s, alice, &[bob, carol], p1).await;
    let p2 = dm(s, bob, &[alice, carol]).await;
    deliver(s, bob, &[alice, carol], p2).await;
    let p3 = dm(s, alice, &[bob]).await;
    deliver(s, alice, &[bob], p3).await;
    let group = conversation_id(&participants(alice, &[bob, carol]));
    let pair = conversation_id(&participants(alice, &[bob]));
    assert_ne!(group, pair);

    let page = s.conversations(bob, Window::newest(20)).await.unwrap();
    assert_eq!(
        ids(&page.items, |c| c.id),
        vec![pair, group],
        "newest post first"
    );
    assert_eq!(ids(&page.items, |c| c.last_status_id), vec![p3, p2]);
    assert!(page.items[0].unread, "Alice's post is unread for Bob");
    assert!(!page.items[1].unread, "Bob's own answer is not");
    assert_eq!(
        page.items[1].participants,
        participants(alice, &[bob, carol])
    );
    assert_eq!(page.items[1].account_id, bob);
    let carols = s.conversations(carol, Window::newest(20)).await.unwrap();
    assert_eq!(ids(&carols.items, |c| c.id), vec![group]);
    assert!(carols.items[0].unread);
    assert!(
        s.conversations(dave, Window::newest(20))
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Paging by the newest post's id, both ways.
    let first = s.conversations(bob, Window::newest(1)).await.unwrap();
    assert_eq!(ids(&first.items, |c| c.id), vec![pair]);
    let next = s
        .conversations(bob, first.next.expect("more"))
        .await
        .unwrap();
    assert_eq!(ids(&next.items, |c| c.id), vec![group]);
    assert!(next.next.is_none());
    let older = s
        .conversations(bob, Window::newest(20).below(p3))
        .await
        .unwrap();
    assert_eq!(ids(&older.items, |c| c.id), vec![group]);
    let newer = s
        .conversations(bob, Window::oldest(20).above(p2))
        .await
        .unwrap();
    assert_eq!(ids(&newer.items, |c| c.id), vec![pair]);

    // Read: for the reader only; a replay of the same post leaves it read.
    let read = s
        .read_conversation(carol, group)
        .await
        .unwrap()
        .expect("carol's");
    assert!(!read.unread);
    deliver(s, bob, &[alice, carol], p2).await;
    assert!(!s.conversation(carol, group).await.unwrap().unwrap().unread);
    assert!(s.conversation(alice, group).await.unwrap().is_some());

    // Someone else's conversation: not found, nothing changes.
    assert_eq!(s.conversation(dave, group).await.unwrap(), None);
    assert_eq!(s.read_conversation(dave, group).await.unwrap(), None);
    assert!(!s.remove_conversation(dave, group).await.unwrap());
    assert_eq!(s.conversation(bob, Id(12_345)).await.unwrap(), None);

    // Removed by Bob: gone for Bob only, and a replay does not bring it back.
    assert!(s.remove_conversation(bob, group).await.unwrap());
    assert!(!s.remove_conversation(bob, group).await.unwrap());
    assert_eq!(s.conversation(bob, group).await.unwrap(), None);
    deliver(s, bob, &[alice, carol], p2).await;
    let bobs = s.conversations(bob, Window::newest(20)).await.unwrap();
    assert_eq!(ids(&bobs.items, |c| c.id), vec![pair]);
    assert_eq!(
        s.conversations(alice, Window::newest(20))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    // A new post in it brings it back, unread.
    let p4 = dm(s, carol, &[alice, bob]).await;
    deliver(s, carol, &[alice, bob], p4).await;
    let bobs = s.conversations(bob, Window::newest(20)).await.unwrap();
    assert_eq!(ids(&bobs.items, |c| c.id), vec![group, pair]);
    assert_eq!(bobs.items[0].last_status_id, p4);
    assert!(bobs.items[0].unread);
}

pub async fn a_deleted_newest_post_falls_back_or_hides_the_conversation<B: Backend>(b: &B) {
    let s = b.store();
    let u = users(s, "cvd", 2).await;
    let (alice, bob) = (u[0], u[1]);
    let id = conversation_id(&participants(alice, &[bob]));
    let p1 = dm(s, alice, &[bob]).await;
    deliver(s, alice, &[bob], p1).await;
    let p2 = dm(s, bob, &[alice]).await;
    deliver(s, bob, &[alice], p2).await;
    // Deleting an older post changes no view.
    let p0 = Id(p1.0 - 1);
    assert_eq!(
        s.remove_from_conversation(alice, id, p0).await.unwrap(),
        None
    );
    let back = s
        .remove_from_conversation(alice, id, p2)
        .await
        .unwrap()
        .expect("still shows");
    assert_eq!(back.last_status_id, p1);
    let page = s.conversations(alice, Window::newest(20)).await.unwrap();
    assert_eq!(ids(&page.items, |c| c.last_status_id), vec![p1]);
    assert_eq!(
        s.remove_from_conversation(alice, id, p1).await.unwrap(),
        None
    );
    assert_eq!(
        s.conversation(alice, id).await.unwrap(),
        None,
        "nothing left"
    );
    assert!(
        s.conversations(alice, Window::newest(20))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Bob's view is his own: Alice's deletes above did not touch it.
    let bobs = s.conversation(bob, id).await.unwrap().expect("bob's");
    assert_eq!(bobs.last_status_id, p2);
    // Bob removes it at p3; p5 brings it back; deleting p5 leaves only posts from before
    // the removal, which do not show it again.
    let p3 = dm(s, alice, &[bob]).await;
    deliver(s, alice, &[bob], p3).await;
    assert!(s.remove_conversation(bob, id).await.unwrap());
    let p5 = dm(s, alice, &[bob]).await;
    deliver(s, alice, &[bob], p5).await;
    assert!(
        s.remove_from_conversation(bob, id, p5)
            .await
            .unwrap()
            .is_none(),
        "posts from before the removal do not bring it back"
    );
    assert_eq!(s.conversation(bob, id).await.unwrap(), None);
}

pub async fn concurrent_posts_leave_the_newest_in_a_view<B: Backend>(b: &B) {
    let s = b.store().clone();
    let u = users(&s, "cvc", 2).await;
    let (alice, bob) = (u[0], u[1]);
    let mut posts = Vec::new();
    for _ in 0..8 {
        posts.push(dm(&s, alice, &[bob]).await);
    }
    let ps = participants(alice, &[bob]);
    let adds = posts.iter().map(|post| {
        let (s, ps, post) = (s.clone(), ps.clone(), *post);
        async move { s.add_to_conversation(bob, &ps, post, true).await.unwrap() }
    });
    futures::future::join_all(adds).await;
    let newest = *posts.iter().max().unwrap();
    let page = s.conversations(bob, Window::newest(20)).await.unwrap();
    assert_eq!(page.items.len(), 1, "one conversation, listed once");
    assert_eq!(page.items[0].last_status_id, newest);
    assert_eq!(
        s.add_to_conversation(Id(987_654_321), &ps, newest, true)
            .await
            .map_err(|e| e.kind())
            .err(),
        Some(starling_schema::ErrorKind::NotFound),
        "an unknown account has no conversations"
    );
}
