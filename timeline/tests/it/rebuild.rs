//! Missing timelines rebuilt from the store on read.

use std::time::Duration;

use starling_schema::Id;
use starling_schema::model::Window;

use starling_store::Store;

use crate::{Cluster, GatedStore, World};

const CAP: usize = 800;

#[tokio::test]
async fn reading_a_missing_timeline_rebuilds_it_from_the_store() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let w = World::open().unwrap();
    let ids = w
        .accounts(&["alice", "bob", "carol", "dave", "erin", "frank"])
        .await
        .unwrap();
    let [alice, bob, carol, dave, erin, frank] = ids[..] else {
        panic!("six accounts");
    };
    for followee in [bob, dave, erin] {
        w.store.follow(alice, followee).await.unwrap();
    }
    w.store.mute(alice, erin, false).await.unwrap();

    let bob1 = w.post(bob, "bob 1").await.unwrap();
    let carol1 = w
        .post(carol, "carol 1, alice does not follow carol")
        .await
        .unwrap();
    let alice1 = w.post(alice, "alice's own").await.unwrap();
    let _dave1 = w.post(dave, "dave 1, unfollowed below").await.unwrap();
    let _erin1 = w.post(erin, "erin 1, muted").await.unwrap();
    let frank1 = w.post(frank, "frank 1").await.unwrap();
    let _to_carol = w.direct(bob, carol, "only for carol").await.unwrap();
    let to_alice = w.direct(bob, alice, "only for alice").await.unwrap();
    let reblog_carol = w.store.reblog(bob, carol1).await.unwrap().value.id;
    let _reblog_frank = w.store.reblog(bob, frank1).await.unwrap().value.id;
    let bob2 = w.post(bob, "bob 2").await.unwrap();
    w.store.unfollow(alice, dave).await.unwrap();
    w.store.block(frank, alice).await.unwrap();

    assert!(!tl.exists(alice).await.unwrap());
    let page = tl.read(&w.store, alice, Window::newest(40)).await.unwrap();
    assert_eq!(
        page,
        vec![bob2, reblog_carol, to_alice, alice1, bob1],
        "own and followed posts, newest first; nothing from unfollowed or muted accounts, \
         no direct post for someone else, no reblog of an author who blocks alice"
    );
    assert_eq!(tl.rebuilds(), 1);
    assert!(tl.exists(alice).await.unwrap());

    // The rebuilt timeline is a normal one: fan-out lands in it, and reads do not rebuild.
    let bob3 = w.post(bob, "bob 3").await.unwrap();
    tl.insert(bob3, &[alice]).await.unwrap();
    let page = tl.read(&w.store, alice, Window::newest(2)).await.unwrap();
    assert_eq!(page, vec![bob3, bob2]);
    assert_eq!(tl.rebuilds(), 1);

    // A new account with nobody followed gets an existing, empty timeline.
    let newcomer = w.accounts(&["newcomer"]).await.unwrap()[0];
    assert_eq!(
        tl.read(&w.store, newcomer, Window::newest(20))
            .await
            .unwrap(),
        vec![]
    );
    assert!(tl.exists(newcomer).await.unwrap());
}

#[tokio::test]
async fn a_rebuild_keeps_the_newest_cap_posts() {
    let cap = 50;
    let c = Cluster::start(cap).await.unwrap();
    let tl = &c.timelines;
    let w = World::open().unwrap();
    let ids = w.accounts(&["reader", "a", "b"]).await.unwrap();
    for followee in &ids[1..] {
        w.store.follow(ids[0], *followee).await.unwrap();
    }
    let mut all = Vec::new();
    for i in 0..cap + 20 {
        all.push(w.post(ids[1 + i % 2], &format!("post {i}")).await.unwrap());
    }
    tl.rebuild(&w.store, ids[0]).await.unwrap();
    let page = tl
        .range(ids[0], Window::newest(1_000))
        .await
        .unwrap()
        .unwrap();
    let expected: Vec<Id> = all.iter().rev().take(cap).copied().collect();
    assert_eq!(page, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_reads_of_a_missing_timeline_rebuild_it_once() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = c.timelines.clone();
    let w = World::open().unwrap();
    let ids = w.accounts(&["reader", "x", "y"]).await.unwrap();
    let reader = ids[0];
    let mut expected = Vec::new();
    for followee in &ids[1..] {
        w.store.follow(reader, *followee).await.unwrap();
        expected.push(w.post(*followee, "hello").await.unwrap());
    }
    expected.reverse();
    let store = GatedStore::new(w.store.clone());

    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (tl, store) = (tl.clone(), store.clone());
            tokio::spawn(async move { tl.read(&store, reader, Window::newest(20)).await })
        })
        .collect();
    // Hold the first rebuild in the middle of reading the store while the others pile up.
    store.waiting.notified().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.open_gate();
    for reader in readers {
        assert_eq!(reader.await.unwrap().unwrap(), expected);
    }
    assert_eq!(tl.rebuilds(), 1, "one rebuild for twenty readers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_arrive_during_a_rebuild_are_kept() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = c.timelines.clone();
    let w = World::open().unwrap();
    let ids = w.accounts(&["reader", "poster"]).await.unwrap();
    let (reader, poster) = (ids[0], ids[1]);
    w.store.follow(reader, poster).await.unwrap();
    let p1 = w.post(poster, "one").await.unwrap();
    let p2 = w
        .post(poster, "two, deleted during the rebuild")
        .await
        .unwrap();
    let store = GatedStore::new(w.store.clone());

    let read = {
        let (tl, store) = (tl.clone(), store.clone());
        tokio::spawn(async move { tl.read(&store, reader, Window::newest(20)).await })
    };
    // The rebuild has read the store (p1, p2) and has not written yet.
    store.waiting.notified().await;
    let p3 = w
        .post(poster, "three, posted during the rebuild")
        .await
        .unwrap();
    tl.insert(p3, &[reader]).await.unwrap();
    w.store.delete_post(p2).await.unwrap();
    tl.remove(p2, &[reader]).await.unwrap();
    assert!(
        !tl.exists(reader).await.unwrap(),
        "fan-out does not create the timeline"
    );
    store.open_gate();

    assert_eq!(read.await.unwrap().unwrap(), vec![p3, p1]);
    assert_eq!(
        tl.range(reader, Window::newest(20)).await.unwrap(),
        Some(vec![p3, p1])
    );
}

