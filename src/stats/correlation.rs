//! Rank correlation between two series on the run clock, searched over a
//! range of lags, with a significance that accounts for autocorrelation.
//!
//! Per-second series are autocorrelated (a queue that is long this second
//! is long the next), so n pairs carry fewer than n independent facts and
//! a naive test finds "drivers" in noise. Two corrections keep it honest:
//!
//! - the effective number of pairs, n·(1 − r₁ₓr₁ᵧ)/(1 + r₁ₓr₁ᵧ) from the
//!   lag-1 autocorrelations of the two rank series (Bartlett 1935; Bayley
//!   and Hammersley 1946), sets the width of the interval;
//! - Spearman's ρ is tested through Fisher's z with the variance
//!   1.06/(n_eff − 3) of Fieller, Hartley and Pearson (1957).
//!
//! Callers searching many lags and many series divide their α by the number
//! of tests (Bonferroni): [`Lagged::tests`] says how many one search made.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, Normal};

/// Fewer aligned pairs than this and no correlation is reported.
pub const MIN_PAIRS: usize = 10;

/// Average ranks (1-based), ties sharing the mean of their positions.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            ranks[*k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson's r; `None` when either series is constant or they differ in
/// length or hold fewer than two values.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.len() != y.len() || x.len() < 2 {
        return None;
    }
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    (sxx > 0.0 && syy > 0.0).then(|| (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Spearman's ρ: Pearson's r of the ranks.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<f64> {
    pearson(&ranks(x), &ranks(y))
}

/// The lag-1 autocorrelation of a series (0 for fewer than 3 values or a
/// constant series).
pub fn lag1_autocorrelation(x: &[f64]) -> f64 {
    if x.len() < 3 {
        return 0.0;
    }
    pearson(&x[..x.len() - 1], &x[1..]).unwrap_or(0.0)
}

/// The effective number of independent pairs of two autocorrelated series.
pub fn effective_pairs(n: usize, r1x: f64, r1y: f64) -> f64 {
    let product = (r1x * r1y).clamp(-0.99, 0.99);
    (n as f64 * (1.0 - product) / (1.0 + product)).clamp(3.5, n as f64)
}

/// A rank correlation and what backs it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Correlation {
    pub rho: f64,
    /// Aligned pairs.
    pub n: usize,
    /// Independent pairs they are worth, given their autocorrelation.
    pub n_effective: f64,
    /// The 95 % interval of ρ.
    pub ci95: (f64, f64),
    /// Two-sided p-value of ρ ≠ 0.
    pub p_value: f64,
}

/// Spearman's ρ of paired series with its interval and p-value; `None`
/// below [`MIN_PAIRS`] pairs or for a constant series.
pub fn correlate(x: &[f64], y: &[f64]) -> Option<Correlation> {
    if x.len() < MIN_PAIRS || x.len() != y.len() {
        return None;
    }
    let (rx, ry) = (ranks(x), ranks(y));
    let rho = pearson(&rx, &ry)?;
    let n_effective = effective_pairs(
        x.len(),
        lag1_autocorrelation(&rx),
        lag1_autocorrelation(&ry),
    );
    let se = (1.06 / (n_effective - 3.0)).sqrt();
    let z = rho.clamp(-0.999_999, 0.999_999).atanh();
    let normal = Normal::standard();
    let p_value = 2.0 * (1.0 - normal.cdf(z.abs() / se));
    let half = normal.inverse_cdf(0.975) * se;
    Some(Correlation {
        rho,
        n: x.len(),
        n_effective,
        ci95: ((z - half).tanh(), (z + half).tanh()),
        p_value,
    })
}

/// The lag (seconds; positive: the second series leads the first) with the
/// strongest correlation, and how many lags were tested.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lagged {
    pub lag_s: i64,
    pub correlation: Correlation,
    /// Lags that had enough pairs to be tested.
    pub tests: usize,
}

/// Values by whole second of the run clock (the last value of a second
/// wins; samples on the run clock fall on whole seconds or close to them).
pub fn by_second(points: &[(f64, f64)]) -> BTreeMap<i64, f64> {
    points
        .iter()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .map(|(t, v)| (t.round() as i64, *v))
        .collect()
}

