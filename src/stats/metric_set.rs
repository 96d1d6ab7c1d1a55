//! The statistics of a group of requests (a step, a phase, a model, an
//! interval, the whole run): histograms of every client-side time and the
//! counters beside them. Groups merge with `+=`.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use super::Histogram;
use super::histogram::PRESIZED_MAX;
use crate::load::{ErrorKind, Outcome};

/// Requests counted per [`ErrorKind`], indexed by `ErrorKind::index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts(pub [u64; 7]);

impl ErrorCounts {
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// (kind, count) for every kind seen at least once.
    pub fn nonzero(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL
            .iter()
            .map(|k| (*k, self.get(*k)))
            .filter(|(_, n)| *n > 0)
    }
}

impl AddAssign<&ErrorCounts> for ErrorCounts {
    fn add_assign(&mut self, other: &ErrorCounts) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine += theirs;
        }
    }
}

/// Histograms are in microseconds except `tokens_per_second_milli`
/// (thousandths of a token per second, so integer buckets keep precision).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSet {
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub output_tokens: u64,
    /// Successful requests whose token count came from counting chunks.
    pub tokens_counted_from_chunks: u64,
    /// Requests sent later than the schedule lag tolerance.
    pub late_sends: u64,
    pub latency: Histogram,
    pub service_time: Histogram,
    pub ttft: Histogram,
    pub ttft_service: Histogram,
    pub itl: Histogram,
    pub tpot: Histogram,
    pub tokens_per_second_milli: Histogram,
    pub schedule_lag: Histogram,
}

impl Default for MetricSet {
    fn default() -> Self {
        let sized = || Histogram::with_max(PRESIZED_MAX);
        MetricSet {
            requests: 0,
            ok: 0,
            errors: ErrorCounts::default(),
            output_tokens: 0,
            tokens_counted_from_chunks: 0,
            late_sends: 0,
            latency: sized(),
            service_time: sized(),
            ttft: sized(),
            ttft_service: sized(),
            itl: sized(),
            tpot: sized(),
            // Thousandths of a token per second: 60M covers 60k tok/s.
            tokens_per_second_milli: sized(),
            schedule_lag: sized(),
        }
    }
}

impl MetricSet {
    /// Records one finished request. `late` says whether its send lagged
    /// beyond the engine's tolerance. Latency distributions hold successful
    /// requests only, as k6 and Locust report them; errors are counted.
    pub fn record(&mut self, outcome: &Outcome, late: bool) {
        self.requests += 1;
        self.schedule_lag.record_duration(outcome.schedule_lag());
        self.late_sends += u64::from(late);
        if let Some(kind) = outcome.error {
            self.errors.add(kind);
            return;
        }
        self.ok += 1;
        self.output_tokens += u64::from(outcome.output_tokens);
        self.tokens_counted_from_chunks += u64::from(!outcome.tokens_from_usage);
        self.latency.record_duration(outcome.latency());
        self.service_time.record_duration(outcome.service_time());
        if let Some(ttft) = outcome.ttft() {
            self.ttft.record_duration(ttft);
        }
        if let Some(ttft) = outcome.ttft_service() {
            self.ttft_service.record_duration(ttft);
        }
        if let Some(tpot) = outcome.tpot() {
            self.tpot.record_duration(tpot);
        }
        if let Some(rate) = outcome.tokens_per_second() {
            self.tokens_per_second_milli.record((rate * 1000.0) as u64);
        }
    }

    /// Empties the set, keeping its histograms' memory for reuse.
    pub fn reset(&mut self) {
        let MetricSet {
            requests,
            ok,
            errors,
            output_tokens,
            tokens_counted_from_chunks,
            late_sends,
            ..
        } = self;
        (
            *requests,
            *ok,
            *output_tokens,
            *tokens_counted_from_chunks,
            *late_sends,
        ) = (0, 0, 0, 0, 0);
        *errors = ErrorCounts::default();
        for histogram in self.histograms_mut() {
            histogram.reset();
        }
    }

    fn histograms_mut(&mut self) -> [&mut Histogram; 8] {
        [
            &mut self.latency,
            &mut self.service_time,
            &mut self.ttft,
            &mut self.ttft_service,
            &mut self.itl,
            &mut self.tpot,
            &mut self.tokens_per_second_milli,
            &mut self.schedule_lag,
        ]
    }

    pub fn error_count(&self) -> u64 {
        self.errors.total()
    }

    /// Errors / requests, 0 when nothing was sent.
    pub fn error_rate(&self) -> f64 {
        ratio(self.error_count(), self.requests)
    }

    pub fn timeout_rate(&self) -> f64 {
        ratio(self.errors.get(ErrorKind::Timeout), self.requests)
    }
}

pub(crate) fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl AddAssign<&MetricSet> for MetricSet {
    fn add_assign(&mut self, other: &MetricSet) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.errors += &other.errors;
        self.output_tokens += other.output_tokens;
        self.tokens_counted_from_chunks += other.tokens_counted_from_chunks;
        self.late_sends += other.late_sends;
        self.latency += &other.latency;
        self.service_time += &other.service_time;
        self.ttft += &other.ttft;
        self.ttft_service += &other.ttft_service;
        self.itl += &other.itl;
        self.tpot += &other.tpot;
        self.tokens_per_second_milli += &other.tokens_per_second_milli;
        self.schedule_lag += &other.schedule_lag;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::load::Slot;

    fn outcome(end_ms: u64, error: Option<ErrorKind>) -> Outcome {
        Outcome {
            slot: Slot {
                phase: 0,
                step: 0,
                model: 0,
            },
            intended: Duration::ZERO,
            sent: Duration::from_millis(1),
            first_token: Some(Duration::from_millis(10)),
            last_token: Some(Duration::from_millis(end_ms)),
            end: Duration::from_millis(end_ms),
            output_tokens: 5,
            tokens_from_usage: error.is_none(),
            status: 200,
            error,
            in_flight: 1,
            worker_was_ready: false,
            trace_id: 0,
        }
    }

    #[test]
    fn errors_are_counted_but_not_timed() {
        let mut set = MetricSet::default();
        set.record(&outcome(50, None), false);
        set.record(&outcome(900, Some(ErrorKind::Timeout)), true);
        assert_eq!((set.requests, set.ok, set.error_count()), (2, 1, 1));
        assert_eq!(set.latency.len(), 1);
        assert_eq!(set.schedule_lag.len(), 2);
        assert_eq!(set.late_sends, 1);
        assert_eq!(set.error_rate(), 0.5);
        assert_eq!(set.timeout_rate(), 0.5);
        assert_eq!(set.output_tokens, 5);
    }

    #[test]
    fn merging_sets_equals_recording_in_one() {
        let (mut a, mut b, mut all) = (
            MetricSet::default(),
            MetricSet::default(),
            MetricSet::default(),
        );
        for i in 0..100u64 {
            let o = outcome(20 + i, (i % 10 == 0).then_some(ErrorKind::Http5xx));
            if i % 2 == 0 {
                a.record(&o, false)
            } else {
                b.record(&o, false)
            }
            all.record(&o, false);
        }
        a += &b;
        assert_eq!(a, all);
    }

    #[test]
    fn reset_empties_everything() {
        let mut set = MetricSet::default();
        set.record(&outcome(50, None), true);
        set.record(&outcome(50, Some(ErrorKind::Decode)), false);
        set.reset();
        assert_eq!(set, MetricSet::default());
    }

    #[test]
    fn rates_are_zero_without_requests() {
        let set = MetricSet::default();
        assert_eq!(set.error_rate(), 0.0);
        assert_eq!(set.timeout_rate(), 0.0);
    }
}
