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
}
