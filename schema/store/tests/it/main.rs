//! Integration tests of the store: the conformance suite against every backend, and what
//! only the embedded store must show (crash safety).

// Test code: a failed unwrap is a failed test, with its location.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;
mod crash;

use starling_schema::settings::{EmbeddedSettings, Limits};
use starling_store::embedded::EmbeddedStore;
use starling_store::scylla::ScyllaStore;

/// The embedded store in a fresh temporary directory.
pub struct Embedded {
    store: Option<EmbeddedStore>,
    settings: EmbeddedSettings,
    _dir: tempfile::TempDir,
}

impl Embedded {
    pub async fn make() -> Option<Embedded> {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = EmbeddedSettings {
            path: dir.path().join("store"),
            fsync: false,
            cache_mib: 16,
        };
        let store = EmbeddedStore::open(&settings, 1, crate::limits()).expect("open store");
        Some(Embedded {
            store: Some(store),
            settings,
            _dir: dir,
        })
    }
}

impl conformance::Backend for Embedded {
    type S = EmbeddedStore;

    fn store(&self) -> &EmbeddedStore {
        self.store.as_ref().expect("store is open")
    }

    async fn reopen(mut self) -> Self {
        drop(self.store.take());
        let store = EmbeddedStore::open(&self.settings, 1, crate::limits()).expect("reopen store");
        self.store = Some(store);
        self
    }

    async fn finish(self) {}
}

/// ScyllaDB at `SCYLLA_URI` (host:port), each test in a fresh keyspace that is dropped after.
pub struct Scylla {
    store: ScyllaStore,
    uri: String,
    keyspace: String,
}

impl Scylla {
    pub async fn make() -> Option<Scylla> {
        let Ok(uri) = std::env::var("SCYLLA_URI") else {
            eprintln!(
                "skipped: SCYLLA_URI is not set, so the ScyllaDB conformance suite did not run"
            );
            return None;
        };
        let uri = uri
            .trim_start_matches("scylla://")
            .trim_start_matches("cql://")
            .to_owned();
        let keyspace = format!("starling_test_{:016x}", rand_suffix());
        let store = ScyllaStore::connect_fresh_keyspace(&uri, &keyspace, 1, crate::limits())
            .await
            .expect("connect to SCYLLA_URI");
        Some(Scylla {
            store,
            uri,
            keyspace,
        })
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

impl conformance::Backend for Scylla {
    type S = ScyllaStore;

    fn store(&self) -> &ScyllaStore {
        &self.store
    }

    async fn reopen(self) -> Self {
        let store =
            ScyllaStore::connect_fresh_keyspace(&self.uri, &self.keyspace, 1, crate::limits())
                .await
                .expect("reconnect");
        Scylla { store, ..self }
    }

    async fn finish(self) {
        self.store
            .drop_keyspace()
            .await
            .expect("drop test keyspace");
    }
}

mod embedded {
    conformance_suite!(crate::Embedded::make);
}

mod scylla {
    conformance_suite!(crate::Scylla::make);

    use starling_schema::Id;
    use starling_schema::model::{NewPost, Window};
    use starling_store::Store;

    /// The store reads the server's commit log mode (to warn at start when a crash of a
    /// single replica would lose acknowledged writes): Cassandra 4+ and ScyllaDB both say it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_servers_commit_log_mode_is_read() {
        let Some(b) = crate::Scylla::make().await else {
            return;
        };
        let mode = b.store.commitlog_sync().await;
        let known = mode
            .as_deref()
            .map(|m| m.trim_matches('"').to_ascii_lowercase());
        crate::conformance::Backend::finish(b).await;
        assert!(
            matches!(known.as_deref(), Some("periodic" | "batch" | "group")),
            "commitlog_sync read as {mode:?}"
        );
    }

    /// The attempt that claimed an idempotency key can die (the CQL server killed, or the
    /// request cancelled by its client's timeout) after the post row and the claim were
    /// written and before the post was listed. The retry with the same key is answered with
    /// that post, so it must also finish listing it: otherwise an acknowledged post is
    /// missing from its author's page and from every home timeline rebuilt from the store.
    /// What such an attempt leaves (a post row and a claimed key, nothing else) is written
    /// here with plain CQL, next to a post created normally.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replay_lists_a_post_whose_first_attempt_died_before_listing_it() {
        let Some(b) = crate::Scylla::make().await else {
            return;
        };
        let s = &b.store;
        let author = crate::conformance::user(s, "replayed").await;
        let new = || NewPost {
            author_id: author,
            text: "acknowledged on its retry".into(),
            ..NewPost::default()
        };
        let done = s.create_post(new(), Some("key-done")).await.unwrap().value;
        let raw = ::scylla::client::session_builder::SessionBuilder::new()
            .known_node(&b.uri)
            .build()
            .await
            .unwrap();
        let ks = &b.keyspace;
        let (row,) = raw
            .query_unpaged(
                format!("SELECT JSON * FROM {ks}.posts WHERE id = ?"),
                (done.id.0 as i64,),
            )
            .await
            .unwrap()
            .into_rows_result()
            .unwrap()
            .single_row::<(String,)>()
            .unwrap();
        // Same author, text and time; the id's low bits differ.
        let died = Id(done.id.0 + 1);
        let row = row.replace(
            &format!("\"id\": {}", done.id.0),
            &format!("\"id\": {}", died.0),
        );
        assert!(row.contains(&format!("\"id\": {}", died.0)), "{row}");
        raw.query_unpaged(format!("INSERT INTO {ks}.posts JSON ?"), (row,))
            .await
            .unwrap();
        raw.query_unpaged(
            format!(
                "INSERT INTO {ks}.idempotency_keys (author_id, idempotency_key, post_id) \
                 VALUES (?, 'key-died', ?)"
            ),
            (author.0 as i64, died.0 as i64),
        )
        .await
        .unwrap();
        let ids = |p: starling_schema::model::Page<starling_schema::model::Post>| {
            p.items.iter().map(|p| p.id).collect::<Vec<Id>>()
        };
        let page = s.posts_by_author(author, Window::newest(10)).await.unwrap();
        assert_eq!(
            ids(page),
            vec![done.id],
            "the died attempt's post is not listed"
        );

        let retry = s.create_post(new(), Some("key-died")).await.unwrap();
        assert!(!retry.created);
        assert_eq!(retry.value.id, died);
        let page = s.posts_by_author(author, Window::newest(10)).await.unwrap();
        assert_eq!(ids(page), vec![died, done.id], "the replay lists the post");
        // Finishing the listing counts nothing (the increments are not idempotent).
        assert_eq!(s.account_counts(&[author]).await.unwrap()[0].statuses, 1);
        // A second replay finds it listed and changes nothing.
        s.create_post(new(), Some("key-died")).await.unwrap();
        let page = s.posts_by_author(author, Window::newest(10)).await.unwrap();
        assert_eq!(page.items.len(), 2);
        assert_eq!(s.account_counts(&[author]).await.unwrap()[0].statuses, 1);
        crate::conformance::Backend::finish(b).await;
    }
}

/// The backends' limits in the suite: polls may end after a second, so a test can see one end.
pub fn limits() -> Limits {
    Limits {
        poll_min_expiration_secs: 1,
        ..Limits::default()
    }
}