/// Milliseconds `key` has left to live (-1: no expiry, -2: gone).
async fn pttl(c: &Cluster, user: Id, key: &str) -> i64 {
    let mut raw = c.raw_of(user).await.expect("a connection to the shard");
    deadpool_redis::redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut raw)
        .await
        .expect("PTTL")
}

/// A timeline nobody reads leaves Redis after `timeline_inactive_days`; fan-out writes do
/// not keep it, a read does, and the next read after it expired rebuilds it from the store.
#[tokio::test]
async fn an_unread_timeline_expires_and_the_next_read_rebuilds_it() {
    const DAY_MS: i64 = 86_400_000;
    let c = Cluster::start(CAP).await.unwrap();
    let settings = starling_schema::settings::RedisSettings {
        timeline_inactive_days: 1,
        ..crate::settings(c.shards.urls(), CAP)
    };
    let tl = starling_timeline::Timelines::connect(&settings)
        .await
        .unwrap();
    let w = World::open().unwrap();
    let ids = w.accounts(&["alice", "bob", "carol"]).await.unwrap();
    let [alice, bob, carol] = ids[..] else {
        panic!("three accounts");
    };
    w.store.follow(alice, bob).await.unwrap();
    let (home, reblogs) = (format!("tl:{alice}"), format!("tlr:{alice}"));

    // Made at sign-up without a read: the inactive clock starts.
    tl.create_empty(alice).await.unwrap();
    let left = pttl(&c, alice, &home).await;
    assert!(left > DAY_MS - 60_000 && left <= DAY_MS, "{left}");

    // Fan-out writes, a reblog's included, do not extend it.
    let mut raw = c.raw_of(alice).await.unwrap();
    let _: i64 = deadpool_redis::redis::cmd("PEXPIRE")
        .arg(&home)
        .arg(60_000)
        .query_async(&mut raw)
        .await
        .unwrap();
    let bob1 = w.post(bob, "bob 1").await.unwrap();
    tl.insert(bob1, &[alice]).await.unwrap();
    let carol1 = w.post(carol, "carol 1").await.unwrap();
    let reblog = w.store.reblog(bob, carol1).await.unwrap().value.id;
    tl.insert_reblog(reblog, carol1, &[alice]).await.unwrap();
    let left = pttl(&c, alice, &home).await;
    assert!(
        left > 0 && left <= 60_000,
        "writes must not extend it: {left}"
    );
    let left = pttl(&c, alice, &reblogs).await;
    assert!(
        left > 0 && left <= 60_000,
        "the reblog index lives as long as its timeline: {left}"
    );

    // A read does, for the timeline and its reblog index.
    let page = tl.read(&w.store, alice, Window::newest(20)).await.unwrap();
    assert_eq!(page, vec![reblog, bob1]);
    for key in [&home, &reblogs] {
        let left = pttl(&c, alice, key).await;
        assert!(left > DAY_MS - 60_000, "{key}: {left}");
    }
    let rebuilds = tl.rebuilds();

    // The inactive period runs out (Redis removes both keys); the next read rebuilds.
    for key in [&home, &reblogs] {
        let _: i64 = deadpool_redis::redis::cmd("PEXPIRE")
            .arg(key)
            .arg(1)
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!tl.exists(alice).await.unwrap(), "expired");
    let page = tl.read(&w.store, alice, Window::newest(20)).await.unwrap();
    assert_eq!(page, vec![reblog, bob1], "rebuilt from the store");
    assert_eq!(tl.rebuilds(), rebuilds + 1);
    let left = pttl(&c, alice, &home).await;
    assert!(left > DAY_MS - 60_000, "{left}");

    // With the setting at 0, timelines stay.
    let forever =
        starling_timeline::Timelines::connect(&starling_schema::settings::RedisSettings {
            timeline_inactive_days: 0,
            ..crate::settings(c.shards.urls(), CAP)
        })
        .await
        .unwrap();
    forever.clear(alice).await.unwrap();
    forever
        .read(&w.store, alice, Window::newest(20))
        .await
        .unwrap();
    assert_eq!(pttl(&c, alice, &home).await, -1);
}
