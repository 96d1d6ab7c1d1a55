//! Confidence intervals for the change of a figure between two runs, by
//! bootstrap: the regression verdicts of `analysis::regression` rest on
//! them, so "200 samples moving 3 %" reads as noise and a real slowdown
//! does not.
//!
//! - **Quantiles of a lossless histogram.** The q-quantile of n draws
//!   from a distribution F is F⁻¹ of the k-th uniform order statistic,
//!   k = ⌈q·n⌉, which is Beta(k, n + 1 − k) distributed. A replicate
//!   draws that Beta and reads the histogram's inverse CDF: the exact
//!   bootstrap of the quantile, O(log bins) per replicate, however many
//!   requests the run had.
//! - **Autocorrelation.** Requests of one second share a queue, so n
//!   latencies are worth fewer independent ones. The effective n is
//!   n·(1 − ρ)/(1 + ρ), ρ the lag-1 autocorrelation of the per-second
//!   series (the AR(1) variance inflation), and the Beta uses it.
//! - **Rates over seconds** (requests/s, tokens/s, the error rate as a
//!   ratio of sums): a moving-block bootstrap of the per-second series,
//!   blocks of ⌈n^⅓⌉ seconds, so bursts stay together.
//!
//! Everything is seeded: the same two runs always give the same interval.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution as _};

use super::Histogram;

/// Replicates drawn per interval.
pub const REPLICATES: u32 = 2000;

/// The seeded generator every interval draws from.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A histogram as sorted values (in the reported unit) with cumulative
/// counts, for inverse-CDF reads.
#[derive(Clone, Debug)]
pub struct Cdf {
    values: Vec<f64>,
    cumulative: Vec<u64>,
}

impl Cdf {
    /// Every recorded value of `histogram`, divided by `divisor`.
    pub fn of(histogram: &Histogram, divisor: f64) -> Option<Cdf> {
        let mut values = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0;
        for (value, count) in histogram.recorded() {
            total += count;
            values.push(value as f64 / divisor);
            cumulative.push(total);
        }
        (total > 0).then_some(Cdf { values, cumulative })
    }

    pub fn len(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value below which a share `u` (0..=1) of the values lie.
    pub fn inverse(&self, u: f64) -> f64 {
        let rank = ((u * self.len() as f64).ceil() as u64).max(1);
        let i = self.cumulative.partition_point(|&c| c < rank);
        self.values[i.min(self.values.len() - 1)]
    }

    /// Bootstrap replicates of the `q`-quantile of `n_eff` draws.
    pub fn quantile_replicates(&self, q: f64, n_eff: f64, rng: &mut StdRng) -> Vec<f64> {
        let n = n_eff.max(2.0);
        let k = (q * n).ceil().clamp(1.0, n);
        let Ok(beta) = Beta::new(k, n + 1.0 - k) else {
            return vec![self.inverse(q); REPLICATES as usize];
        };
        (0..REPLICATES)
            .map(|_| self.inverse(beta.sample(rng)))
            .collect()
    }
}

/// Independent values `n` autocorrelated ones are worth, given the lag-1
/// autocorrelation `rho` of their per-second series (negative ρ counts
/// as none; never more than `n`, never fewer than 2).
pub fn effective_n(n: u64, rho: f64) -> f64 {
    let rho = rho.clamp(0.0, 0.99);
    (n as f64 * (1.0 - rho) / (1.0 + rho)).clamp(2.0_f64.min(n as f64), n as f64)
}

/// The moving-block length for `n` seconds: ⌈n^⅓⌉.
pub fn block_length(n: usize) -> usize {
    ((n as f64).cbrt().ceil() as usize).clamp(1, n.max(1))
}

/// The indices of one moving-block resample of `n` seconds.
fn block_resample(n: usize, block: usize, rng: &mut StdRng, into: &mut Vec<usize>) {
    into.clear();
    let starts = n - block + 1;
    while into.len() < n {
        let start = rng.random_range(0..starts);
        let take = block.min(n - into.len());
        into.extend(start..start + take);
    }
}

/// Bootstrap replicates of Σnum / Σden over seconds resampled in moving
/// blocks (the mean of a series: `den` all ones). `None` without data.
pub fn ratio_replicates(num: &[f64], den: &[f64], rng: &mut StdRng) -> Option<Vec<f64>> {
    let n = num.len().min(den.len());
    if n == 0 {
        return None;
    }
    let block = block_length(n);
    let mut picked = Vec::with_capacity(n);
    let replicates = (0..REPLICATES)
        .map(|_| {
            block_resample(n, block, rng, &mut picked);
            let top: f64 = picked.iter().map(|&i| num[i]).sum();
            let bottom: f64 = picked.iter().map(|&i| den[i]).sum();
            if bottom > 0.0 { top / bottom } else { 0.0 }
        })
        .collect();
    Some(replicates)
}

/// Bootstrap replicates of `statistic` (given the resampled values,
/// sorted) over moving blocks of `values`.
pub fn block_statistic_replicates(
    values: &[f64],
    rng: &mut StdRng,
    statistic: impl Fn(&[f64]) -> Option<f64>,
) -> Option<Vec<f64>> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let block = block_length(n);
    let (mut picked, mut sample) = (Vec::with_capacity(n), Vec::with_capacity(n));
    (0..REPLICATES)
        .map(|_| {
            block_resample(n, block, rng, &mut picked);
            sample.clear();
            sample.extend(picked.iter().map(|&i| values[i]));
            sample.sort_by(f64::total_cmp);
            statistic(&sample)
        })
        .collect()
}

