//! The statistics of a group of requests (a step, a phase, a model, an
//! interval, the whole run): histograms of every client-side time and the
//! counters beside them. Groups merge with `+=`.

use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

use super::Histogram;
use super::distribution::Distribution;
use super::histogram::PRESIZED_MAX;
use super::slo::Slo;
use crate::outcome::{ErrorKind, Outcome};

/// Requests counted per [`ErrorKind`], indexed by `ErrorKind::index`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCounts(pub [u64; ErrorKind::ALL.len()]);

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

/// The statistics of one group: request counters and one histogram per
/// entry of the [`Distribution`] table, in its recorded unit (µs for
/// times, thousandths for rates).
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSet {
    pub requests: u64,
    pub ok: u64,
    pub errors: ErrorCounts,
    pub output_tokens: u64,
    /// `usage.prompt_tokens` summed over successful requests that had it.
    pub prompt_tokens: u64,
    /// Successful requests whose token count came from counting chunks.
    pub tokens_counted_from_chunks: u64,
    /// Successful requests whose inter-token gaps were split by the
    /// server's per-chunk usage rather than by content chunks.
    pub itl_from_usage: u64,
    /// Successful requests answered under another model's name.
    pub other_model: u64,
    /// Requests sent later than the schedule lag tolerance.
    pub late_sends: u64,
    /// Requests judged against the plan's SLO (every request the run did
    /// not cancel), and those that met it.
    pub slo_checked: u64,
    pub slo_met: u64,
    /// Check evaluations (k6's `checks`): one per check per request the
    /// run did not cancel, passed or failed.
    pub checks_passed: u64,
    pub checks_failed: u64,
    histograms: [Histogram; Distribution::COUNT],
}

impl Default for MetricSet {
    fn default() -> Self {
        MetricSet {
            requests: 0,
            ok: 0,
            errors: ErrorCounts::default(),
            output_tokens: 0,
            prompt_tokens: 0,
            tokens_counted_from_chunks: 0,
            itl_from_usage: 0,
            other_model: 0,
            late_sends: 0,
            slo_checked: 0,
            slo_met: 0,
            checks_passed: 0,
            checks_failed: 0,
            // Sized up front (1 µs..60 s, or 60k tok/s in thousandths) so
            // memory stays flat however long the run.
            histograms: std::array::from_fn(|_| Histogram::with_max(PRESIZED_MAX)),
        }
    }
}

impl MetricSet {
    /// Records one finished request into every distribution that measures
    /// it. `late` says whether its send lagged beyond the engine's
    /// tolerance. Errors are counted; only distributions marked
    /// `with_errors` (schedule lag) time them.
    pub fn record(&mut self, outcome: &Outcome, late: bool) {
        self.requests += 1;
        self.late_sends += u64::from(late);
        let failed = outcome.checks_failed.count_ones();
        self.checks_failed += u64::from(failed);
        self.checks_passed += u64::from(u32::from(outcome.checks_run).saturating_sub(failed));
        match outcome.error {
            Some(kind) => self.errors.add(kind),
            None => {
                self.ok += 1;
                self.output_tokens += u64::from(outcome.output_tokens);
                self.prompt_tokens += u64::from(outcome.prompt_tokens.unwrap_or(0));
                self.tokens_counted_from_chunks += u64::from(!outcome.tokens_from_usage);
                self.itl_from_usage += u64::from(outcome.itl_from_usage);
                self.other_model += u64::from(outcome.other_model);
            }
        }
        for (d, histogram) in Distribution::ALL.iter().zip(&mut self.histograms) {
            if let Some(value) = d.measure(outcome) {
                histogram.record(value);
            }
        }
    }

    /// Counts `outcome` against the plan's SLO: requests the run cancelled
    /// are left out (they were not the target's to meet).
    pub fn count_slo(&mut self, outcome: &Outcome, slo: &Slo) {
        if outcome.error == Some(ErrorKind::Cancelled) {
            return;
        }
        self.slo_checked += 1;
        self.slo_met += u64::from(slo.met(outcome));
    }

    /// The histogram of `distribution`.
    pub fn histogram(&self, distribution: Distribution) -> &Histogram {
        &self.histograms[distribution.index()]
    }

    /// The histogram of `distribution`, for values measured elsewhere (ITL
    /// comes from the workers).
    pub fn histogram_mut(&mut self, distribution: Distribution) -> &mut Histogram {
        &mut self.histograms[distribution.index()]
    }

    /// Every distribution with its histogram, in table order.
    pub fn histograms(&self) -> impl Iterator<Item = (Distribution, &Histogram)> {
        Distribution::ALL.iter().copied().zip(&self.histograms)
    }

    /// Empties the set, keeping its histograms' memory for reuse.
    pub fn reset(&mut self) {
        let MetricSet {
            requests,
            ok,
            errors,
            output_tokens,
            prompt_tokens,
            tokens_counted_from_chunks,
            itl_from_usage,
            other_model,
            late_sends,
            slo_checked,
            slo_met,
            checks_passed,
            checks_failed,
            histograms,
        } = self;
        (
            *requests,
            *ok,
            *output_tokens,
            *prompt_tokens,
            *tokens_counted_from_chunks,
            *itl_from_usage,
            *other_model,
            *late_sends,
            *slo_checked,
            *slo_met,
            *checks_passed,
            *checks_failed,
        ) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
        *errors = ErrorCounts::default();
        for histogram in histograms {
            histogram.reset();
        }
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
        self.prompt_tokens += other.prompt_tokens;
        self.tokens_counted_from_chunks += other.tokens_counted_from_chunks;
        self.itl_from_usage += other.itl_from_usage;
        self.other_model += other.other_model;
        self.late_sends += other.late_sends;
        self.slo_checked += other.slo_checked;
        self.slo_met += other.slo_met;
        self.checks_passed += other.checks_passed;
        self.checks_failed += other.checks_failed;
        for (mine, theirs) in self.histograms.iter_mut().zip(&other.histograms) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::Slot;

    fn outcome(end_ms: u64, error: Option<ErrorKind>) -> Outcome {
        Outcome {
            slot: Slot::default(),
            intended: Duration::ZERO,
            sent: Duration::from_millis(1),
            first_token: Some(Duration::from_millis(10)),
            last_token: Some(Duration::from_millis(end_ms)),
            end: Duration::from_millis(end_ms),
            output_tokens: 5,
            tokens_from_usage: error.is_none(),
            itl_from_usage: false,
            prompt_tokens: None,
            status: 200,
            error,
            in_flight: 1,
            worker_was_ready: false,
            trace_id: 0,
            other_model: false,
            checks_run: 0,
            checks_failed: 0,
            turn: 0,
            last_turn: false,
            session_start: Duration::ZERO,
        }
    }

    #[test]
    fn errors_are_counted_but_not_timed() {
        let mut set = MetricSet::default();
        set.record(&outcome(50, None), false);
        set.record(&outcome(900, Some(ErrorKind::Timeout)), true);
        assert_eq!((set.requests, set.ok, set.error_count()), (2, 1, 1));
        assert_eq!(set.histogram(Distribution::Latency).len(), 1);
        assert_eq!(set.histogram(Distribution::ScheduleLag).len(), 2);
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
