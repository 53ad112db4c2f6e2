//! The push worker's metrics, in the default prometheus registry that `/metrics` exposes.

use std::sync::LazyLock;

use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts};

fn register<C: prometheus::core::Collector + Clone + 'static>(collector: C) -> C {
    if let Err(e) = prometheus::default_registry().register(Box::new(collector.clone())) {
        tracing::warn!(error = %e, "a push metric could not be registered");
    }
    collector
}

static MESSAGES: LazyLock<Option<IntCounterVec>> = LazyLock::new(|| {
    let opts = Opts::new(
        "starling_push_messages_total",
        "Web Push messages by outcome (delivered, gone, refused, failed)",
    );
    IntCounterVec::new(opts, &["outcome"]).ok().map(register)
});

static LAG: LazyLock<Option<Histogram>> = LazyLock::new(|| {
    let opts = HistogramOpts::new(
        "starling_push_lag_seconds",
        "Time from a notification's event to the end of its pushes",
    )
    .buckets(vec![
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ]);
    Histogram::with_opts(opts).ok().map(register)
});

pub(crate) fn message(outcome: &str) {
    if let Some(m) = MESSAGES.as_ref() {
        m.with_label_values(&[outcome]).inc();
    }
}

pub(crate) fn lag(ms: u64) {
    if let Some(h) = LAG.as_ref() {
        h.observe(ms as f64 / 1_000.0);
    }
}
