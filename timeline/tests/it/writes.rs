//! Fan-out writes and page reads on existing timelines.

use deadpool_redis::redis::{self, AsyncCommands};
use starling_schema::Id;
use starling_schema::model::Window;

use crate::{Cluster, posts, user_on};

const CAP: usize = 800;

fn newest_first(ids: &[Id]) -> Vec<Id> {
    ids.iter().rev().copied().collect()
}

#[tokio::test]
async fn insert_reaches_only_timelines_that_exist() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    // One user with a timeline and one without on every shard.
    let with: Vec<Id> = (0..3).map(|s| user_on(tl, s, 1_000)).collect();
    let without: Vec<Id> = (0..3).map(|s| user_on(tl, s, 2_000)).collect();
    for u in &with {
        tl.create_empty(*u).await.unwrap();
    }
    let everyone: Vec<Id> = with.iter().chain(&without).copied().collect();
    tl.insert(Id(500), &everyone).await.unwrap();
    for u in &with {
        assert_eq!(
            tl.range(*u, Window::newest(20)).await.unwrap(),
            Some(vec![Id(500)])
        );
    }
    for u in &without {
        assert_eq!(tl.range(*u, Window::newest(20)).await.unwrap(), None, "{u}");
        assert!(!tl.exists(*u).await.unwrap());
        let mut raw = c.raw_of(*u).await.unwrap();
        let keys: Vec<String> = raw.keys("*").await.unwrap();
        assert!(
            !keys.contains(&format!("tl:{u}")),
            "insert created a timeline for {u}: {keys:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_timeline_exists_and_reads_empty() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(77);
    assert_eq!(tl.range(user, Window::newest(20)).await.unwrap(), None);
    tl.create_empty(user).await.unwrap();
    assert!(tl.exists(user).await.unwrap());
    assert_eq!(
        tl.range(user, Window::newest(20)).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(
        tl.range(user, Window::oldest(20)).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(tl.memory(user).await.unwrap().map(|m| m.1), Some(0));
    // Creating again keeps what is there.
    tl.insert(Id(9), &[user]).await.unwrap();
    tl.create_empty(user).await.unwrap();
    assert_eq!(
        tl.range(user, Window::newest(20)).await.unwrap(),
        Some(vec![Id(9)])
    );
    tl.clear(user).await.unwrap();
    assert!(!tl.exists(user).await.unwrap());
    assert_eq!(tl.memory(user).await.unwrap(), None);
}

#[tokio::test]
async fn inserting_the_same_post_twice_keeps_one_entry() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let users = [Id(1), Id(2), Id(3), Id(4)];
    for u in users {
        tl.create_empty(u).await.unwrap();
    }
    tl.insert(Id(100), &users).await.unwrap();
    tl.insert(Id(100), &users).await.unwrap();
    tl.insert(Id(101), &users).await.unwrap();
    tl.insert(Id(100), &users).await.unwrap();
    for u in users {
        assert_eq!(
            tl.range(u, Window::newest(20)).await.unwrap(),
            Some(vec![Id(101), Id(100)])
        );
        assert_eq!(tl.memory(u).await.unwrap().unwrap().1, 2);
    }
}

#[tokio::test]
async fn the_cap_keeps_the_newest_posts_and_the_sentinel() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(4242);
    tl.create_empty(user).await.unwrap();
    let all = posts(10_000, CAP as u64 + 50);
    for p in &all {
        tl.insert(*p, &[user]).await.unwrap();
    }
    // An old post arriving late to a full timeline does not push out a newer one.
    tl.insert(Id(5), &[user]).await.unwrap();
    let kept = tl
        .range(user, Window::newest(10_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, newest_first(&all[50..]));

    let mut raw = c.raw_of(user).await.unwrap();
    let key = format!("tl:{user}");
    let card: usize = raw.zcard(&key).await.unwrap();
    assert_eq!(card, CAP + 1, "cap entries plus the sentinel");
    let first: Vec<Vec<u8>> = raw.zrange(&key, 0, 0).await.unwrap();
    assert_eq!(first, vec![vec![0u8; 8]], "the sentinel is intact");
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(encoding, "listpack");
}

#[tokio::test]
async fn windows_map_mastodon_cursors() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(31);
    tl.create_empty(user).await.unwrap();
    let all = posts(1, 100); // ids 1..=100
    tl.merge(user, &all).await.unwrap();

    // max_id: newest first below 50.
    let page = tl
        .range(user, Window::newest(5).below(Id(50)))
        .await
        .unwrap();
    assert_eq!(page, Some(vec![Id(49), Id(48), Id(47), Id(46), Id(45)]));
    // since_id: the newest above 90, newest first.
    let page = tl
        .range(user, Window::newest(5).above(Id(90)))
        .await
        .unwrap();
    assert_eq!(page, Some(vec![Id(100), Id(99), Id(98), Id(97), Id(96)]));
    // min_id: the oldest above 90, oldest first.
    let page = tl
        .range(user, Window::oldest(5).above(Id(90)))
        .await
        .unwrap();
    assert_eq!(page, Some(vec![Id(91), Id(92), Id(93), Id(94), Id(95)]));
    // Both bounds, exclusive.
    let page = tl
        .range(user, Window::newest(50).above(Id(10)).below(Id(14)))
        .await
        .unwrap();
    assert_eq!(page, Some(vec![Id(13), Id(12), Id(11)]));
    // Nothing beyond the ends; id 0 (the sentinel) is never returned.
    let page = tl
        .range(user, Window::newest(5).below(Id(1)))
        .await
        .unwrap();
    assert_eq!(page, Some(vec![]));
    let page = tl.range(user, Window::oldest(3)).await.unwrap();
    assert_eq!(page, Some(vec![Id(1), Id(2), Id(3)]));
    let page = tl.range(user, Window::newest(0)).await.unwrap();
    assert_eq!(page, Some(vec![]));
}

#[tokio::test]
async fn paging_returns_every_entry_once_in_order() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(32);
    tl.create_empty(user).await.unwrap();
    // Ids with all sorts of bytes, so lexicographic order must really be numeric order.
    let all: Vec<Id> = (0..150u64)
        .map(|i| Id(1 + i * 0x0101_0101_0137 + (i % 7) * 0xff))
        .collect();
    tl.merge(user, &all).await.unwrap();

    let newest = page_through(tl, user, Window::newest(40)).await.unwrap();
    assert_eq!(newest, newest_first(&all));
    let oldest = page_through(tl, user, Window::oldest(40)).await.unwrap();
    assert_eq!(oldest, all);
}