/// Replicates of the mean of `values` (moving blocks).
pub fn mean_replicates(values: &[f64], rng: &mut StdRng) -> Option<Vec<f64>> {
    ratio_replicates(values, &vec![1.0; values.len()], rng)
}

/// Draws from a Jeffreys posterior of a proportion `hits / n`.
pub fn proportion_replicates(hits: u64, n: u64, rng: &mut StdRng) -> Option<Vec<f64>> {
    let beta = Beta::new(hits as f64 + 0.5, (n - hits.min(n)) as f64 + 0.5).ok()?;
    (n > 0).then(|| (0..REPLICATES).map(|_| beta.sample(rng)).collect())
}

/// The equal-tailed `confidence` interval of `values` (sorted in place).
pub fn interval(values: &mut [f64], confidence: f64) -> Option<(f64, f64)> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - confidence) / 2.0;
    let at = |p: f64| {
        let i = (p * (values.len() - 1) as f64).round() as usize;
        values[i.min(values.len() - 1)]
    };
    Some((at(tail), at(1.0 - tail)))
}

/// Pairs two sets of replicates into replicates of a change: `now/base −
/// 1` (relative) or `now − base` (points). Replicates whose base is 0 are
/// left out of a relative change.
pub fn changes(base: &[f64], now: &[f64], relative: bool) -> Vec<f64> {
    base.iter()
        .zip(now)
        .filter_map(|(&b, &n)| match relative {
            true if b == 0.0 && n == 0.0 => Some(0.0),
            true if b != 0.0 => Some(n / b - 1.0),
            true => None,
            false => Some(n - b),
        })
        .collect()
}

/// A fresh seeded generator per figure, so adding a row never shifts the
/// intervals of the others.
pub fn seed_for(key: &str) -> u64 {
    key.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(rng: &mut StdRng) -> f64 {
        rng.random::<f64>()
    }

    fn histogram_of(values: impl IntoIterator<Item = u64>) -> Histogram {
        let mut h = Histogram::new();
        for v in values {
            h.record(v);
        }
        h
    }

    #[test]
    fn the_inverse_cdf_reads_the_histogram_quantiles() {
        let h = histogram_of(1..=1000);
        let cdf = Cdf::of(&h, 1.0).unwrap();
        assert_eq!(cdf.len(), 1000);
        assert_eq!(cdf.inverse(0.95), h.quantile(0.95).unwrap() as f64);
        assert_eq!(cdf.inverse(0.0), 1.0);
        assert_eq!(cdf.inverse(1.0), h.max().unwrap() as f64);
    }

    /// The interval of a p95 covers the truth about 95 % of the time:
    /// over 200 samples of 2,000 exponential draws the miss rate is near
    /// 5 % (binomial sd of 200 trials at 5 %: 1.5 %).
    #[test]
    fn a_quantile_interval_covers_the_truth_at_its_confidence() {
        let truth = -(0.05_f64).ln() * 1000.0; // p95 of Exp(mean 1000)
        let mut rng = rng(7);
        let mut misses = 0;
        for _ in 0..200 {
            let h =
                histogram_of((0..2000).map(|_| (-(1.0 - uniform(&mut rng)).ln() * 1000.0) as u64));
            let cdf = Cdf::of(&h, 1.0).unwrap();
            let mut reps = cdf.quantile_replicates(0.95, 2000.0, &mut rng);
            let (lo, hi) = interval(&mut reps, 0.95).unwrap();
            if truth < lo || truth > hi {
                misses += 1;
            }
        }
        assert!((4..=20).contains(&misses), "missed {misses} of 200");
    }

    #[test]
    fn autocorrelation_shrinks_the_effective_sample() {
        assert_eq!(effective_n(1000, 0.0), 1000.0);
        assert_eq!(effective_n(1000, -0.3), 1000.0);
        assert!((effective_n(1000, 0.5) - 333.33).abs() < 0.01);
        assert_eq!(effective_n(1, 0.9), 1.0);
    }

    #[test]
    fn block_replicates_of_a_constant_series_are_that_constant() {
        let mut rng = rng(1);
        let mut reps = mean_replicates(&[120.0; 30], &mut rng).unwrap();
        assert_eq!(interval(&mut reps, 0.95), Some((120.0, 120.0)));
        assert_eq!(block_length(30), 4);
        assert!(mean_replicates(&[], &mut rng).is_none());
    }

    #[test]
    fn a_ratio_of_sums_is_resampled_by_seconds() {
        let mut rng = rng(2);
        let errors = [0.0, 0.0, 10.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        let requests = [100.0; 8];
        let mut reps = ratio_replicates(&errors, &requests, &mut rng).unwrap();
        let (lo, hi) = interval(&mut reps, 0.95).unwrap();
        assert!(lo < 10.0 / 800.0 && 10.0 / 800.0 < hi, "{lo}..{hi}");
        assert!(lo >= 0.0 && hi <= 0.1);
    }

    #[test]
    fn changes_are_relative_or_in_points() {
        assert_eq!(changes(&[2.0, 0.0], &[3.0, 1.0], true), vec![0.5]);
        assert_eq!(changes(&[0.01], &[0.02], false), vec![0.01]);
    }
}
