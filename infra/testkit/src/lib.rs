//! Real backing services for Starling's integration tests.
//!
//! This crate owns the life cycle of the external servers an integration test talks to:
//! it starts `redis-server` ([`RedisServer`], [`RedisShards`]) and `nats-server -js`
//! ([`NatsServer`]) as child processes on free ports of 127.0.0.1, each with its own
//! temporary directory and log file, waits until they answer their protocol, lets a test
//! stop and restart them (a Redis shard that comes back empty, a NATS server that comes
//! back with its JetStream data), and kills them and removes their files on drop, also
//! when the test panics. [`S3Bucket`] names a prefix of its own in the S3-compatible
//! server the environment points at (started by `infra/s3-server.sh`). It owns no
//! Starling logic and speaks no more of the protocols than it needs to see that a server
//! is ready. A process killed with SIGKILL cannot run
//! drop, so a test runner that kills a test binary leaves its servers behind.

mod nats;
mod process;
mod redis;
mod s3;

pub use nats::NatsServer;
pub use redis::{RedisServer, RedisShards};
pub use s3::S3Bucket;
