//! The open-loop schedule (wrk2's idea): operation `i` of a run at rate `R` is due at
//! `i / R` seconds after the start, whatever happened to the operations before it. Worker
//! `w` of `W` owns operations `w, w + W, w + 2W, ...`, sends each at its due time (or at
//! once when it is already late) and measures latency from the due time, so time spent
//! queued behind a stalled server counts against the server.

use std::time::Duration;

/// A fixed-rate schedule of `total` operations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Schedule {
    pub rate: f64,
    pub total: u64,
    /// Operations due before this offset are warm-up: sent, not recorded.
    pub warmup: Duration,
}

impl Schedule {
    /// `rate` operations per second for `warmup + measure`.
    pub fn new(rate: f64, warmup: Duration, measure: Duration) -> anyhow::Result<Schedule> {
        anyhow::ensure!(
            rate > 0.0 && rate.is_finite(),
            "the rate must be positive, got {rate}"
        );
        let total = (rate * (warmup + measure).as_secs_f64()).round() as u64;
        Ok(Schedule {
            rate,
            total,
            warmup,
        })
    }

    /// When operation `i` is due, from the start of the run.
    pub fn due(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    pub fn is_warmup(&self, i: u64) -> bool {
        self.due(i) < self.warmup
    }

    /// Operations the measurement window holds (the total less the warm-up).
    pub fn measured(&self) -> u64 {
        (0..self.total).filter(|&i| !self.is_warmup(i)).count() as u64
    }

    /// The operations worker `worker` of `workers` owns, in due order.
    pub fn slice(&self, worker: usize, workers: usize) -> impl Iterator<Item = u64> + use<> {
        (worker as u64..self.total).step_by(workers.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_times_are_evenly_spaced_at_the_rate() {
        let s = Schedule::new(200.0, Duration::ZERO, Duration::from_secs(2)).unwrap();
        assert_eq!(s.total, 400);
        assert_eq!(s.due(0), Duration::ZERO);
        assert_eq!(s.due(1), Duration::from_millis(5));
        assert_eq!(s.due(200), Duration::from_secs(1));
        assert!(s.due(399) < Duration::from_secs(2));
    }

    #[test]
    fn workers_partition_the_schedule() {
        let s = Schedule::new(1000.0, Duration::ZERO, Duration::from_millis(1537)).unwrap();
        let mut all: Vec<u64> = (0..7).flat_map(|w| s.slice(w, 7)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..s.total).collect::<Vec<_>>());
        // Each worker's operations are due in order, W/R apart.
        let mine: Vec<u64> = s.slice(3, 7).collect();
        assert!(
            mine.windows(2)
                .all(|w| s.due(w[1]) - s.due(w[0]) >= Duration::from_micros(6_999))
        );
    }

    #[test]
    fn warmup_is_the_head_of_the_schedule() {
        let s = Schedule::new(100.0, Duration::from_secs(1), Duration::from_secs(3)).unwrap();
        assert_eq!(s.total, 400);
        assert!(s.is_warmup(99) && !s.is_warmup(100));
        assert_eq!(s.measured(), 300);
    }

    #[test]
    fn bad_rates_are_refused() {
        assert!(Schedule::new(0.0, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Schedule::new(f64::NAN, Duration::ZERO, Duration::from_secs(1)).is_err());
    }
}
