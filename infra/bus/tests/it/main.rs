//! Integration tests of the bus against a real `nats-server -js` and the embedded store.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use starling_bus::{Bus, BusError, ConsumerStats, EventConsumer, Publisher, new_event_id};
use starling_schema::events::{DecodeError, Envelope, Event};
use starling_schema::settings::{EmbeddedSettings, Limits, NatsSettings};
use starling_schema::{ErrorKind, Id};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

/// Short timings so failures show quickly.
fn settings(url: &str) -> NatsSettings {
    NatsSettings {
        url: url.to_owned(),
        ack_wait_ms: 1_500,
        publish_timeout_ms: 300,
        outbox_retry_ms: 100,
        ..NatsSettings::default()
    }
}

async fn bus_on(nats: &NatsServer) -> Result<Bus> {
    let bus = Bus::connect(&settings(&nats.url())).await?;
    // The connection is made in the background; the first admin request waits for it.
    let mut tries = 0;
    loop {
        match bus.ensure_stream().await {
            Ok(()) => return Ok(bus),
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e).context("creating the stream"),
        }
    }
}

struct TempStore {
    store: EmbeddedStore,
    _dir: tempfile::TempDir,
}

fn temp_store() -> Result<TempStore> {
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
    Ok(TempStore { store, _dir: dir })
}

fn follow(i: u64) -> Event {
    Event::Followed {
        follower_id: Id(1_000 + i),
        followee_id: Id(7),
    }
}

fn follower_of(env: &Envelope) -> Option<u64> {
    match env.event {
        Event::Followed { follower_id, .. } => Some(follower_id.0 - 1_000),
        _ => None,
    }
}

