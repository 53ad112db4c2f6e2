//! The fan-out's metrics, in the default prometheus registry that `/metrics` exposes.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};

/// Registers a collector, logging (not failing) if the name is taken: metrics are for
/// operators and must never stop events.
fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "a fan-out metric could not be registered");
    }
    collector
}

static LAG: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "starling_fanout_lag_seconds",
        "Time from an event's production to its application by fan-out",
    )
    .buckets(vec![
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]);
    Histogram::with_opts(opts).ok().map(register)
});

static EVENTS: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let opts = Opts::new(
        "starling_fanout_events_total",
        "Events handled by fan-out, by type and outcome (applied, retried, failed, unreadable)",
    );
    IntCounterVec::new(opts, &["type", "outcome"])
        .ok()
        .map(register)
});

static INSERTS: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    IntCounter::new(
        "starling_fanout_inserts_total",
        "Timeline inserts requested by fan-out (one per home or list timeline per post)",
    )
    .ok()
    .map(register)
});

static LIVE_SENT: LazyLock<Option<IntCounter>> = LazyLock::new(|| {
    IntCounter::new(
        "starling_fanout_live_events_total",
        "Live events sent by fan-out to streaming users' subjects",
    )
    .ok()
    .map(register)
});

static CONSUMER_PENDING: LazyLock<Option<IntGauge>> = LazyLock::new(|| {
    IntGauge::new(
        "starling_fanout_consumer_pending",
        "Events in the stream not yet delivered to the fan-out consumer",
    )
    .ok()
    .map(register)
});

pub(crate) fn lag(seconds: f64) {
    if let Some(h) = LAG.as_ref() {
        h.observe(seconds.max(0.0));
    }
}

pub(crate) fn event(type_name: &str, outcome: &str) {
    if let Some(c) = EVENTS.as_ref() {
        c.with_label_values(&[type_name, outcome]).inc();
    }
}

pub(crate) fn inserted(n: usize) {
    if let Some(c) = INSERTS.as_ref() {
        c.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

pub(crate) fn consumer_pending(n: u64) {
    if let Some(g) = CONSUMER_PENDING.as_ref() {
        g.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

pub(crate) fn live_sent(n: usize) {
    if let Some(c) = LIVE_SENT.as_ref() {
        c.inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }
}
