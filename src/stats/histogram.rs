//! A mergeable HDR histogram of microseconds (or any non-negative integer
//! unit), with quantile summaries and a lossless base64 serialisation.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Significant figures kept: 3 digits is 0.1 % relative precision, plenty
/// for latency percentiles, and the histogram auto-resizes so memory
/// follows the largest value recorded rather than a fixed worst case.
const SIGNIFICANT_FIGURES: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram could not be decoded: {0}")]
    Decode(String),
}

/// A distribution of non-negative integer values (microseconds for times).
#[derive(Clone, Debug)]
pub struct Histogram {
    inner: hdrhistogram::Histogram<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The range a group's histograms are sized for up front: one minute in
/// microseconds. Growing only when a first outlier arrives would make a
/// long run's memory creep up with its rarest latencies; sized once, a
/// run's memory is flat however long it lasts (values beyond still fit:
/// the histogram grows for them).
pub const PRESIZED_MAX: u64 = 60_000_000;

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.inner == other.inner
    }
}

impl Histogram {
    pub fn new() -> Self {
        let mut inner = hdrhistogram::Histogram::new(SIGNIFICANT_FIGURES)
            .expect("3 significant figures is a valid configuration");
        inner.auto(true);
        Self { inner }
    }

    /// A histogram already sized for values up to `max`.
    pub fn with_max(max: u64) -> Self {
        let mut inner =
            hdrhistogram::Histogram::new_with_bounds(1, max.max(2), SIGNIFICANT_FIGURES)
                .expect("bounds of 1..max with 3 significant figures are valid");
        inner.auto(true);
        Self { inner }
    }

    /// Records one value; the histogram grows to hold it. (Only values
    /// beyond what any histogram can track saturate at its maximum.)
    pub fn record(&mut self, value: u64) {
        if self.inner.record(value).is_err() {
            self.inner.saturating_record(value);
        }
    }

    /// Records a duration in microseconds.
    pub fn record_duration(&mut self, duration: std::time::Duration) {
        self.record(u64::try_from(duration.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Adds every value of `other` into `self`.
    pub fn merge(&mut self, other: &Histogram) {
        self.inner
            .add(&other.inner)
            .expect("auto-resizing histograms always accept each other");
    }

    pub fn reset(&mut self) {
        self.inner.reset();
    }

    /// Value at quantile `q` in 0..=1, or None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.value_at_quantile(q))
    }

    /// Every recorded bucket's value (as quantiles read it) with its count,
    /// in increasing order.
    pub fn recorded(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.inner
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
    }

    pub fn min(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.min())
    }

    pub fn max(&self) -> Option<u64> {
        (!self.is_empty()).then(|| self.inner.max())
    }

    pub fn mean(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.inner.mean())
    }

    /// Summary with every value divided by `divisor` (1000.0 turns
    /// microseconds into milliseconds).
    pub fn quantiles(&self, divisor: f64) -> Option<Quantiles> {
        if self.is_empty() {
            return None;
        }
        let at = |q: f64| self.inner.value_at_quantile(q) as f64 / divisor;
        Some(Quantiles {
            count: self.len(),
            min: self.inner.min() as f64 / divisor,
            mean: self.inner.mean() / divisor,
            p50: at(0.50),
            p90: at(0.90),
            p95: at(0.95),
            p99: at(0.99),
            max: self.inner.max() as f64 / divisor,
        })
    }

    /// Lossless, compact encoding (HdrHistogram V2 + deflate, base64): the
    /// same format other HDR implementations read.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.inner, &mut bytes)
            .expect("serialising into a Vec cannot fail");
        BASE64.encode(bytes)
    }

    pub fn from_base64(text: &str) -> Result<Self, HistogramError> {
        let bytes = BASE64.decode(text)?;
        let mut inner: hdrhistogram::Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| HistogramError::Decode(format!("{e:?}")))?;
        inner.auto(true);
        Ok(Self { inner })
    }
}

impl std::ops::AddAssign<&Histogram> for Histogram {
    fn add_assign(&mut self, other: &Histogram) {
        self.merge(other);
    }
}

/// A distribution summarised for reports, in the unit the caller chose.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Quantiles {
    /// The named percentile ("p50", "p90", "p95", "p99"), or min/max/avg.
    pub fn get(&self, name: &str) -> Option<f64> {
        Some(match name {
            "p50" | "med" => self.p50,
            "p90" => self.p90,
            "p95" => self.p95,
            "p99" => self.p99,
            "min" => self.min,
            "max" => self.max,
            "avg" | "mean" => self.mean,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_uniform_values_within_precision() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let cases = [
            (0.50, 5_000.0),
            (0.95, 9_500.0),
            (0.99, 9_900.0),
            (1.0, 10_000.0),
        ];
        for (q, expected) in cases {
            let got = h.quantile(q).unwrap() as f64;
            assert!((got - expected).abs() / expected < 0.001, "q={q} got={got}");
        }
        let s = h.quantiles(1000.0).unwrap();
        assert_eq!(s.count, 10_000);
        assert!((s.mean - 5.0005).abs() < 0.01);
        assert_eq!(s.min, 0.001);
    }

    #[test]
    fn empty_histogram_has_no_quantiles() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        assert_eq!(h.quantiles(1.0), None);
        assert_eq!(h.mean(), None);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..1000u64 {
            let value = v * 37 % 5000 + 1;
            if v % 3 == 0 {
                a.record(value)
            } else {
                b.record(value)
            }
            all.record(value);
        }
        // b holds larger values than a's initial range: auto-resize must cope.
        b.record(3_600_000_000);
        all.record(3_600_000_000);
        a += &b;
        assert_eq!(a, all);
    }

    #[test]
    fn base64_round_trip_is_lossless() {
        let mut h = Histogram::new();
        for v in [1u64, 15, 250, 4_000, 90_000, 1_200_000] {
            h.record(v);
        }
        let back = Histogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back, h);
        assert!(Histogram::from_base64("not base64!").is_err());
    }
}
