//! The sweep: step the target rate up (geometrically) until a step fails to hold, then
//! bisect between the last rate that held and the first that did not. A step holds when
//! its p99 is within the bound, errors are under the allowed share and the server kept
//! up (achieved rate at least the given share of the target).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepOptions {
    pub start: f64,
    pub factor: f64,
    pub max_rate: f64,
    pub p99_bound_ms: f64,
    pub max_error_share: f64,
    pub min_achieved_share: f64,
    /// Bisection steps after the first failure.
    pub refine: u32,
}

/// What one step of a sweep measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Step {
    pub target_rate: f64,
    pub achieved_rate: f64,
    pub p99_ms: f64,
    pub error_share: f64,
    pub held: bool,
}

impl SweepOptions {
    pub fn holds(&self, target: f64, achieved: f64, p99_ms: f64, error_share: f64) -> bool {
        p99_ms <= self.p99_bound_ms
            && error_share <= self.max_error_share
            && achieved >= self.min_achieved_share * target
    }
}

/// Run `step(rate)` over the sweep's rates; returns every step and the index of the
/// highest rate that held. `step` returns `(achieved, p99_ms, error_share, extra)`; the
/// extras are kept beside the steps (a whole run's results, say).
pub async fn sweep<T, F, Fut>(
    opts: &SweepOptions,
    mut step: F,
) -> anyhow::Result<(Vec<(Step, T)>, Option<usize>)>
where
    F: FnMut(f64) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<(f64, f64, f64, T)>>,
{
    anyhow::ensure!(opts.start > 0.0, "the sweep starts above 0");
    anyhow::ensure!(opts.factor > 1.0, "the sweep factor must exceed 1");
    let mut steps: Vec<(Step, T)> = Vec::new();
    let mut best: Option<usize> = None;
    let mut failed_at: Option<f64> = None;
    let mut rate = opts.start;
    let mut run = async |rate: f64, steps: &mut Vec<(Step, T)>| -> anyhow::Result<bool> {
        let (achieved, p99_ms, error_share, extra) = step(rate).await?;
        let held = opts.holds(rate, achieved, p99_ms, error_share);
        steps.push((
            Step {
                target_rate: rate,
                achieved_rate: achieved,
                p99_ms,
                error_share,
                held,
            },
            extra,
        ));
        Ok(held)
    };
    while rate <= opts.max_rate {
        if run(rate, &mut steps).await? {
            best = Some(steps.len() - 1);
            rate *= opts.factor;
        } else {
            failed_at = Some(rate);
            break;
        }
    }
    if let Some(mut hi) = failed_at {
        let mut lo = best.map_or(0.0, |b| steps[b].0.target_rate);
        for _ in 0..opts.refine {
            let mid = ((lo + hi) / 2.0).round();
            if mid <= lo || mid >= hi {
                break;
            }
            if run(mid, &mut steps).await? {
                best = Some(steps.len() - 1);
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    Ok((steps, best))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> SweepOptions {
        SweepOptions {
            start: 100.0,
            factor: 2.0,
            max_rate: 100_000.0,
            p99_bound_ms: 10.0,
            max_error_share: 0.01,
            min_achieved_share: 0.95,
            refine: 3,
        }
    }

    /// A server whose p99 grows linearly with load: 1 ms + 1 ms per 1,000 req/s.
    async fn linear(rate: f64) -> anyhow::Result<(f64, f64, f64, ())> {
        Ok((rate, 1.0 + rate / 1000.0, 0.0, ()))
    }

    #[tokio::test]
    async fn finds_the_highest_rate_that_held() {
        let (steps, best) = sweep(&opts(), linear).await.unwrap();
        let rates: Vec<f64> = steps.iter().map(|s| s.0.target_rate).collect();
        // 100..6400 hold, 12800 fails; bisecting, 9600 fails, 8000 and 8800 hold.
        assert_eq!(
            rates,
            vec![
                100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0, 9600.0, 8000.0, 8800.0
            ]
        );
        let best = &steps[best.unwrap()].0;
        assert_eq!(best.target_rate, 8800.0);
        assert!(best.held && best.p99_ms <= 10.0);
    }

    #[tokio::test]
    async fn errors_and_falling_behind_fail_a_step() {
        let o = opts();
        assert!(!o.holds(1000.0, 1000.0, 2.0, 0.02));
        assert!(!o.holds(1000.0, 900.0, 2.0, 0.0));
        assert!(o.holds(1000.0, 960.0, 10.0, 0.01));
        let (steps, best) = sweep(&o, async |rate| Ok((rate * 0.5, 1.0, 0.0, ())))
            .await
            .unwrap();
        assert_eq!(best, None);
        assert_eq!(steps[0].0.target_rate, 100.0);
        assert!(steps.iter().all(|s| !s.0.held));
    }

    #[tokio::test]
    async fn stops_at_the_maximum_rate() {
        let o = SweepOptions {
            max_rate: 500.0,
            ..opts()
        };
        let (steps, best) = sweep(&o, linear).await.unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[best.unwrap()].0.target_rate, 400.0);
    }
}
