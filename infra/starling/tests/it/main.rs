//! End-to-end tests of a running Starling: the binary's commands, and whole nodes started
//! in-process against real Redis shards, a real NATS server and the embedded store.

mod abuse;
mod admin;
mod caches;
mod cli;
mod conversations;
mod core_path;
mod discovery;
mod edits;
mod feeds;
mod golden;
mod helpers;
mod media;
mod oauth;
mod profile;
mod push;
mod roles;
mod scopes;
mod search;
mod social;
mod startup;
mod streaming;
