//! Integration tests of fan-out against three real Redis shards, a real `nats-server -js`
//! and the embedded store.

mod lists;
mod social;
mod tags;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use starling_bus::{Bus, new_event_id};
use starling_fanout::Fanout;
use starling_schema::Id;
use starling_schema::events::{Envelope, Event};
use starling_schema::ids::now_ms;
use starling_schema::model::{ImportAccount, NewPost, Post, Visibility, Window};
use starling_schema::settings::{
    EmbeddedSettings, FanoutSettings, Limits, NatsSettings, RedisSettings,
};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};
use starling_timeline::Timelines;
use tokio_util::sync::CancellationToken;

const CONSUMER: &str = "fanout";

struct World {
    store: EmbeddedStore,
    timelines: Timelines,
    nats_settings: NatsSettings,
    nats: NatsServer,
    // Servers and files go when the world does.
    _shards: RedisShards,
    _dir: tempfile::TempDir,
}

impl World {
    async fn start() -> Result<World> {
        let nats = NatsServer::start()?;
        let shards = RedisShards::start(3)?;
        let dir = tempfile::tempdir()?;
        let store = EmbeddedStore::open(
            &EmbeddedSettings {
                path: dir.path().join("store"),
                fsync: false,
                cache_mib: 16,
            },
            1,
            Limits::default(),
        )?;
        let timelines = Timelines::connect(&RedisSettings {
            shards: shards.urls(),
            pool_size: 8,
            ..RedisSettings::default()
        })
        .await?;
        let nats_settings = NatsSettings {
            url: nats.url(),
            ack_wait_ms: 1_500,
            publish_timeout_ms: 300,
            outbox_retry_ms: 100,
            ..NatsSettings::default()
        };
        Ok(World {
            store,
            timelines,
            nats_settings,
            nats,
            _shards: shards,
            _dir: dir,
        })
    }

    fn fanout(&self, follower_page: usize, concurrency: usize) -> Fanout<EmbeddedStore> {
        Fanout::new(
            self.store.clone(),
            self.timelines.clone(),
            FanoutSettings {
                concurrency,
                follower_page,
                consumer: CONSUMER.into(),
            },
        )
    }

