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
        let store = EmbeddedStore::open(&settings, 1, Limits::default()).expect("open store");
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
        let store =
            EmbeddedStore::open(&self.settings, 1, Limits::default()).expect("reopen store");
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
        let store = ScyllaStore::connect_fresh_keyspace(&uri, &keyspace, 1, Limits::default())
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
            ScyllaStore::connect_fresh_keyspace(&self.uri, &self.keyspace, 1, Limits::default())
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
}
