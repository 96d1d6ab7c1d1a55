//! Bounded memory for long runs and bounded work for large ones: a
//! reservoir keeps a uniform sample of the traced requests up to a cap
//! (Vitter's algorithm R), a uniform draw picks the ids to look up, and
//! the Wilson score interval says how far the coverage of a sample may be
//! from the coverage of the whole run.

use rand::Rng;
use rand::rngs::SmallRng;

/// z for a two-sided 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// A uniform sample of at most `cap` items out of all pushed.
#[derive(Debug)]
pub struct Reservoir<T> {
    cap: usize,
    seen: u64,
    items: Vec<T>,
    rng: SmallRng,
}

impl<T> Reservoir<T> {
    pub fn new(cap: usize, rng: SmallRng) -> Reservoir<T> {
        Reservoir {
            cap,
            seen: 0,
            items: Vec::new(),
            rng,
        }
    }

    /// Keeps `item` with probability cap / seen, replacing a random one.
    pub fn push(&mut self, item: T) {
        self.seen += 1;
        if self.items.len() < self.cap {
            self.items.push(item);
            return;
        }
        let slot = self.rng.random_range(0..self.seen);
        if let Some(kept) = self.items.get_mut(slot as usize) {
            *kept = item;
        }
    }

    /// Items pushed so far, kept or not.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// A uniform random subset of `n` items (all of them when `n` is not
/// smaller), by a partial Fisher–Yates shuffle.
pub fn choose<T>(mut items: Vec<T>, n: usize, rng: &mut impl Rng) -> Vec<T> {
    if n >= items.len() {
        return items;
    }
    for i in 0..n {
        let j = rng.random_range(i..items.len());
        items.swap(i, j);
    }
    items.truncate(n);
    items
}

/// The Wilson score interval of `successes` out of `n` at `z` (1.96 for
/// 95 %): sound near 0 % and 100 %, where the normal approximation gives
/// bounds outside [0, 1]. `None` without trials.
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n) = (successes.min(n) as f64, n as f64);
    let p = k / n;
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn wilson_matches_published_values() {
        // Reference values (Newcombe 1998, table I; and by hand).
        let cases = [
            ((81, 263), (0.2553, 0.3662)),
            ((15, 148), (0.0624, 0.1605)),
            ((0, 20), (0.0, 0.1611)),
            ((20, 20), (0.8389, 1.0)),
            ((900, 1000), (0.8797, 0.9170)),
        ];
        for ((k, n), (low, high)) in cases {
            let (l, h) = wilson(k, n, Z_95).unwrap();
            assert!(
                (l - low).abs() < 5e-4 && (h - high).abs() < 5e-4,
                "{k}/{n}: {l} {h}"
            );
        }
        assert_eq!(wilson(0, 0, Z_95), None);
    }

    #[test]
    fn reservoir_keeps_a_uniform_sample_under_its_cap() {
        let mut reservoir = Reservoir::new(1000, SmallRng::seed_from_u64(3));
        for i in 0..100_000u32 {
            reservoir.push(i);
        }
        assert_eq!((reservoir.seen(), reservoir.len()), (100_000, 1000));
        let items = reservoir.into_items();
        // Uniform: about a tenth of the kept items come from each tenth.
        for decile in 0..10 {
            let n = items.iter().filter(|i| **i / 10_000 == decile).count();
            assert!((60..=140).contains(&n), "decile {decile}: {n}");
        }
    }

    #[test]
    fn choose_takes_distinct_items_or_all() {
        let mut rng = SmallRng::seed_from_u64(9);
        let picked = choose((0..100).collect::<Vec<u32>>(), 10, &mut rng);
        let mut unique = picked.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!((picked.len(), unique.len()), (10, 10));
        assert_eq!(choose(vec![1, 2, 3], 5, &mut rng), vec![1, 2, 3]);
    }
}