    async fn bus(&self) -> Result<Bus> {
        let bus = Bus::connect(&self.nats_settings).await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = bus.ensure_stream().await {
            if Instant::now() > deadline {
                return Err(e).context("creating the stream");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(bus)
    }

    /// Accounts `name0..nameN`, each with an (empty) timeline, in id order.
    async fn accounts(&self, name: &str, n: usize) -> Result<Vec<Id>> {
        let mut ids = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
            let batch = chunk
                .iter()
                .map(|i| ImportAccount {
                    username: format!("{name}{i}"),
                    display_name: None,
                    bot: false,
                })
                .collect();
            ids.extend(
                self.store
                    .import_accounts(batch)
                    .await?
                    .iter()
                    .map(|a| a.id),
            );
        }
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in ids.chunks(250) {
            let (timelines, chunk) = (self.timelines.clone(), chunk.to_vec());
            tasks.spawn(async move {
                for user in chunk {
                    timelines.create_empty(user).await?;
                }
                Ok::<_, anyhow::Error>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done??;
        }
        Ok(ids)
    }

    async fn post(&self, author: Id, visibility: Visibility, mentions: Vec<Id>) -> Result<Post> {
        let new = NewPost {
            author_id: author,
            text: "hello".into(),
            visibility,
            mentions,
            ..NewPost::default()
        };
        Ok(self.store.create_post(new, None).await?.value)
    }

    async fn timeline(&self, user: Id) -> Result<Vec<Id>> {
        self.timelines
            .range(user, Window::newest(1_000))
            .await?
            .context("timeline missing")
    }
}

async fn publish(bus: &Bus, event: Event) -> Result<()> {
    bus.publish(&Envelope::new(new_event_id(), event, now_ms()))
        .await?;
    Ok(())
}

/// Polls `check` until it holds or `within` passes.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn spawn_worker(
    fanout: Fanout<EmbeddedStore>,
    bus: Bus,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<Result<(), starling_fanout::FanoutError>> {
    tokio::spawn(async move { fanout.run(bus, shutdown).await })
}

#[tokio::test]
async fn a_post_reaches_its_author_and_followers_and_nobody_else() -> Result<()> {
    let w = World::start().await?;
    let [a, b, c] = w.accounts("u", 3).await?[..] else {
        bail!("three accounts")
    };
    w.store.follow(a, b).await?;
    let bus = w.bus().await?;
    let shutdown = CancellationToken::new();
    let worker = spawn_worker(w.fanout(100, 4), bus.clone(), shutdown.clone());

    let post = w.post(b, Visibility::Public, vec![]).await?;
    publish(&bus, Event::PostCreated { post: post.clone() }).await?;

    eventually(
        Duration::from_secs(1),
        "the post reaching A and B",
        || async {
            Ok(w.timeline(a).await? == vec![post.id] && w.timeline(b).await? == vec![post.id])
        },
    )
    .await?;
    assert_eq!(
        w.timeline(c).await?,
        Vec::<Id>::new(),
        "C does not follow B"
    );

    shutdown.cancel();
    worker.await??;
    Ok(())
}

#[tokio::test]
async fn the_same_event_applied_twice_leaves_one_entry() -> Result<()> {
    let w = World::start().await?;
    let [a, b] = w.accounts("u", 2).await?[..] else {
        bail!("two accounts")
    };
    w.store.follow(a, b).await?;
    let fanout = w.fanout(100, 1);
    let first = w.post(b, Visibility::Public, vec![]).await?;
    let second = w.post(b, Visibility::Private, vec![]).await?;

    for post in [&first, &first, &second, &first] {
        fanout
            .apply(&Event::PostCreated { post: post.clone() })
            .await?;
    }
    assert_eq!(w.timeline(a).await?, vec![second.id, first.id]);
    assert_eq!(w.timeline(b).await?, vec![second.id, first.id]);
    Ok(())
}

#[tokio::test]
async fn a_delete_removes_the_post_everywhere() -> Result<()> {
    let w = World::start().await?;
    let [a, b, c] = w.accounts("u", 3).await?[..] else {
        bail!("three accounts")
    };
    w.store.follow(a, b).await?;
    w.store.follow(c, b).await?;
    let fanout = w.fanout(1, 1); // one follower per page: paging is exercised
    let kept = w.post(b, Visibility::Public, vec![]).await?;
    let doomed = w.post(b, Visibility::Public, vec![]).await?;
    for post in [&kept, &doomed] {
        fanout
            .apply(&Event::PostCreated { post: post.clone() })
            .await?;
    }
    for user in [a, b, c] {
        assert_eq!(w.timeline(user).await?, vec![doomed.id, kept.id]);
    }

    w.store.delete_post(doomed.id).await?;
    let deleted = Event::PostDeleted {
        post_id: doomed.id,
        author_id: b,
        visibility: doomed.visibility,
        reblog_of: None,
        mentions: vec![],
    };
    fanout.apply(&deleted).await?;
    fanout.apply(&deleted).await?;
    for user in [a, b, c] {
        assert_eq!(w.timeline(user).await?, vec![kept.id], "timeline of {user}");
    }
    Ok(())
}

#[tokio::test]
async fn a_delete_applied_before_its_create_leaves_nothing_behind() -> Result<()> {
    let w = World::start().await?;
    let [a, b] = w.accounts("u", 2).await?[..] else {
        bail!("two accounts")
    };
    w.store.follow(a, b).await?;
    let fanout = w.fanout(100, 1);
    let post = w.post(b, Visibility::Public, vec![]).await?;
    w.store.delete_post(post.id).await?;

    // Two workers, or a redelivery, can apply them in this order.
    fanout
        .apply(&Event::PostDeleted {
            post_id: post.id,
            author_id: b,
            visibility: post.visibility,
            reblog_of: None,
            mentions: vec![],
        })
        .await?;
    fanout
        .apply(&Event::PostCreated { post: post.clone() })
        .await?;
    assert_eq!(w.timeline(a).await?, Vec::<Id>::new());
    assert_eq!(w.timeline(b).await?, Vec::<Id>::new());
    Ok(())
}

#[tokio::test]
async fn follow_merges_recent_posts_and_unfollow_removes_them() -> Result<()> {
    let w = World::start().await?;
    let [a, b, c] = w.accounts("u", 3).await?[..] else {
        bail!("three accounts")
    };
    let fanout = w.fanout(100, 1);
    let public = w.post(b, Visibility::Public, vec![]).await?;
    let private = w.post(b, Visibility::Private, vec![]).await?;
    let to_a = w.post(b, Visibility::Direct, vec![a]).await?;
    let to_c = w.post(b, Visibility::Direct, vec![c]).await?;
    let own = w.post(a, Visibility::Public, vec![]).await?;
    fanout
        .apply(&Event::PostCreated { post: own.clone() })
        .await?;

    w.store.follow(a, b).await?;
    fanout
        .apply(&Event::Followed {
            follower_id: a,
            followee_id: b,
        })
        .await?;
    assert_eq!(
        w.timeline(a).await?,
        vec![own.id, to_a.id, private.id, public.id],
        "a direct post to someone else is not merged"
    );
    assert!(!w.timeline(a).await?.contains(&to_c.id));

    w.store.unfollow(a, b).await?;
    fanout
        .apply(&Event::Unfollowed {
            follower_id: a,
            followee_id: b,
        })
        .await?;
    assert_eq!(w.timeline(a).await?, vec![own.id]);
    Ok(())
}

#[tokio::test]
async fn follow_and_unfollow_applied_out_of_order_follow_the_store() -> Result<()> {
    let w = World::start().await?;
    let [a, b] = w.accounts("u", 2).await?[..] else {
        bail!("two accounts")
    };
    let fanout = w.fanout(100, 1);
    let post = w.post(b, Visibility::Public, vec![]).await?;
    let followed = Event::Followed {
        follower_id: a,
        followee_id: b,
    };
    let unfollowed = Event::Unfollowed {
        follower_id: a,
        followee_id: b,
    };

    // Follow then unfollow in the store; the events arrive the other way round.
    w.store.follow(a, b).await?;
    w.store.unfollow(a, b).await?;
    fanout.apply(&unfollowed).await?;
    fanout.apply(&followed).await?;
    assert_eq!(
        w.timeline(a).await?,
        Vec::<Id>::new(),
        "A no longer follows B"
    );

    // Unfollow then follow again; the unfollow arrives last.
    w.store.follow(a, b).await?;
    fanout.apply(&followed).await?;
    fanout.apply(&unfollowed).await?;
    assert_eq!(w.timeline(a).await?, vec![post.id], "A follows B again");
    Ok(())
}

#[tokio::test]
async fn a_direct_post_reaches_only_its_author_and_the_mentioned() -> Result<()> {
    let w = World::start().await?;
    let [a, b, c] = w.accounts("u", 3).await?[..] else {
        bail!("three accounts")
    };
    w.store.follow(a, b).await?;
    let fanout = w.fanout(100, 1);
    let post = w.post(b, Visibility::Direct, vec![c]).await?;

    fanout
        .apply(&Event::PostCreated { post: post.clone() })
        .await?;
    assert_eq!(w.timeline(b).await?, vec![post.id]);
    assert_eq!(w.timeline(c).await?, vec![post.id]);
    assert_eq!(
        w.timeline(a).await?,
        Vec::<Id>::new(),
        "a follower who is not mentioned"
    );

    // Deleting it takes it out of the mentioned non-follower's timeline too.
    w.store.delete_post(post.id).await?;
    fanout
        .apply(&Event::PostDeleted {
            post_id: post.id,
            author_id: b,
            visibility: post.visibility,
            reblog_of: None,
            mentions: post.mentions.clone(),
        })
        .await?;
    assert_eq!(w.timeline(c).await?, Vec::<Id>::new());
    assert_eq!(w.timeline(b).await?, Vec::<Id>::new());
    Ok(())
}

#[tokio::test]
async fn blocks_and_mutes_take_posts_out() -> Result<()> {
    let w = World::start().await?;
    let [a, b, c] = w.accounts("u", 3).await?[..] else {
        bail!("three accounts")
    };
    w.store.follow(a, b).await?;
    w.store.follow(b, a).await?;
    w.store.follow(c, b).await?;
    let fanout = w.fanout(100, 1);
    let by_a = w.post(a, Visibility::Public, vec![]).await?;
    let by_b = w.post(b, Visibility::Public, vec![]).await?;
    for post in [&by_a, &by_b] {
        fanout
            .apply(&Event::PostCreated { post: post.clone() })
            .await?;
    }
    assert_eq!(w.timeline(a).await?, vec![by_b.id, by_a.id]);
    assert_eq!(w.timeline(b).await?, vec![by_b.id, by_a.id]);

    w.store.mute(c, b, false).await?;
    fanout
        .apply(&Event::Muted {
            account_id: c,
            target_id: b,
            notifications: false,
        })
        .await?;
    assert_eq!(w.timeline(c).await?, Vec::<Id>::new());
    assert_eq!(
        w.timeline(b).await?,
        vec![by_b.id, by_a.id],
        "a mute is one way"
    );

    w.store.block(a, b).await?;
    fanout
        .apply(&Event::Blocked {
            account_id: a,
            target_id: b,
        })
        .await?;
    assert_eq!(w.timeline(a).await?, vec![by_a.id]);
    assert_eq!(w.timeline(b).await?, vec![by_b.id], "a block is both ways");
    Ok(())
}

#[tokio::test]
async fn a_worker_killed_mid_fanout_leaves_the_event_to_the_next_one() -> Result<()> {
    const FOLLOWERS: usize = 5_000;
    let w = World::start().await?;
    let star = w.accounts("star", 1).await?[0];
    let followers = w.accounts("fan", FOLLOWERS).await?;
    for f in &followers {
        w.store.follow(*f, star).await?;
    }
    let post = w.post(star, Visibility::Public, vec![]).await?;
    let (first, last) = (followers[0], followers[FOLLOWERS - 1]);
    let bus = w.bus().await?;
    // Created before the event, so the first pull is waiting for it.
    bus.durable_consumer(CONSUMER).await?;

    let doomed = spawn_worker(w.fanout(100, 4), bus.clone(), CancellationToken::new());
    publish(&bus, Event::PostCreated { post: post.clone() }).await?;
    eventually(Duration::from_secs(5), "the first inserts", || async {
        Ok(!w.timeline(first).await?.is_empty())
    })
    .await?;
    doomed.abort();
    let _ = doomed.await;

    let mut reached = 0;
    for f in &followers {
        reached += usize::from(!w.timeline(*f).await?.is_empty());
    }
    println!("the killed worker reached {reached} of {FOLLOWERS} followers");
    assert!(
        reached < FOLLOWERS,
        "the worker finished before it was killed; the test shows nothing"
    );
    assert!(w.timeline(last).await?.is_empty());

    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let next = spawn_worker(w.fanout(100, 4), bus.clone(), shutdown.clone());
    eventually(
        Duration::from_secs(10),
        "redelivery to the last follower",
        || async { Ok(!w.timeline(last).await?.is_empty()) },
    )
    .await?;
    println!(
        "redelivered and applied within {:?} of the new worker starting",
        started.elapsed()
    );
    shutdown.cancel();
    next.await??;
    for f in &followers {
        assert_eq!(w.timeline(*f).await?, vec![post.id], "timeline of {f}");
    }
    assert_eq!(w.timeline(star).await?, vec![post.id]);
    Ok(())
}

#[tokio::test]
async fn a_graceful_shutdown_acks_what_it_took_so_nothing_is_redelivered() -> Result<()> {
    const FOLLOWERS: usize = 500;
    const POSTS: usize = 30;
    let w = World::start().await?;
    let star = w.accounts("star", 1).await?[0];
    let followers = w.accounts("fan", FOLLOWERS).await?;
    for f in &followers {
        w.store.follow(*f, star).await?;
    }
    let mut posts = Vec::new();
    for _ in 0..POSTS {
        posts.push(w.post(star, Visibility::Public, vec![]).await?);
    }
    let bus = w.bus().await?;
    for post in &posts {
        publish(&bus, Event::PostCreated { post: post.clone() }).await?;
    }

    let shutdown = CancellationToken::new();
    let worker = spawn_worker(w.fanout(20, 4), bus.clone(), shutdown.clone());
    eventually(Duration::from_secs(5), "the first inserts", || async {
        Ok(!w.timeline(followers[0]).await?.is_empty())
    })
    .await?;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .context("the worker did not stop")???;

    // The server applies acks asynchronously; give it a moment (well under the ack wait,
    // after which an unacked event would be redelivered).
    let mut stats = bus.consumer_stats(CONSUMER).await?;
    let deadline = Instant::now() + Duration::from_millis(700);
    while stats.ack_pending > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        stats = bus.consumer_stats(CONSUMER).await?;
    }
    println!("after shutdown: {stats:?}");
    assert_eq!(stats.ack_pending, 0, "events left unacked: {stats:?}");
    assert_eq!(stats.ack_floor, stats.delivered, "{stats:?}");
    let taken = usize::try_from(stats.delivered)?;
    assert!(
        taken < POSTS,
        "the worker took every event before it was stopped; the test shows nothing"
    );
    // What it took, it applied in full.
    for f in [followers[0], followers[FOLLOWERS - 1]] {
        let timeline = w.timeline(f).await?;
        assert_eq!(timeline.len(), taken, "timeline of {f}");
    }

    // A new worker gets the rest, none of them a second delivery.
    let mut consumer = bus.durable_consumer(CONSUMER).await?;
    let mut rest = Vec::new();
    let until = Instant::now() + Duration::from_millis(3_000); // twice the ack wait
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match tokio::time::timeout(left, consumer.next(8)).await {
            Err(_) => break,
            Ok(delivery) => {
                let delivery = delivery?;
                assert!(!delivery.redelivered, "redelivered: {delivery:?}");
                rest.push(delivery.stream_sequence);
                delivery.ack().await?;
            }
        }
    }
    let expected: Vec<u64> = (stats.delivered + 1..=POSTS as u64).collect();
    assert_eq!(rest, expected);
    Ok(())
}

#[tokio::test]
async fn a_worker_carries_on_after_nats_restarts() -> Result<()> {
    let mut w = World::start().await?;
    let [a, b] = w.accounts("u", 2).await?[..] else {
        bail!("two accounts")
    };
    w.store.follow(a, b).await?;
    let bus = w.bus().await?;
    let shutdown = CancellationToken::new();
    let worker = spawn_worker(w.fanout(100, 4), bus.clone(), shutdown.clone());
    let before = w.post(b, Visibility::Public, vec![]).await?;
    publish(
        &bus,
        Event::PostCreated {
            post: before.clone(),
        },
    )
    .await?;
    eventually(Duration::from_secs(1), "the first post", || async {
        Ok(w.timeline(a).await? == vec![before.id])
    })
    .await?;

    w.nats.stop()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    w.nats.start_again()?;
    let after = w.post(b, Visibility::Public, vec![]).await?;
    let event = Envelope::new(
        new_event_id(),
        Event::PostCreated {
            post: after.clone(),
        },
        now_ms(),
    );
    let restarted = Instant::now();
    while let Err(e) = bus.publish(&event).await {
        if restarted.elapsed() > Duration::from_secs(10) {
            return Err(e).context("NATS did not come back");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let published = Instant::now();
    eventually(
        Duration::from_secs(4),
        "the post after the restart",
        || async { Ok(w.timeline(a).await? == vec![after.id, before.id]) },
    )
    .await?;
    println!(
        "after the restart: published {:?} after it, applied {:?} after publishing",
        published - restarted,
        published.elapsed()
    );
    shutdown.cancel();
    worker.await??;
    Ok(())
}
