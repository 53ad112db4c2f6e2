//! Where timelines live, and what happens when a shard goes away or comes back empty.

use deadpool_redis::redis::{self, AsyncCommands};
use starling_schema::model::Window;
use starling_schema::{ErrorKind, Id};
use starling_testkit::RedisShards;
use starling_timeline::Timelines;

use starling_store::Store;

use crate::{Cluster, World, raw, settings, user_on};

const CAP: usize = 800;

#[tokio::test]
async fn every_timeline_lives_on_the_shard_the_ring_names() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    assert_eq!(tl.shard_count(), 3);
    let users: Vec<Id> = (1..=60).map(|i| Id(i * 7_919)).collect();
    let mut per_shard = [0usize; 3];
    for u in &users {
        tl.create_empty(*u).await.unwrap();
        per_shard[tl.shard_of(*u)] += 1;
    }
    assert!(
        per_shard.iter().all(|n| *n > 0),
        "users on every shard: {per_shard:?}"
    );
    for shard in 0..3 {
        let mut conn = c.raw(shard).await.unwrap();
        for u in &users {
            let exists: bool = conn.exists(format!("tl:{u}")).await.unwrap();
            assert_eq!(
                exists,
                tl.shard_of(*u) == shard,
                "timeline of {u} on shard {shard}"
            );
        }
    }
}

#[tokio::test]
async fn connect_raises_the_listpack_limit_on_every_shard() {
    let c = Cluster::start(CAP).await.unwrap();
    for shard in 0..3 {
        let mut conn = c.raw(shard).await.unwrap();
        let entries: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("zset-max-listpack-entries")
            .query_async(&mut conn)
            .await
            .unwrap();
        let entries: usize = entries[1].parse().unwrap();
        assert!(entries > CAP + 32, "shard {shard}: {entries}");
    }
}

#[tokio::test]
async fn a_shard_restarted_empty_is_set_up_again_and_its_timelines_rebuilt() {
    let mut c = Cluster::start(CAP).await.unwrap();
    let world = World::open().unwrap();
    let ids = world
        .accounts(&["author", "r1", "r2", "r3", "r4", "r5", "r6"])
        .await
        .unwrap();
    let (author, readers) = (ids[0], &ids[1..]);
    let tl = c.timelines.clone();
    for r in readers {
        world.store.follow(*r, author).await.unwrap();
    }
    let first = world.post(author, "before the restart").await.unwrap();
    for r in readers {
        assert_eq!(
            tl.read(&world.store, *r, Window::newest(20)).await.unwrap(),
            vec![first]
        );
    }
    let shard = tl.shard_of(readers[0]);
    let on_shard: Vec<Id> = readers
        .iter()
        .copied()
        .filter(|r| tl.shard_of(*r) == shard)
        .collect();
    let elsewhere: Vec<Id> = readers
        .iter()
        .copied()
        .filter(|r| tl.shard_of(*r) != shard)
        .collect();
    assert!(!elsewhere.is_empty(), "the readers should span shards");

    c.shards.shard(shard).restart_empty().unwrap();
    let mut conn = c.raw(shard).await.unwrap();
    let libraries: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(libraries.is_empty(), "the restarted shard came back empty");

    // Fan-out of a new post: works on every shard, reloading the library where it is gone.
    let second = world.post(author, "after the restart").await.unwrap();
    tl.insert(second, readers).await.unwrap();
    let libraries: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg("starling_tl")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(libraries.len(), 1, "the library is loaded again");
    let entries: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("zset-max-listpack-entries")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        entries[1].parse::<usize>().unwrap() > CAP + 32,
        "the listpack limit is raised again"
    );

    // The restarted shard's users have no timeline; reading rebuilds exactly theirs.
    for r in &on_shard {
        assert!(!tl.exists(*r).await.unwrap());
    }
    let before = tl.rebuilds();
    for r in readers {
        assert_eq!(
            tl.read(&world.store, *r, Window::newest(20)).await.unwrap(),
            vec![second, first],
            "reader {r}"
        );
    }
    assert_eq!(tl.rebuilds() - before, on_shard.len() as u64);
}

#[tokio::test]
async fn a_down_shard_fails_with_its_index_and_is_counted() {
    let mut c = Cluster::start(CAP).await.unwrap();
    let tl = c.timelines.clone();
    let down = 1;
    let victim = user_on(&tl, down, 10);
    let fine = user_on(&tl, 0, 10);
    tl.create_empty(fine).await.unwrap();
    c.shards.shard(down).stop().unwrap();

    let before = shard_errors(down);
    let err = tl.insert(Id(5), &[victim, fine]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.shard(), Some(down), "{err}");
    assert!(shard_errors(down) > before, "the failure is counted");
    // The other shards still took the post.
    assert_eq!(
        tl.range(fine, Window::newest(5)).await.unwrap(),
        Some(vec![Id(5)])
    );

    let pings = tl.ping_all().await;
    assert_eq!(pings.len(), 3);
    for (i, ping) in pings.iter().enumerate() {
        assert_eq!(ping.is_ok(), i != down, "shard {i}: {ping:?}");
    }
}

#[tokio::test]
async fn a_shard_down_at_start_is_set_up_when_it_comes_back() {
    let mut shards = RedisShards::start(3).unwrap();
    shards.shard(2).stop().unwrap();
    let tl = Timelines::connect(&settings(shards.urls(), CAP))
        .await
        .unwrap();
    let user = user_on(&tl, 2, 10);
    assert_eq!(
        tl.create_empty(user).await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    shards.shard(2).restart_empty().unwrap();
    tl.create_empty(user).await.unwrap();
    tl.insert(Id(7), &[user]).await.unwrap();
    assert_eq!(
        tl.range(user, Window::newest(5)).await.unwrap(),
        Some(vec![Id(7)])
    );
    let mut conn = raw(&shards[2].url()).await.unwrap();
    let entries: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("zset-max-listpack-entries")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(entries[1].parse::<usize>().unwrap() > CAP + 32);
}

#[tokio::test]
async fn connect_without_shards_is_an_error() {
    let err = Timelines::connect(&settings(vec![], CAP))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal);
    let err = Timelines::connect(&settings(vec!["not a url".into()], CAP))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
}

fn shard_errors(shard: usize) -> u64 {
    prometheus::default_registry()
        .gather()
        .iter()
        .filter(|family| family.name() == "starling_timeline_shard_errors_total")
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            m.get_label()
                .iter()
                .any(|l| l.name() == "shard" && l.value() == shard.to_string())
        })
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}