/// The consumer's state once `settled` holds, or as it is after 700 ms: the server
/// applies acks asynchronously (700 ms is well under the 1.5 s ack wait).
async fn settled_stats(
    bus: &Bus,
    name: &str,
    settled: impl Fn(&ConsumerStats) -> bool,
) -> Result<ConsumerStats> {
    bus.flush().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    loop {
        let stats = bus.consumer_stats(name).await?;
        if settled(&stats) || tokio::time::Instant::now() > deadline {
            return Ok(stats);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next event within `wait`, acked; `None` if none came.
async fn next_acked(consumer: &mut EventConsumer, wait: Duration) -> Result<Option<Envelope>> {
    match tokio::time::timeout(wait, consumer.next(8)).await {
        Err(_) => Ok(None),
        Ok(Err(e)) => Err(e).context("pulling"),
        Ok(Ok(delivery)) => {
            let env = delivery.envelope.clone();
            delivery.ack().await?;
            Ok(Some(env))
        }
    }
}

#[tokio::test]
async fn a_published_event_reaches_a_durable_consumer() -> Result<()> {
    let nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    let mut consumer = bus.durable_consumer("workers").await?;
    let env = Envelope::new(new_event_id(), follow(1), 42);
    assert_eq!(bus.subject(&env.event), "starling.events.follow.created");

    bus.publish(&env).await?;

    let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next(1))
        .await
        .context("no event within 5 s")??;
    assert_eq!(delivery.envelope, env);
    assert!(!delivery.redelivered);
    delivery.ack().await?;
    let stats = settled_stats(&bus, "workers", |s| s.ack_pending == 0).await?;
    assert_eq!((stats.pending, stats.ack_pending), (0, 0), "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn the_same_envelope_published_twice_is_delivered_once() -> Result<()> {
    let nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    let mut consumer = bus.durable_consumer("workers").await?;
    let first = Envelope::new(new_event_id(), follow(1), 1);
    let second = Envelope::new(new_event_id(), follow(2), 2);

    bus.publish(&first).await?;
    bus.publish(&first).await?; // an outbox retry of an event JetStream already has
    bus.publish(&second).await?;

    let wait = Duration::from_secs(5);
    assert_eq!(next_acked(&mut consumer, wait).await?, Some(first));
    assert_eq!(
        next_acked(&mut consumer, wait).await?,
        Some(second),
        "the duplicate was delivered"
    );
    assert_eq!(
        next_acked(&mut consumer, Duration::from_millis(700)).await?,
        None
    );
    Ok(())
}

#[tokio::test]
async fn consumers_with_the_same_name_share_the_events() -> Result<()> {
    let nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    // Two processes: each its own connection, the same durable name.
    let other_bus = bus_on(&nats).await?;
    let consumers = [
        bus.durable_consumer("shared").await?,
        other_bus.durable_consumer("shared").await?,
    ];
    const N: u64 = 40;
    for i in 0..N {
        bus.publish(&Envelope::new(new_event_id(), follow(i), i))
            .await?;
    }

    let seen: Arc<Mutex<Vec<Vec<u64>>>> = Arc::new(Mutex::new(vec![Vec::new(), Vec::new()]));
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    for (k, mut consumer) in consumers.into_iter().enumerate() {
        let seen = Arc::clone(&seen);
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => return,
                    d = consumer.next(1) => d,
                };
                let Ok(delivery) = delivery else { continue };
                // Some work, so the other worker gets its turn.
                tokio::time::sleep(Duration::from_millis(5)).await;
                if let Some(i) = follower_of(&delivery.envelope) {
                    seen.lock().unwrap()[k].push(i);
                }
                let _ = delivery.ack().await;
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().iter().map(Vec::len).sum::<usize>() < N as usize {
        if tokio::time::Instant::now() > deadline {
            bail!("only {:?} delivered", seen.lock().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything delivered twice would show up within an ack wait.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    stop.cancel();
    for t in tasks {
        t.await?;
    }
    let seen = seen.lock().unwrap().clone();
    let all: Vec<u64> = seen.iter().flatten().copied().collect();
    let distinct: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), N as usize, "some event went to both: {seen:?}");
    assert_eq!(distinct, (0..N).collect::<HashSet<_>>());
    assert!(
        !seen[0].is_empty() && !seen[1].is_empty(),
        "one consumer got everything: {seen:?}"
    );
    Ok(())
}

#[tokio::test]
async fn events_published_while_nats_is_down_are_kept_and_delivered_in_order_once() -> Result<()> {
    let mut nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    let mut consumer = bus.durable_consumer("workers").await?;
    let store = temp_store()?;
    let publisher = Publisher::new(bus.clone(), store.store.clone(), bus.settings());

    nats.stop()?;
    let started = std::time::Instant::now();
    for i in 0..20 {
        publisher
            .publish(follow(i))
            .await
            .with_context(|| format!("publishing event {i} while NATS is down"))?;
    }
    let took = started.elapsed();
    let kept = store.store.outbox_peek(100).await?;
    assert_eq!(kept.len(), 20, "the outbox holds every event");
    let kept_order: Vec<u64> = kept
        .iter()
        .map(|(_, payload)| Envelope::decode(payload).map(|e| follower_of(&e)))
        .collect::<Result<Option<Vec<_>>, _>>()?
        .context("not follow events")?;
    assert_eq!(kept_order, (0..20).collect::<Vec<_>>());
    assert_eq!(publisher.outbox_pending(), 20);
    assert!(publisher.queued());
    // Only the first waits for a timeout; the others queue behind it at once.
    assert!(took < Duration::from_secs(3), "20 publishes took {took:?}");

    nats.start_again()?;
    let shutdown = CancellationToken::new();
    let drain = tokio::spawn({
        let publisher = publisher.clone();
        let shutdown = shutdown.clone();
        async move { publisher.run_outbox(shutdown).await }
    });

    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.len() < 20 && tokio::time::Instant::now() < deadline {
        if let Some(env) = next_acked(&mut consumer, Duration::from_secs(1)).await? {
            received.push(follower_of(&env).context("not a follow")?);
        }
    }
    assert_eq!(received, (0..20).collect::<Vec<_>>(), "in order, each once");
    assert_eq!(
        next_acked(&mut consumer, Duration::from_millis(1_500)).await?,
        None,
        "an event was delivered twice"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !store.store.outbox_peek(1).await?.is_empty() || publisher.queued() {
        if tokio::time::Instant::now() > deadline {
            bail!("the outbox was not emptied");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(publisher.outbox_pending(), 0);

    // Back to direct publishing.
    publisher.publish(follow(20)).await?;
    assert!(store.store.outbox_peek(1).await?.is_empty());
    // Generous: on a loaded machine a pull request lost around the restart is only renewed
    // after it stays silent past its wait (see `EventConsumer::next`).
    let env = next_acked(&mut consumer, Duration::from_secs(15)).await?;
    assert_eq!(env.as_ref().and_then(follower_of), Some(20));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), drain).await??;
    Ok(())
}

#[tokio::test]
async fn a_restarted_publisher_queues_behind_events_left_in_the_outbox() -> Result<()> {
    let mut nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    let mut consumer = bus.durable_consumer("workers").await?;
    let store = temp_store()?;

    // A process publishes while NATS is down and crashes before draining its outbox.
    nats.stop()?;
    let crashed = Publisher::new(bus.clone(), store.store.clone(), bus.settings());
    for i in 0..3 {
        crashed.publish(follow(i)).await?;
    }
    drop(crashed);
    nats.start_again()?;
    bus_on(&nats).await?;

    // Its successor, with NATS up, must not let a new event overtake them.
    let publisher = Publisher::new(bus.clone(), store.store.clone(), bus.settings());
    publisher.publish(follow(3)).await?;
    assert_eq!(store.store.outbox_peek(10).await?.len(), 4);
    let shutdown = CancellationToken::new();
    let drain = tokio::spawn({
        let publisher = publisher.clone();
        let shutdown = shutdown.clone();
        async move { publisher.run_outbox(shutdown).await }
    });

    let mut received = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while received.len() < 4 && tokio::time::Instant::now() < deadline {
        if let Some(env) = next_acked(&mut consumer, Duration::from_secs(1)).await? {
            received.push(follower_of(&env).context("not a follow")?);
        }
    }
    assert_eq!(received, vec![0, 1, 2, 3]);
    shutdown.cancel();
    drain.await?;
    Ok(())
}

#[tokio::test]
async fn an_event_of_a_newer_format_is_held_back_and_named() -> Result<()> {
    let nats = NatsServer::start()?;
    let bus = bus_on(&nats).await?;
    let mut consumer = bus.durable_consumer("workers").await?;
    let subject = "starling.events.post.created";
    let newer = br#"{"v":99,"id":"n1","at_ms":1,"type":"post.created","data":{"hologram":true}}"#;
    let garbage = br#"{"v":1,"id":"g1","at_ms":1,"type":"post.exploded","data":{}}"#;
    bus.client()
        .publish(subject, newer.as_slice().into())
        .await?;
    bus.client()
        .publish(subject, garbage.as_slice().into())
        .await?;
    let fine = Envelope::new(new_event_id(), follow(5), 3);
    bus.publish(&fine).await?;

    let wait = Duration::from_secs(5);
    let err = tokio::time::timeout(wait, consumer.next(1))
        .await?
        .err()
        .context("a v99 event was accepted")?;
    assert!(
        matches!(
            &err,
            BusError::Decode {
                source: DecodeError::NewerVersion { found: 99 },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("99"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Internal);

    let err = tokio::time::timeout(wait, consumer.next(1))
        .await?
        .err()
        .context("a malformed event was accepted")?;
    assert!(
        matches!(
            &err,
            BusError::Decode {
                source: DecodeError::Malformed { .. },
                ..
            }
        ),
        "{err:?}"
    );

    // The readable event behind them still flows.
    assert_eq!(next_acked(&mut consumer, wait).await?, Some(fine));
    let stats = settled_stats(&bus, "workers", |s| s.ack_pending <= 1).await?;
    // The v99 event is not acked: it waits, held back, for a worker that can read it; the
    // malformed one is terminated.
    assert_eq!(stats.ack_floor, 0, "{stats:?}");
    assert_eq!(stats.ack_pending, 1, "{stats:?}");
    assert_eq!(
        next_acked(&mut consumer, Duration::from_millis(1_800)).await?,
        None,
        "a held-back event came back within its delay"
    );
    Ok(())
}

#[tokio::test]
async fn connect_works_while_nats_is_down_and_ping_tells() -> Result<()> {
    let mut nats = NatsServer::start()?;
    let url = nats.url();
    nats.stop()?;
    let bus = Bus::connect(&settings(&url)).await?;
    let err = bus
        .ping()
        .await
        .err()
        .context("ping passed with NATS down")?;
    assert_eq!(err.kind(), ErrorKind::Unavailable);

    nats.start_again()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _ = bus.ensure_stream().await;
        if bus.ping().await.is_ok() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("ping never passed after NATS came back");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(matches!(
        bus.durable_consumer("no.dots").await,
        Err(BusError::InvalidName(_))
    ));
    Ok(())
}
