//! Pearson's χ² goodness of fit: do observed counts follow expected
//! shares? Used where a split should follow a plan or be even — requests
//! per model against the plan's weights, per backend behind a router —
//! so that a skew is called only when chance cannot explain it.

use statrs::distribution::{ChiSquared, ContinuousCDF};

/// The test's result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Σ (observed − expected)² / expected.
    pub chi2: f64,
    /// Degrees of freedom: categories − 1.
    pub df: u64,
    /// The chance of a χ² this large if the counts followed the shares.
    pub p_value: f64,
}

/// `observed` counts against `shares` (any positive weights, normalised
/// here), category by category. `None` with fewer than two categories,
/// no counts, or a share that is not positive.
pub fn chi_square(observed: &[f64], shares: &[f64]) -> Option<Fit> {
    let total: f64 = observed.iter().sum();
    let weight: f64 = shares.iter().sum();
    if observed.len() != shares.len()
        || observed.len() < 2
        || total <= 0.0
        || shares.iter().any(|s| *s <= 0.0)
    {
        return None;
    }
    let chi2 = observed
        .iter()
        .zip(shares)
        .map(|(o, s)| {
            let expected = total * s / weight;
            (o - expected).powi(2) / expected
        })
        .sum::<f64>();
    let df = observed.len() as u64 - 1;
    let p_value = ChiSquared::new(df as f64).ok()?.sf(chi2);
    Some(Fit { chi2, df, p_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_even_split_fits_and_a_lopsided_one_does_not() {
        let even = chi_square(&[500.0, 500.0], &[1.0, 1.0]).unwrap();
        assert_eq!((even.chi2, even.df, even.p_value), (0.0, 1, 1.0));
        // 600/400: χ² = 2 × 100²/500 = 40, p ≈ 2.5e-10.
        let skewed = chi_square(&[600.0, 400.0], &[1.0, 1.0]).unwrap();
        assert!((skewed.chi2 - 40.0).abs() < 1e-12);
        assert!(skewed.p_value < 1e-9 && skewed.p_value > 1e-11);
    }

    #[test]
    fn weights_are_normalised() {
        // 3:1 weights, 750/250 observed: a perfect fit.
        let fit = chi_square(&[750.0, 250.0], &[3.0, 1.0]).unwrap();
        assert_eq!(fit.chi2, 0.0);
        // The 5 % critical value of χ²(2) is 5.991.
        let p = chi_square(&[0.0, 0.0, 1.0], &[1.0, 1.0, 1.0]).unwrap();
        assert!((p.chi2 - 2.0).abs() < 1e-12 && (p.p_value - (-1.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn degenerate_inputs_have_no_test() {
        assert_eq!(chi_square(&[5.0], &[1.0]), None);
        assert_eq!(chi_square(&[0.0, 0.0], &[1.0, 1.0]), None);
        assert_eq!(chi_square(&[1.0, 2.0], &[1.0, 0.0]), None);
        assert_eq!(chi_square(&[1.0, 2.0], &[1.0]), None);
    }
}
