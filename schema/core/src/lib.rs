//! The shared language of Starling: ids, the domain model, the events that travel on NATS,
//! input rules, error kinds and settings. The CQL schema lives beside this crate in
//! `schema/cql/`.
//!
//! Every other crate depends on this one, so it stays small and free of I/O: no database
//! drivers, no Redis, no NATS, no actix. It owns no behaviour beyond validation, encoding and the rules every part
//! must apply alike (who may see a post: [`policy`]).

pub mod conversations;
pub mod discovery;
pub mod error;
pub mod events;
pub mod feeds;
pub mod ids;
pub mod media;
pub mod model;
pub mod policy;
pub mod polls;
pub mod profile;
pub mod push;
pub mod settings;
pub mod startup;
pub mod text;
pub mod thread;
pub mod validate;

pub use error::{ErrorKind, Invalid};
pub use ids::Id;
