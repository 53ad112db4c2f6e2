//! Streaming metrics, in the default prometheus registry that `/metrics` exposes.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "a streaming metric could not be registered");
    }
    collector
}

static OPEN: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    IntGauge::new(
        "starling_streaming_connections",
        "Streaming connections (WebSocket and SSE) open on this node",
    )
    .ok()
    .map(register)
});

static EVENTS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "starling_streaming_events_total",
            "Streaming outcomes: delivered (queued on a connection), dropped_slow (a \
             connection disconnected for falling behind), refused (connection limit)",
        ),
        &["outcome"],
    )
    .ok()
    .map(register)
});

static DELIVERED: LazyLock<Option<IntCounter>> =
    LazyLock::new(|| EVENTS.as_ref().map(|c| c.with_label_values(&["delivered"])));

pub(super) fn opened() {
    if let Some(g) = OPEN.as_ref() {
        g.inc();
    }
}

pub(super) fn closed() {
    if let Some(g) = OPEN.as_ref() {
        g.dec();
    }
}

pub(super) fn delivered() {
    if let Some(c) = DELIVERED.as_ref() {
        c.inc();
    }
}

pub(super) fn dropped_slow() {
    if let Some(c) = EVENTS.as_ref() {
        c.with_label_values(&["dropped_slow"]).inc();
    }
}

pub(super) fn refused() {
    if let Some(c) = EVENTS.as_ref() {
        c.with_label_values(&["refused"]).inc();
    }
}
