//! The knee of a curve (Satopää et al. 2011, "Kneedle"): with both axes
//! scaled to 0..1, the point farthest above the chord from the first point
//! to the last. For throughput against load it is where throughput stops
//! growing in proportion.

/// The index of the knee of an increasing, concave curve given as points
/// in increasing x; `None` with fewer than 3 points, when y does not grow,
/// or when no point stands out by `min_prominence` (of the scaled range)
/// above the chord — the curve scaled all the way.
pub fn knee(points: &[(f64, f64)], min_prominence: f64) -> Option<usize> {
    if points.len() < 3 {
        return None;
    }
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let y0 = points[0].1;
    let y_max = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    if x1 <= x0 || y_max <= y0 {
        return None;
    }
    let scaled = |p: &(f64, f64)| ((p.0 - x0) / (x1 - x0), (p.1 - y0) / (y_max - y0));
    let (index, height) = points
        .iter()
        .map(|p| {
            let (x, y) = scaled(p);
            y - x
        })
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    (height >= min_prominence).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_then_flat_has_its_knee_at_the_bend() {
        let levels = [4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0];
        let points: Vec<(f64, f64)> = levels.map(|c: f64| (c, c.min(16.0) * 2.0)).to_vec();
        assert_eq!(knee(&points, 0.1), Some(3), "at c=16");
    }

    #[test]
    fn a_curve_that_scales_all_the_way_has_no_knee() {
        let points: Vec<(f64, f64)> = (1..=6)
            .map(|c| (f64::from(c), 3.0 * f64::from(c)))
            .collect();
        assert_eq!(knee(&points, 0.1), None);
        assert_eq!(knee(&points[..2], 0.1), None);
        let flat = [(1.0, 5.0), (2.0, 5.0), (3.0, 5.0)];
        assert_eq!(knee(&flat, 0.1), None);
    }
}
