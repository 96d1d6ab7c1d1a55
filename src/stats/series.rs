//! Time series sampled on the run clock: where samplers (Prometheus, a
//! direct scrape, NVML, the host, the generator's self-check) deliver
//! values that line up with the client's 1-second intervals, and how a
//! series is summed up over a run ([`Aggregate`]).

use serde::{Deserialize, Serialize};

/// One value at an offset from the run's start.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started (the same clock as intervals).
    pub t: f64,
    pub value: f64,
}

/// A named series with its unit. Samples are appended in time order; a
/// missing sample is a gap, never a zero.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub name: String,
    pub unit: String,
    pub samples: Vec<Sample>,
}

impl Series {
    pub fn new(name: &str, unit: &str) -> Self {
        Self {
            name: name.to_owned(),
            unit: unit.to_owned(),
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, t: f64, value: f64) {
        self.samples.push(Sample { t, value });
    }

    pub fn max(&self) -> Option<f64> {
        self.samples.iter().map(|s| s.value).reduce(f64::max)
    }

    pub fn mean(&self) -> Option<f64> {
        let n = self.samples.len();
        (n > 0).then(|| self.samples.iter().map(|s| s.value).sum::<f64>() / n as f64)
    }

    /// The samples taken in `(start, end]` seconds of the run clock: a
    /// sample at `t` describes the interval ending at `t`.
    pub fn within(&self, start: f64, end: f64) -> Series {
        Series {
            name: self.name.clone(),
            unit: self.unit.clone(),
            samples: self
                .samples
                .iter()
                .filter(|s| s.t > start && s.t <= end)
                .copied()
                .collect(),
        }
    }

    /// (t, value) pairs, for the analysis of series.
    pub fn points(&self) -> Vec<(f64, f64)> {
        self.samples.iter().map(|s| (s.t, s.value)).collect()
    }

    /// The series summed up: extremes, mean, p95 (nearest rank), first
    /// and last values; every statistic `None` without samples.
    pub fn stats(&self) -> SeriesStats {
        let values: Vec<f64> = self.samples.iter().map(|s| s.value).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let p95 = nearest_rank(&sorted, 0.95);
        SeriesStats {
            max: sorted.last().copied(),
            min: sorted.first().copied(),
            avg: self.mean(),
            p95,
            first: values.first().copied(),
            last: values.last().copied(),
            samples: values.len() as u64,
        }
    }
}

/// The `q`-quantile of `sorted` values by nearest rank; `None` when empty.
pub fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    (!sorted.is_empty()).then(|| sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A series (or a window of it) summed up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub avg: Option<f64>,
    pub p95: Option<f64>,
    pub first: Option<f64>,
    pub last: Option<f64>,
    pub samples: u64,
}

impl Aggregate {
    /// This aggregate of `stats`.
    pub fn of(self, stats: &SeriesStats) -> Option<f64> {
        match self {
            Aggregate::Max => stats.max,
            Aggregate::Min => stats.min,
            Aggregate::Avg => stats.avg,
            Aggregate::P95 => stats.p95,
            Aggregate::Last => stats.last,
            Aggregate::Delta => stats.first.zip(stats.last).map(|(a, b)| b - a),
        }
    }
}

/// How a series is summarised over the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Max,
    Min,
    Avg,
    P95,
    Last,
    /// Last minus first (counters).
    Delta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_and_mean_ignore_nothing_and_handle_empty() {
        let mut s = Series::new("generator_cpu", "cores");
        assert_eq!(s.max(), None);
        assert_eq!(s.mean(), None);
        s.push(1.0, 0.5);
        s.push(2.0, 1.5);
        assert_eq!(s.max(), Some(1.5));
        assert_eq!(s.mean(), Some(1.0));
    }

    #[test]
    fn stats_and_windows() {
        let mut s = Series::new("queue_depth", "count");
        for (t, v) in [(1.0, 3.0), (2.0, 9.0), (3.0, 6.0), (4.0, 1.0)] {
            s.push(t, v);
        }
        let all = s.stats();
        assert_eq!(
            (all.max, all.min, all.avg, all.samples),
            (Some(9.0), Some(1.0), Some(4.75), 4)
        );
        assert_eq!(Aggregate::Delta.of(&all), Some(-2.0));
        assert_eq!(Aggregate::P95.of(&all), Some(9.0));
        let middle = s.within(1.0, 3.0);
        assert_eq!(middle.points(), [(2.0, 9.0), (3.0, 6.0)]);
        assert_eq!(Series::new("x", "count").stats(), SeriesStats::default());
    }
}
