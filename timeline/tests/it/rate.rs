//! Shared rate-limit buckets on the shards: several clients (api nodes) count against one
//! bucket, exactly, and a bucket lives on the shard its key hashes to.

use std::time::Duration;

use anyhow::Result;
use deadpool_redis::redis;
use futures::future::join_all;
use starling_timeline::Timelines;

use crate::{Cluster, settings};

#[tokio::test]
async fn two_nodes_share_one_bucket_exactly() -> Result<()> {
    let c = Cluster::start(800).await?;
    let other = Timelines::connect(&settings(c.shards.urls(), 800)).await?;
    let (a, b) = (&c.timelines, &other);
    let first = a.rate_hit("api_token:abc", 5, 300_000).await?;
    assert!(first.allowed);
    assert_eq!(first.remaining, 4);
    assert!(first.reset_ms <= 60_000, "one slot refills in 60 s");
    for _ in 0..2 {
        assert!(a.rate_hit("api_token:abc", 5, 300_000).await?.allowed);
    }
    assert_eq!(b.rate_hit("api_token:abc", 5, 300_000).await?.remaining, 1);
    assert!(b.rate_hit("api_token:abc", 5, 300_000).await?.allowed);
    let refused = a.rate_hit("api_token:abc", 5, 300_000).await?;
    assert!(!refused.allowed, "the other node took the last slot");
    assert_eq!(refused.remaining, 0);
    assert!(
        refused.reset_ms > 50_000 && refused.reset_ms <= 60_000,
        "{refused:?}"
    );
    // Concurrent hits from both nodes: exactly the limit gets through.
    let hits = join_all((0..40).map(|i| {
        let t = if i % 2 == 0 { a } else { b };
        t.rate_hit("api_ip:198.51.100.1", 10, 60_000)
    }))
    .await;
    let allowed = hits
        .into_iter()
        .filter(|h| h.as_ref().is_ok_and(|h| h.allowed))
        .count();
    assert_eq!(allowed, 10);
    // The bucket is one key on the shard the ring names, expiring once it is full again.
    let shard = a.ring().shard_of_key(b"api_token:abc");
    let mut raw = c.raw(shard).await?;
    let ttl: i64 = redis::cmd("PTTL")
        .arg("rl:api_token:abc")
        .query_async(&mut raw)
        .await?;
    assert!(ttl > 0 && ttl <= 300_000, "{ttl}");
    // A short bucket refills.
    assert!(a.rate_hit("short", 1, 200).await?.allowed);
    assert!(!a.rate_hit("short", 1, 200).await?.allowed);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(a.rate_hit("short", 1, 200).await?.allowed);
    Ok(())
}
