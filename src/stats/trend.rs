//! Trends and fits over short series: the Theil–Sen slope (the median of
//! pairwise slopes, robust to the outliers per-second latencies have), the
//! Mann–Kendall test of a monotone trend with its variance inflated for
//! lag-1 autocorrelation (Hamed and Rao 1998, first-order term), and a
//! power-law fit y = a·xᵇ by least squares on logarithms, which tells
//! linear growth (b ≈ 1) from super-linear (b > 1).

use statrs::distribution::{ContinuousCDF, Normal};

use super::correlation::{lag1_autocorrelation, pearson};

/// Points beyond this are thinned evenly before the O(n²) pairwise steps.
const MAX_TREND_POINTS: usize = 1200;

/// Keeps at most `max` points, evenly spread, first and last included.
fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let step = (points.len() - 1) as f64 / (max - 1) as f64;
    (0..max)
        .map(|i| points[((i as f64 * step).round() as usize).min(points.len() - 1)])
        .collect()
}

/// A monotone trend: its slope (units of y per unit of x) and whether it
/// is significant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Trend {
    /// Theil–Sen slope.
    pub slope: f64,
    /// Mann–Kendall two-sided p-value (autocorrelation-corrected).
    pub p_value: f64,
    pub n: usize,
}

/// The Theil–Sen slope and Mann–Kendall p-value of `points` (x, y);
/// `None` below 8 points.
pub fn trend(points: &[(f64, f64)]) -> Option<Trend> {
    let points = thin(points, MAX_TREND_POINTS);
    let n = points.len();
    if n < 8 {
        return None;
    }
    let mut slopes = Vec::with_capacity(n * (n - 1) / 2);
    let mut s: i64 = 0;
    for i in 0..n {
        for j in i + 1..n {
            let (dx, dy) = (points[j].0 - points[i].0, points[j].1 - points[i].1);
            if dx != 0.0 {
                slopes.push(dy / dx);
            }
            s += i64::from(dy > 0.0) - i64::from(dy < 0.0);
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(f64::total_cmp);
    let mid = slopes.len() / 2;
    let slope = if slopes.len() % 2 == 1 {
        slopes[mid]
    } else {
        (slopes[mid - 1] + slopes[mid]) / 2.0
    };
    // Autocorrelation of what the trend leaves inflates the variance of S.
    let residuals: Vec<f64> = points.iter().map(|(x, y)| y - slope * x).collect();
    let r1 = lag1_autocorrelation(&residuals).clamp(0.0, 0.95);
    let nf = n as f64;
    let variance = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0 * (1.0 + r1) / (1.0 - r1);
    let z = match s {
        0 => 0.0,
        s if s > 0 => (s as f64 - 1.0) / variance.sqrt(),
        s => (s as f64 + 1.0) / variance.sqrt(),
    };
    let p_value = 2.0 * (1.0 - Normal::standard().cdf(z.abs()));
    Some(Trend { slope, p_value, n })
}

/// y = a·xᵇ fitted on logarithms: the exponent b and the fit's R².
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PowerFit {
    pub exponent: f64,
    pub r_squared: f64,
    pub n: usize,
}

/// Fits y = a·xᵇ to the points with x > 0 and y > 0; `None` below 3.
pub fn power_fit(points: &[(f64, f64)]) -> Option<PowerFit> {
    let (lx, ly): (Vec<f64>, Vec<f64>) = points
        .iter()
        .filter(|(x, y)| *x > 0.0 && *y > 0.0)
        .map(|(x, y)| (x.ln(), y.ln()))
        .unzip();
    if lx.len() < 3 {
        return None;
    }
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxx: f64 = lx.iter().map(|x| (x - mx).powi(2)).sum();
    let sxy: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    if sxx == 0.0 {
        return None;
    }
    let r = pearson(&lx, &ly).unwrap_or(0.0);
    Some(PowerFit {
        exponent: sxy / sxx,
        r_squared: r * r,
        n: lx.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic ±1 jitter.
    fn jitter(i: usize) -> f64 {
        [0.6, -0.9, 0.2, 1.0, -0.4, -0.7, 0.8, -0.1][i % 8]
    }

    #[test]
    fn a_steady_series_has_no_significant_trend() {
        let points: Vec<(f64, f64)> = (0..120).map(|i| (i as f64, 100.0 + jitter(i))).collect();
        let t = trend(&points).unwrap();
        assert!(t.slope.abs() < 0.01 && t.p_value > 0.05, "{t:?}");
    }

    #[test]
    fn a_drift_is_found_despite_outliers() {
        // +0.5 per second, with two outliers a least-squares fit would follow.
        let mut points: Vec<(f64, f64)> = (0..120)
            .map(|i| (i as f64, 100.0 + 0.5 * i as f64 + jitter(i)))
            .collect();
        points[100].1 = 10_000.0;
        points[110].1 = 9_000.0;
        let t = trend(&points).unwrap();
        assert!((t.slope - 0.5).abs() < 0.02 && t.p_value < 1e-6, "{t:?}");
        assert_eq!(trend(&points[..5]), None);
    }

    #[test]
    fn long_series_are_thinned_but_keep_their_slope() {
        let points: Vec<(f64, f64)> = (0..5000)
            .map(|i| (i as f64, 2.0 * i as f64 + jitter(i)))
            .collect();
        let t = trend(&points).unwrap();
        assert_eq!(t.n, MAX_TREND_POINTS);
        assert!((t.slope - 2.0).abs() < 0.01, "{t:?}");
    }

    #[test]
    fn power_fits_tell_linear_from_quadratic() {
        let linear: Vec<(f64, f64)> = [16.0, 24.0, 32.0, 48.0, 64.0]
            .map(|x| (x, 0.05 * x))
            .to_vec();
        let quadratic: Vec<(f64, f64)> = [16.0, 24.0, 32.0, 48.0, 64.0]
            .map(|x| (x, 0.01 * x * x))
            .to_vec();
        let l = power_fit(&linear).unwrap();
        let q = power_fit(&quadratic).unwrap();
        assert!(
            (l.exponent - 1.0).abs() < 1e-9 && l.r_squared > 0.999,
            "{l:?}"
        );
        assert!((q.exponent - 2.0).abs() < 1e-9, "{q:?}");
        assert_eq!(power_fit(&linear[..2]), None);
    }
}
