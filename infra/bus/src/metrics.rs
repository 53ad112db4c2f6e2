//! The bus's metrics, in the default prometheus registry that `/metrics` exposes.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

/// Registers a collector, logging (not failing) if the name is taken: metrics are for
/// operators and must never stop events.
fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "a bus metric could not be registered");
    }
    collector
}

static PUBLISHED: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let opts = Opts::new(
        "starling_events_published_total",
        "Events acknowledged by JetStream, by type (outbox retries included)",
    );
    IntCounterVec::new(opts, &["type"]).ok().map(register)
});

static OUTBOX_PENDING: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    IntGauge::new(
        "starling_outbox_pending",
        "Events waiting in this node's outbox for NATS to take them",
    )
    .ok()
    .map(register)
});

static PUBLISH_FAILURES: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    IntCounter::new(
        "starling_publish_failures_total",
        "Publishes JetStream did not acknowledge in time (the event went to or stayed in the outbox)",
    )
    .ok()
    .map(register)
});

pub(crate) fn published(type_name: &str) {
    if let Some(c) = PUBLISHED.as_ref() {
        c.with_label_values(&[type_name]).inc();
    }
}

pub(crate) fn publish_failed() {
    if let Some(c) = PUBLISH_FAILURES.as_ref() {
        c.inc();
    }
}

pub(crate) fn outbox_pending(n: u64) {
    if let Some(g) = OUTBOX_PENDING.as_ref() {
        g.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

static PULL_FAILURES: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let opts = Opts::new(
        "starling_consumer_pull_failures_total",
        "Pull requests to a durable consumer that failed (NATS unreachable), by consumer",
    );
    IntCounterVec::new(opts, &["consumer"]).ok().map(register)
});

pub(crate) fn pull_failed(consumer: &str) {
    if let Some(c) = PULL_FAILURES.as_ref() {
        c.with_label_values(&[consumer]).inc();
    }
}
