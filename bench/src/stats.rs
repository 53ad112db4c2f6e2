//! What a run records: one HdrHistogram of latency (microseconds) per operation, errors by
//! kind, completions per second of the measurement window; each worker keeps its own
//! [`Recorder`] and the run merges them at the end. [`Summary`] is the reportable form.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram holds: one minute, in microseconds. Larger values are
/// clamped to it (and still counted).
const MAX_MICROS: u64 = 60_000_000;

pub fn histogram() -> Histogram<u64> {
    // Three significant digits from 1 µs to a minute; the bounds are constant and valid.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

/// One operation's latencies, errors and completions per second.
#[derive(Clone, Debug)]
pub struct OpStats {
    pub latency: Histogram<u64>,
    pub errors: BTreeMap<String, u64>,
    /// Completions (successes and errors) in each second of the measurement window.
    pub per_second: Vec<u64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            latency: histogram(),
            errors: BTreeMap::new(),
            per_second: Vec::new(),
        }
    }
}

impl OpStats {
    pub fn record(&mut self, micros: u64, second: usize, error: Option<&str>) {
        self.latency.saturating_record(micros.clamp(1, MAX_MICROS));
        if let Some(kind) = error {
            *self.errors.entry(kind.to_owned()).or_default() += 1;
        }
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    pub fn merge(&mut self, other: &OpStats) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (a, b) in self.per_second.iter_mut().zip(&other.per_second) {
            *a += b;
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Per-operation statistics of one worker, or of a whole run after merging.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub ops: BTreeMap<String, OpStats>,
    /// How late operations were sent relative to their due time (client lag).
    pub send_lateness: Option<Histogram<u64>>,
}

impl Recorder {
    pub fn record(&mut self, op: &str, micros: u64, second: usize, error: Option<&str>) {
        if !self.ops.contains_key(op) {
            self.ops.insert(op.to_owned(), OpStats::default());
        }
        if let Some(stats) = self.ops.get_mut(op) {
            stats.record(micros, second, error);
        }
    }

    pub fn record_lateness(&mut self, micros: u64) {
        self.send_lateness
            .get_or_insert_with(histogram)
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Recorder) {
        for (op, stats) in &other.ops {
            self.ops.entry(op.clone()).or_default().merge(stats);
        }
        if let Some(late) = &other.send_lateness {
            let _ = self.send_lateness.get_or_insert_with(histogram).add(late);
        }
    }

    /// Every operation's latencies in one histogram.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut all = histogram();
        for stats in self.ops.values() {
            let _ = all.add(&stats.latency);
        }
        all
    }
}

/// Percentiles of a histogram in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// `(percentile, ms)` pairs for a percentile chart.
    pub curve: Vec<(f64, f64)>,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |v: u64| v as f64 / 1000.0;
        let q = |q: f64| {
            if h.is_empty() {
                0.0
            } else {
                ms(h.value_at_quantile(q))
            }
        };
        let curve = [
            0.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 100.0,
        ]
        .into_iter()
        .map(|p| (p, q(p / 100.0)))
        .collect();
        Latency {
            count: h.len(),
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if h.is_empty() { 0.0 } else { ms(h.max()) },
            curve,
        }
    }
}

/// The CDF of a histogram as `(ms, cumulative share)` points, one per recorded bucket.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let total = h.len() as f64;
    let mut seen = 0u64;
    h.iter_recorded()
        .map(|v| {
            seen += v.count_at_value();
            (v.value_iterated_to() as f64 / 1000.0, seen as f64 / total)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_workers_equal_one_recorder() {
        let mut one = Recorder::default();
        let mut workers = vec![
            Recorder::default(),
            Recorder::default(),
            Recorder::default(),
        ];
        for i in 0..3_000u64 {
            let micros = 100 + (i * 7919) % 20_000;
            let (op, err) = if i % 10 == 0 {
                ("post", (i % 30 == 0).then_some("http 503"))
            } else {
                ("home", None)
            };
            let second = (i / 1000) as usize;
            one.record(op, micros, second, err);
            workers[(i % 3) as usize].record(op, micros, second, err);
            one.record_lateness(i % 50 + 1);
            workers[(i % 3) as usize].record_lateness(i % 50 + 1);
        }
        let mut merged = Recorder::default();
        for w in &workers {
            merged.merge(w);
        }
        for op in ["post", "home"] {
            let (a, b) = (&one.ops[op], &merged.ops[op]);
            assert_eq!(a.latency, b.latency);
            assert_eq!(a.errors, b.errors);
            assert_eq!(a.per_second, b.per_second);
            assert_eq!(Latency::of(&a.latency), Latency::of(&b.latency));
        }
        assert_eq!(merged.ops["post"].error_count(), 100);
        assert_eq!(merged.ops["home"].per_second, vec![900, 900, 900]);
        assert_eq!(merged.all_latency().len(), 3_000);
        assert_eq!(one.send_lateness, merged.send_lateness);
    }

    #[test]
    fn percentiles_are_in_milliseconds() {
        let mut s = OpStats::default();
        for ms in 1..=100u64 {
            s.record(ms * 1000, 0, None);
        }
        let l = Latency::of(&s.latency);
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.1, "{}", l.p50_ms);
        assert!((l.p99_ms - 99.0).abs() < 0.1, "{}", l.p99_ms);
        assert!((l.max_ms - 100.0).abs() < 0.1);
        let c = cdf(&s.latency);
        assert_eq!(c.last().map(|p| p.1), Some(1.0));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let mut s = OpStats::default();
        s.record(u64::MAX, 3, Some("timeout"));
        assert_eq!(s.latency.len(), 1);
        assert_eq!(s.per_second, vec![0, 0, 0, 1]);
        assert_eq!(s.errors["timeout"], 1);
        assert_eq!(Latency::of(&histogram()).p99_ms, 0.0);
    }
}
