//! Random distributions the generator and the workloads draw from: a discrete power law
//! for follower counts, Zipf ranks for user activity, and the exponent estimator the
//! tests (and the graph summary) use to check that a generated graph has the exponent it
//! was asked for.

use rand::Rng;

/// A discrete power law `P(k) ∝ k^-alpha` on `k_min..=k_max`, sampled exactly by
/// inverting its cumulative distribution.
#[derive(Clone, Debug)]
pub struct PowerLaw {
    k_min: u64,
    cdf: Vec<f64>,
}

impl PowerLaw {
    /// `alpha` must exceed 1 and `k_min` must be at least 1 and at most `k_max`.
    pub fn new(alpha: f64, k_min: u64, k_max: u64) -> anyhow::Result<PowerLaw> {
        anyhow::ensure!(
            alpha > 1.0 && alpha.is_finite(),
            "the power-law exponent must be greater than 1, got {alpha}"
        );
        anyhow::ensure!(
            k_min >= 1 && k_min <= k_max,
            "need 1 <= k_min <= k_max, got {k_min}..={k_max}"
        );
        anyhow::ensure!(
            k_max - k_min < 50_000_000,
            "a power law over more than 50M values is not supported"
        );
        let mut cdf = Vec::with_capacity((k_max - k_min + 1) as usize);
        let mut total = 0.0;
        for k in k_min..=k_max {
            total += (k as f64).powf(-alpha);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Ok(PowerLaw { k_min, cdf })
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let u: f64 = rng.r#gen();
        let i = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        self.k_min + i as u64
    }
}

/// The maximum-likelihood estimate of the exponent of a discrete power law on
/// `k_min..=k_max` from the samples in that range: the `alpha` at which the model's mean
/// of `ln k` equals the samples' (the likelihood equation), found by bisection.
/// `None` with fewer than two samples in range or when they are all `k_min`.
pub fn estimate_exponent(
    samples: impl IntoIterator<Item = u64>,
    k_min: u64,
    k_max: u64,
) -> Option<f64> {
    let (mut n, mut sum) = (0u64, 0.0f64);
    for k in samples
        .into_iter()
        .filter(|&k| k >= k_min.max(1) && k <= k_max)
    {
        n += 1;
        sum += (k as f64).ln();
    }
    let k_min = k_min.max(1);
    if n < 2 || k_max <= k_min {
        return None;
    }
    let target = sum / n as f64;
    let logs: Vec<f64> = (k_min..=k_max).map(|k| (k as f64).ln()).collect();
    // The model's mean of ln k falls as alpha grows.
    let mean_ln = |alpha: f64| {
        let (mut w, mut wl) = (0.0, 0.0);
        for &l in &logs {
            let x = (-alpha * l).exp();
            w += x;
            wl += x * l;
        }
        wl / w
    };
    let (mut lo, mut hi) = (1.0 + 1e-6, 20.0);
    if target >= mean_ln(lo) || target <= mean_ln(hi) {
        return None;
    }
    for _ in 0..60 {
        let mid = (lo + hi) / 2.0;
        if mean_ln(mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((lo + hi) / 2.0)
}

/// Zipf over ranks `0..n`: rank `r` is drawn with probability `∝ 1/(r+1)^s`.
#[derive(Clone, Debug)]
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> anyhow::Result<Zipf> {
        anyhow::ensure!(n >= 1, "Zipf needs at least one rank");
        anyhow::ensure!(
            s >= 0.0 && s.is_finite(),
            "the Zipf exponent must be >= 0, got {s}"
        );
        let mut cdf = Vec::with_capacity(n);
        let mut total = 0.0;
        for r in 0..n {
            total += 1.0 / ((r + 1) as f64).powf(s);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Ok(Zipf { cdf })
    }

    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let u: f64 = rng.r#gen();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn power_law_exponent_is_recovered() {
        for alpha in [2.0, 2.5, 3.0] {
            let law = PowerLaw::new(alpha, 1, 100_000).unwrap();
            let mut rng = StdRng::seed_from_u64(7);
            let samples: Vec<u64> = (0..100_000).map(|_| law.sample(&mut rng)).collect();
            assert!(samples.iter().all(|&k| (1..=100_000).contains(&k)));
            let est = estimate_exponent(samples.iter().copied(), 1, 100_000).unwrap();
            assert!((est - alpha).abs() < 0.05, "alpha {alpha}: estimated {est}");
        }
    }

    #[test]
    fn power_law_respects_truncation() {
        let law = PowerLaw::new(1.5, 3, 10).unwrap();
        let est = estimate_exponent(
            {
                let mut rng = StdRng::seed_from_u64(4);
                (0..50_000).map(move |_| law.sample(&mut rng))
            },
            3,
            10,
        )
        .unwrap();
        assert!((est - 1.5).abs() < 0.05, "truncated: {est}");
        let law = PowerLaw::new(1.5, 3, 10).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let samples: Vec<u64> = (0..10_000).map(|_| law.sample(&mut rng)).collect();
        assert!(samples.iter().all(|&k| (3..=10).contains(&k)));
        assert!(samples.contains(&10) && samples.contains(&3));
        assert!(PowerLaw::new(1.0, 1, 10).is_err());
        assert!(PowerLaw::new(2.0, 0, 10).is_err());
    }

    #[test]
    fn estimator_needs_a_tail() {
        assert_eq!(estimate_exponent([1, 1, 1], 5, 100), None);
        assert_eq!(estimate_exponent([], 1, 100), None);
        // All at the minimum: no finite exponent explains it.
        assert_eq!(estimate_exponent([1, 1, 1], 1, 100), None);
    }

    #[test]
    fn zipf_frequencies_follow_the_exponent() {
        let s = 1.2;
        let zipf = Zipf::new(1000, s).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let mut counts = vec![0u64; 1000];
        for _ in 0..400_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        // rank 1 is drawn 2^s times as often as rank 2, and 4^s times as often as rank 4.
        let r12 = counts[0] as f64 / counts[1] as f64;
        let r14 = counts[0] as f64 / counts[3] as f64;
        assert!((r12 - 2f64.powf(s)).abs() < 0.08, "{r12}");
        assert!((r14 - 4f64.powf(s)).abs() < 0.25, "{r14}");
        assert!(counts[999] > 0 || counts[900..].iter().sum::<u64>() > 0);
    }

    #[test]
    fn zipf_zero_is_uniform() {
        let zipf = Zipf::new(4, 0.0).unwrap();
        let mut rng = StdRng::seed_from_u64(9);
        let mut counts = [0u64; 4];
        for _ in 0..40_000 {
            counts[zipf.sample(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
    }
}
