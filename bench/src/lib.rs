//! `starling-bench`: the synthetic-user benchmark harness. It drives a running Starling
//! only through its public API (HTTP and WebSocket), like a fleet of Mastodon clients,
//! and reports what users of a feed backend notice: latency per operation from the
//! intended send time (open loop, no coordinated omission), achieved against target rate,
//! errors by kind, fan-out lag, and the machine's own ceilings.
//!
//! It owns graph generation and import, seeding (public API, or the admin bulk import for
//! large graphs), the workloads, the open-loop runner, the closed-loop mode, sweeps,
//! ceilings, the CPU split (server, Redis, NATS, harness) and reports. It
//! depends on no server crate: only a client's libraries. Being a command-line tool, its
//! errors are `anyhow` errors with context.

pub mod ceilings;
pub mod charts;
pub mod client;
pub mod closed;
pub mod dist;
pub mod graph;
pub mod machine;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod seed;
pub mod state;
pub mod stats;
pub mod stream;
pub mod sweep;
pub mod workload;