/// Searches lags `-max_lag..=max_lag`: `effect` at second s is paired with
/// `cause` at s − lag. Returns the lag of the largest |ρ|.
pub fn strongest_lag(
    effect: &BTreeMap<i64, f64>,
    cause: &BTreeMap<i64, f64>,
    max_lag: i64,
) -> Option<Lagged> {
    let mut best: Option<(i64, Correlation)> = None;
    let mut tests = 0;
    for lag in -max_lag..=max_lag {
        let (x, y): (Vec<f64>, Vec<f64>) = effect
            .iter()
            .filter_map(|(s, e)| cause.get(&(s - lag)).map(|c| (*c, *e)))
            .unzip();
        let Some(c) = correlate(&x, &y) else {
            continue;
        };
        tests += 1;
        let stronger = best.is_none_or(|(_, b)| c.rho.abs() > b.rho.abs());
        if stronger {
            best = Some((lag, c));
        }
    }
    best.map(|(lag_s, correlation)| Lagged {
        lag_s,
        correlation,
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[10.0, 30.0, 20.0, 20.0]), [1.0, 4.0, 2.5, 2.5]);
        assert_eq!(ranks(&[]), Vec::<f64>::new());
    }

    #[test]
    fn spearman_of_textbook_cases() {
        let x: Vec<f64> = (1..=10).map(f64::from).collect();
        let cubed: Vec<f64> = x.iter().map(|v| v * v * v).collect();
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        assert_eq!(spearman(&x, &cubed), Some(1.0), "monotone, not linear");
        assert_eq!(spearman(&x, &reversed), Some(-1.0));
        assert_eq!(spearman(&x, &[5.0; 10]), None, "constant");
        // Without ties ρ = 1 − 6·Σd²/(n(n²−1)).
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        let b = [3.0, 1.0, 4.0, 2.0, 6.0, 5.0, 9.0, 10.0, 8.0, 7.0];
        let rho = spearman(&a, &b).unwrap();
        // 1 − 6·Σd²/(n(n²−1)) with Σd² = 4+1+1+4+1+1+4+4+1+9 = 30.
        assert!((rho - (1.0 - 6.0 * 30.0 / 990.0)).abs() < 1e-12, "{rho}");
    }

    #[test]
    fn autocorrelation_shrinks_the_effective_pairs() {
        assert_eq!(effective_pairs(100, 0.0, 0.9), 100.0);
        let n = effective_pairs(100, 0.8, 0.8);
        assert!((n - 100.0 * 0.36 / 1.64).abs() < 1e-9, "{n}");
        let trend: Vec<f64> = (0..50).map(f64::from).collect();
        assert!(lag1_autocorrelation(&trend) > 0.99);
    }

    #[test]
    fn significance_and_interval_of_a_strong_correlation() {
        // y = x + alternating noise that swaps some neighbours: ρ near 1.
        let x: Vec<f64> = (0..40).map(|i| ((i * 7) % 40) as f64).collect();
        let y: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.6 } else { -0.6 })
            .collect();
        let c = correlate(&x, &y).unwrap();
        assert!(c.rho > 0.99 && c.p_value < 1e-6, "{c:?}");
        assert!(c.ci95.0 < c.rho && c.rho <= c.ci95.1, "{c:?}");
        assert!(correlate(&x[..5], &y[..5]).is_none(), "too few pairs");
    }

    #[test]
    fn the_lag_search_finds_a_leading_series() {
        // cause leads effect by 3 s.
        let cause: Vec<(f64, f64)> = (0..60)
            .map(|s| (f64::from(s), ((s * 37) % 17) as f64))
            .collect();
        let effect: Vec<(f64, f64)> = cause.iter().map(|(t, v)| (t + 3.0, 2.0 * v)).collect();
        let lagged = strongest_lag(&by_second(&effect), &by_second(&cause), 5).unwrap();
        assert_eq!(lagged.lag_s, 3);
        assert!((lagged.correlation.rho - 1.0).abs() < 1e-12);
        assert_eq!(lagged.tests, 11);
    }
}
