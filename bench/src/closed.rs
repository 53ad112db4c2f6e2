//! The closed-loop mode: `N` connections each send the next operation of the mix as soon
//! as the previous one is answered, for a duration. It finds the most the server can
//! answer (and the latency at that load) rather than the latency at a chosen rate; the
//! result is given as a share of the `GET /health` rate measured the same way in the same
//! run, the ceiling of any API operation on this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::client::{Api, run_op};
use crate::procstat::{CpuReport, CpuWatch};
use crate::runner::Ctx;
use crate::stats::Recorder;
use crate::workload::Mix;

#[derive(Clone, Debug)]
pub struct ClosedOptions {
    pub connections: usize,
    /// Sent, not counted.
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    pub cpu: Option<CpuWatch>,
}

/// The measured window of a closed-loop run: an answer counts when it arrives inside it
/// (whenever its request was sent), so the count over the window is the throughput
/// exactly, and requests cut by either edge are neither lost nor counted twice.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    pub fn counts(&self, done: Instant) -> bool {
        done >= self.start && done < self.end
    }

    /// The second of the window an answer arrived in.
    pub fn second(&self, done: Instant) -> usize {
        done.saturating_duration_since(self.start).as_secs() as usize
    }

    /// Whether a connection may send another request at `now`.
    pub fn open(&self, now: Instant) -> bool {
        now < self.end
    }
}

#[derive(Debug)]
pub struct ClosedResult {
    pub connections: usize,
    pub measured: Duration,
    /// Latency from each request's send to its answer, for answers inside the window.
    pub recorder: Recorder,
    pub completed: u64,
    pub throughput: f64,
    pub cpu: Option<CpuReport>,
}

/// Answers per second over the window, and the count.
pub fn throughput(recorder: &Recorder, window: Duration) -> (u64, f64) {
    let n: u64 = recorder.ops.values().map(|s| s.latency.len()).sum();
    (n, n as f64 / window.as_secs_f64().max(1e-9))
}

/// Run `mix` closed-loop on `opts.connections` connections.
pub async fn run_closed(
    ctx: &Ctx,
    mix: Arc<Mix>,
    opts: &ClosedOptions,
) -> anyhow::Result<ClosedResult> {
    anyhow::ensure!(
        opts.connections > 0,
        "closed loop needs at least 1 connection"
    );
    anyhow::ensure!(!opts.duration.is_zero(), "closed loop needs a duration");
    let start = Instant::now() + opts.warmup;
    let window = Window {
        start,
        end: start + opts.duration,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..opts.connections {
        let (api, users, mix) = (ctx.api.clone(), ctx.users.clone(), mix.clone());
        let mut rng = StdRng::seed_from_u64(opts.seed.wrapping_mul(7_919) ^ c as u64);
        tasks.spawn(async move {
            let mut rec = Recorder::default();
            while window.open(Instant::now()) {
                let op = mix.next(&mut rng);
                let sent = Instant::now();
                let result = run_op(&api, &users, &op).await;
                let done = Instant::now();
                if window.counts(done) {
                    let micros = done.saturating_duration_since(sent).as_micros() as u64;
                    let err = result.as_ref().err().map(|e| e.0.as_str());
                    rec.record(op.name(), micros, window.second(done), err);
                }
            }
            rec
        });
    }
    let (cpu_from, cpu_to) = match &opts.cpu {
        Some(watch) => {
            tokio::time::sleep_until(window.start.into()).await;
            let from = watch.snapshot();
            tokio::time::sleep_until(window.end.into()).await;
            (Some(from), Some(watch.snapshot()))
        }
        None => (None, None),
    };
    let mut recorder = Recorder::default();
    while let Some(joined) = tasks.join_next().await {
        recorder.merge(&joined?);
    }
    let (completed, rate) = throughput(&recorder, opts.duration);
    let cpu = match (&opts.cpu, cpu_from, cpu_to) {
        (Some(w), Some(a), Some(b)) => Some(w.report(&a, &b, completed)),
        _ => None,
    };
    Ok(ClosedResult {
        connections: opts.connections,
        measured: opts.duration,
        recorder,
        completed,
        throughput: rate,
        cpu,
    })
}

/// `GET /health` closed-loop on `connections` connections for `duration`: the ceiling the
/// workload's throughput is compared with, with the CPU split while it ran.
pub async fn health_ceiling(
    api: &Api,
    connections: usize,
    duration: Duration,
    cpu: Option<&CpuWatch>,
) -> anyhow::Result<(f64, Option<CpuReport>)> {
    let from = cpu.map(CpuWatch::snapshot);
    let rate = crate::ceilings::http_rate(api, duration, connections).await?;
    let report = match (cpu, from) {
        (Some(w), Some(a)) => {
            let b = w.snapshot();
            let requests = (rate * duration.as_secs_f64()).round() as u64;
            Some(w.report(&a, &b, requests))
        }
        _ => None,
    };
    Ok((rate, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_count_when_they_arrive_inside_the_window() {
        let t0 = Instant::now();
        let w = Window {
            start: t0 + Duration::from_secs(2),
            end: t0 + Duration::from_secs(5),
        };
        // During warm-up: not counted, but a connection may send.
        assert!(!w.counts(t0 + Duration::from_millis(1999)) && w.open(t0));
        // Sent in warm-up, answered inside: counted, in second 0.
        assert!(w.counts(t0 + Duration::from_secs(2)));
        assert_eq!(w.second(t0 + Duration::from_millis(2999)), 0);
        assert_eq!(w.second(t0 + Duration::from_millis(4999)), 2);
        // At the end: no more sends, and a late answer is not counted.
        assert!(!w.open(t0 + Duration::from_secs(5)));
        assert!(!w.counts(t0 + Duration::from_secs(5)));
    }

    #[test]
    fn throughput_is_answers_over_the_window() {
        let mut rec = Recorder::default();
        for i in 0..300 {
            rec.record("home_read", 900, i / 100, None);
        }
        for i in 0..150 {
            rec.record("post", 2_000, i / 50, Some("http 500"));
        }
        let (n, rate) = throughput(&rec, Duration::from_secs(3));
        assert_eq!(n, 450);
        assert!((rate - 150.0).abs() < 1e-9);
        assert_eq!(rec.ops["post"].error_count(), 150);
    }
}
