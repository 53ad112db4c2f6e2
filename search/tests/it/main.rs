//! Integration tests of the indexer and the queries against a real `nats-server -js`, the
//! embedded store and an index on disk.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use starling_bus::{Bus, new_event_id};
use starling_schema::Id;
use starling_schema::events::{Envelope, Event};
use starling_schema::ids::now_ms;
use starling_schema::model::{Account, ImportAccount, NewPost, Post, Visibility};
use starling_schema::settings::{EmbeddedSettings, Limits, NatsSettings, SearchSettings};
use starling_search::{Indexer, SearchIndex, StatusQuery};
use starling_store::Store;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::NatsServer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

struct World {
    store: EmbeddedStore,
    bus: Bus,
    search: SearchSettings,
    _nats: NatsServer,
    _dir: tempfile::TempDir,
}

/// A running indexer and the index it writes.
struct Running {
    index: SearchIndex,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) -> Result<()> {
        self.shutdown.cancel();
        self.task.await?;
        Ok(())
    }
}

impl World {
    async fn start() -> Result<World> {
        let nats = NatsServer::start()?;
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
        let bus = Bus::connect(&NatsSettings {
            url: nats.url(),
            ack_wait_ms: 1_500,
            publish_timeout_ms: 500,
            ..NatsSettings::default()
        })
        .await?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Err(e) = bus.ensure_stream().await {
            if Instant::now() > deadline {
                return Err(e).context("creating the stream");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let search = SearchSettings {
            path: dir.path().join("search"),
            commit_interval_ms: 200,
            consumer: "search-test".into(),
            writer_memory_mib: 32,
        };
        Ok(World {
            store,
            bus,
            search,
            _nats: nats,
            _dir: dir,
        })
    }

    /// Open the index (as a restarted process would) and start an indexer on it.
    fn indexer(&self) -> Result<Running> {
        let index = SearchIndex::open(&self.search.path)?;
        let indexer = Indexer::new(index.clone(), &self.search, 1);
        let shutdown = CancellationToken::new();
        let (bus, stop) = (self.bus.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = indexer.run(bus, stop).await {
                panic!("indexer failed: {e}");
            }
        });
        Ok(Running {
            index,
            shutdown,
            task,
        })
    }

    async fn publish(&self, event: Event) -> Result<()> {
        self.bus
            .publish(&Envelope::new(new_event_id(), event, now_ms()))
            .await?;
        Ok(())
    }

    async fn account(&self, username: &str, display_name: &str) -> Result<Account> {
        let account = self
            .store
            .import_accounts(vec![ImportAccount {
                username: username.into(),
                display_name: Some(display_name.into()),
                bot: false,
            }])
            .await?
            .remove(0);
        self.publish(Event::AccountCreated {
            account: account.clone(),
        })
        .await?;
        Ok(account)
    }

    async fn post(
        &self,
        author: Id,
        text: &str,
        visibility: Visibility,
        hashtags: &[&str],
    ) -> Result<Post> {
        let new = NewPost {
            author_id: author,
            text: text.into(),
            visibility,
            hashtags: hashtags.iter().map(|t| t.to_string()).collect(),
            ..NewPost::default()
        };
        let post = self.store.create_post(new, None).await?.value;
        self.publish(Event::PostCreated { post: post.clone() })
            .await?;
        Ok(post)
    }

    async fn delete(&self, post: &Post) -> Result<()> {
        self.store.delete_post(post.id).await?;
        self.publish(Event::PostDeleted {
            post_id: post.id,
            author_id: post.author_id,
            visibility: post.visibility,
            reblog_of: None,
            mentions: vec![],
        })
        .await
    }
}

fn statuses(index: &SearchIndex, q: &str) -> Result<Vec<Id>> {
    let mut query = StatusQuery::parse(q);
    query.limit = 1_000;
    Ok(index.statuses(&query)?)
}

/// Poll until `check` holds, failing after `within`; returns how long it took.
async fn eventually(within: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if check()? {
            return Ok(started.elapsed());
        }
        if started.elapsed() > within {
            bail!("not true within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_post_is_found_by_a_word_in_it_within_1_5_s() -> Result<()> {
    let world = World::start().await?;
    let running = world.indexer()?;
    let alice = world.account("alice", "Alice").await?;
    // Let the indexer get going, so what is timed is one post's way to the index.
    world
        .post(alice.id, "warming up", Visibility::Public, &[])
        .await?;
    eventually(Duration::from_secs(10), || {
        Ok(!statuses(&running.index, "warming")?.is_empty())
    })
    .await?;

    let post = world
        .post(
            alice.id,
            "The quick brown foxes jumped",
            Visibility::Public,
            &[],
        )
        .await?;
    let took = eventually(Duration::from_millis(1_500), || {
        Ok(statuses(&running.index, "fox")? == [post.id])
    })
    .await?;
    assert!(took <= Duration::from_millis(1_500), "{took:?}");
    // Stemming works both ways, and every word must match.
    assert_eq!(statuses(&running.index, "jumping foxes")?, [post.id]);
    assert!(statuses(&running.index, "fox cat")?.is_empty());
    assert_eq!(statuses(&running.index, "quick from:alice")?, [post.id]);
    running.stop().await
}

#[tokio::test]
async fn a_deleted_post_stops_being_found() -> Result<()> {
    let world = World::start().await?;
    let running = world.indexer()?;
    let alice = world.account("alice", "Alice").await?;
    let gone = world
        .post(alice.id, "ephemeral thought", Visibility::Public, &[])
        .await?;
    let kept = world
        .post(alice.id, "a lasting thought", Visibility::Unlisted, &[])
        .await?;
    eventually(Duration::from_secs(5), || {
        Ok(statuses(&running.index, "thought")?.len() == 2)
    })
    .await?;
    world.delete(&gone).await?;
    eventually(Duration::from_secs(5), || {
        Ok(statuses(&running.index, "thought")? == [kept.id])
    })
    .await?;
    assert!(statuses(&running.index, "ephemeral")?.is_empty());
    running.stop().await
}

#[tokio::test]
async fn private_and_direct_posts_are_never_found() -> Result<()> {
    let world = World::start().await?;
    let running = world.indexer()?;
    let alice = world.account("alice", "Alice").await?;
    world
        .post(alice.id, "secret plans", Visibility::Private, &["plans"])
        .await?;
    world
        .post(alice.id, "secret letter", Visibility::Direct, &["plans"])
        .await?;
    // A later public post is found, so the earlier ones were indexed (or skipped) by then.
    let public = world
        .post(alice.id, "public secret", Visibility::Public, &[])
        .await?;
    eventually(Duration::from_secs(5), || {
        Ok(!statuses(&running.index, "public")?.is_empty())
    })
    .await?;
    assert_eq!(statuses(&running.index, "secret")?, [public.id]);
    assert!(statuses(&running.index, "plans")?.is_empty());
    assert!(statuses(&running.index, "#plans")?.is_empty());
    assert!(running.index.hashtags("plan", 10, 0)?.is_empty());
    running.stop().await
}

#[tokio::test]
async fn cjk_text_and_hashtags_are_found() -> Result<()> {
    let world = World::start().await?;
    let running = world.indexer()?;
    let alice = world.account("alice", "Alice").await?;
    let tokyo = world
        .post(
            alice.id,
            "今日は東京タワーに行きました #旅行",
            Visibility::Public,
            &["旅行"],
        )
        .await?;
    let rust = world
        .post(
            alice.id,
            "Shipping it #RustLang",
            Visibility::Public,
            &["rustlang"],
        )
        .await?;
    let conf = world
        .post(
            alice.id,
            "See you at #RustConf",
            Visibility::Public,
            &["rustconf", "rustlang"],
        )
        .await?;
    eventually(Duration::from_secs(5), || {
        Ok(statuses(&running.index, "#rustlang")?.len() == 2)
    })
    .await?;
    assert_eq!(statuses(&running.index, "東京")?, [tokyo.id]);
    assert_eq!(statuses(&running.index, "東京タワー")?, [tokyo.id]);
    assert_eq!(statuses(&running.index, "#旅行")?, [tokyo.id]);
    assert!(statuses(&running.index, "大阪")?.is_empty());
    let mut tagged = statuses(&running.index, "#RustLang")?;
    tagged.sort();
    assert_eq!(tagged, [rust.id, conf.id]);
    assert_eq!(
        running.index.hashtags("#rust", 10, 0)?,
        [("rustlang".to_owned(), 2), ("rustconf".to_owned(), 1)]
    );
    running.stop().await
}

#[tokio::test]
async fn accounts_are_found_by_username_and_display_name_prefix() -> Result<()> {
    let world = World::start().await?;
    let running = world.indexer()?;
    let alice = world.account("alice", "Alice Liddell").await?;
    let alicia = world.account("alicia_keys", "Piano Woman").await?;
    let bob = world.account("bob", "Robert Alison").await?;
    eventually(Duration::from_secs(5), || {
        Ok(running.index.accounts("bob", 10, 0)? == [bob.id])
    })
    .await?;
    let mut ali = running.index.accounts("ali", 10, 0)?;
    ali.sort();
    assert_eq!(ali, [alice.id, alicia.id, bob.id]);
    // The exact username ranks first.
    assert_eq!(
        running.index.accounts("@alice", 10, 0)?.first(),
        Some(&alice.id)
    );
    assert_eq!(running.index.accounts("piano", 10, 0)?, [alicia.id]);
    assert_eq!(running.index.accounts("keys", 10, 0)?, [alicia.id]);
    assert_eq!(running.index.accounts("alice lid", 10, 0)?, [alice.id]);
    assert!(running.index.accounts("carol", 10, 0)?.is_empty());
    running.stop().await
}

#[tokio::test]
async fn a_killed_indexer_resumes_with_nothing_missing() -> Result<()> {
    let world = World::start().await?;
    let alice = world.account("alice", "Alice").await?;
    let first = world.indexer()?;
    let mut ids = Vec::new();
    for i in 0..150 {
        ids.push(
            world
                .post(
                    alice.id,
                    &format!("marker number {i}"),
                    Visibility::Public,
                    &[],
                )
                .await?
                .id,
        );
    }
    eventually(Duration::from_secs(10), || {
        Ok(!statuses(&first.index, "marker")?.is_empty())
    })
    .await?;
    // Killed mid-stream: whatever it had not committed was not acked either.
    first.task.abort();
    let _ = first.task.await;
    drop(first.index);
    for i in 150..300 {
        ids.push(
            world
                .post(
                    alice.id,
                    &format!("marker number {i}"),
                    Visibility::Public,
                    &[],
                )
                .await?
                .id,
        );
    }
    let second = world.indexer()?;
    ids.sort();
    eventually(Duration::from_secs(15), || {
        let mut found = statuses(&second.index, "marker")?;
        found.sort();
        Ok(found == ids)
    })
    .await?;
    second.stop().await
}