/// Every id, following each page with the window that continues after its last id.
async fn page_through(
    tl: &starling_timeline::Timelines,
    user: Id,
    mut window: Window,
) -> anyhow::Result<Vec<Id>> {
    let mut seen = Vec::new();
    loop {
        let page = tl
            .range(user, window)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the timeline of {user} vanished"))?;
        anyhow::ensure!(page.len() <= window.limit, "a page longer than asked for");
        let Some(last) = page.last().copied() else {
            return Ok(seen);
        };
        seen.extend(page);
        window = window.after(last);
    }
}

#[tokio::test]
async fn remove_takes_a_post_out_of_every_listed_timeline() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let users: Vec<Id> = (0..3).map(|s| user_on(tl, s, 300)).collect();
    for u in &users {
        tl.create_empty(*u).await.unwrap();
    }
    for p in posts(1, 3) {
        tl.insert(p, &users).await.unwrap();
    }
    tl.remove(Id(2), &users).await.unwrap();
    // Removing again, or from a missing timeline, is fine.
    tl.remove(Id(2), &[users[0], Id(999_999)]).await.unwrap();
    for u in &users {
        assert_eq!(
            tl.range(*u, Window::newest(10)).await.unwrap(),
            Some(vec![Id(3), Id(1)])
        );
    }
    assert!(!tl.exists(Id(999_999)).await.unwrap());
}

#[tokio::test]
async fn merge_and_remove_many_follow_and_unfollow() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(55);
    tl.create_empty(user).await.unwrap();
    tl.merge(user, &[Id(10), Id(30)]).await.unwrap();
    // A follow merges the followee's recent posts in order.
    tl.merge(user, &[Id(20), Id(40), Id(30)]).await.unwrap();
    assert_eq!(
        tl.range(user, Window::newest(10)).await.unwrap(),
        Some(vec![Id(40), Id(30), Id(20), Id(10)])
    );
    // An unfollow takes them out again.
    tl.remove_many(user, &[Id(20), Id(40), Id(77)])
        .await
        .unwrap();
    assert_eq!(
        tl.range(user, Window::newest(10)).await.unwrap(),
        Some(vec![Id(30), Id(10)])
    );
    // Merging into a missing timeline does not create it.
    tl.merge(Id(56), &[Id(1), Id(2)]).await.unwrap();
    assert!(!tl.exists(Id(56)).await.unwrap());
}

#[tokio::test]
async fn merging_a_full_timeline_stays_capped_and_compact() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    let user = Id(57);
    tl.create_empty(user).await.unwrap();
    // Even posts 2..=1600 fill it; then a follow brings 800 odd ones interleaved.
    let even: Vec<Id> = (1..=CAP as u64).map(|i| Id(2 * i)).collect();
    let odd: Vec<Id> = (1..=CAP as u64).map(|i| Id(2 * i + 1)).collect();
    tl.merge(user, &even).await.unwrap();
    tl.merge(user, &odd).await.unwrap();
    let mut all: Vec<Id> = even.iter().chain(&odd).copied().collect();
    all.sort();
    let kept = tl
        .range(user, Window::newest(10_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, newest_first(&all[all.len() - CAP..]));

    let mut raw = c.raw_of(user).await.unwrap();
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(format!("tl:{user}"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        encoding, "listpack",
        "a big merge must not turn the set into a skiplist"
    );
}

#[tokio::test]
async fn a_full_timeline_costs_at_most_16_bytes_per_entry() {
    let c = Cluster::start(CAP).await.unwrap();
    let tl = &c.timelines;
    // A realistic (19-digit) user id, so the key is as long as in production.
    let user = Id(0x0190_0000_0000_0101);
    tl.create_empty(user).await.unwrap();
    // Realistic post ids: milliseconds << 16 | node and sequence.
    let ids: Vec<Id> = (0..CAP as u64 + 10)
        .map(|i| Id(((1_760_000_000_000 + i * 977) << 16) | 0x0103))
        .collect();
    for chunk in ids.chunks(100) {
        tl.merge(user, chunk).await.unwrap();
    }
    let (bytes, entries) = tl.memory(user).await.unwrap().unwrap();
    assert_eq!(entries, CAP);
    let per_entry = bytes as f64 / entries as f64;
    println!("timeline memory: {bytes} bytes for {entries} entries = {per_entry:.2} bytes/entry");
    assert!(per_entry <= 16.0, "{per_entry:.2} bytes per entry");
}
