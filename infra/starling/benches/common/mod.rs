//! What the benches share: a whole Starling on this machine (one Redis shard, a JetStream
//! NATS server and an embedded store in a temporary directory), started in-process.

use starling::{Node, Role};
use starling_schema::settings::{EmbeddedSettings, Settings};
use starling_store::AnyStore;
use starling_store::embedded::EmbeddedStore;
use starling_testkit::{NatsServer, RedisShards};

/// A running node and what it runs on; dropping it stops the servers and removes the data.
pub struct Local {
    pub node: Node,
    pub store: AnyStore,
    pub redis: RedisShards,
    pub _nats: NatsServer,
    pub _dir: tempfile::TempDir,
}

/// Start `roles` on a fresh local installation, quiet logs, API on a free port.
pub async fn start(roles: &[Role]) -> Local {
    let redis = RedisShards::start(1).expect("redis");
    let nats = NatsServer::start().expect("nats");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = Settings::default();
    settings.log.filter = "error".into();
    settings.api.listen = "127.0.0.1:0".into();
    settings.redis.shards = redis.urls();
    settings.nats.url = nats.url();
    settings.store.embedded = EmbeddedSettings {
        path: dir.path().join("store"),
        fsync: false,
        cache_mib: 256,
    };
    settings.search.path = dir.path().join("search");
    // Benchmarks drive the API from one address at full speed: no rate limits.
    settings.rate_limits.enabled = false;
    settings.limits.password_hash_queue = 4_096;
    let store = AnyStore::Embedded(
        EmbeddedStore::open(&settings.store.embedded, 0, settings.limits.clone()).expect("store"),
    );
    let node = starling::start_with_store(settings, roles, store.clone())
        .await
        .expect("node");
    Local {
        node,
        store,
        redis,
        _nats: nats,
        _dir: dir,
    }
}
