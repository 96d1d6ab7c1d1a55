//! Orphaned tasks (DESIGN.md), engine-agnostic: from the server's own
//! finished-request counter and what it holds, beside the client's counts.
//! A request is orphaned when the server works on it after no client waits
//! for it: it finished (not aborted) although the client gave up on it, or
//! the server still held it (running or waiting) when the drain window
//! ended. Counter increases span the run and the drain window, since the
//! samplers run through both.

use crate::outcome::ErrorKind;
use crate::report::{ObservedReport, Orphans, StatsBlock};

/// The profiles' names (queries/*.toml) for the counters read here.
pub const FINISHED: &str = "requests_completed";
pub const ABORTED: &str = "requests_aborted";

/// Client errors after which the server may keep working: the client
/// stopped waiting, not the server.
const ABANDONING: [ErrorKind; 3] = [
    ErrorKind::Timeout,
    ErrorKind::Cancelled,
    ErrorKind::StreamError,
];

/// Requests of `stats` the client gave up on (timeouts, cancellations,
/// broken streams): the server may have done their work anyway.
pub fn abandoned(stats: &StatsBlock) -> u64 {
    ABANDONING
        .iter()
        .map(|k| stats.errors.get(k.name()).copied().unwrap_or(0))
        .sum()
}

/// `None` without a drain window or when neither part is measured.
pub fn orphans(observed: Option<&ObservedReport>, overall: &StatsBlock) -> Option<Orphans> {
    let observed = observed?;
    let drain = observed.drain.as_ref()?;
    let increase = |name: &str| observed.value(name).and_then(|v| v.value);
    let server_finished = increase(FINISHED);
    let server_aborted = increase(ABORTED);
    let finished_for_nobody = server_finished
        .map(|finished| (finished - server_aborted.unwrap_or(0.0) - overall.ok as f64).max(0.0));
    let held_at_drain_end = drain.held_at_end;
    if finished_for_nobody.is_none() && held_at_drain_end.is_none() {
        return None;
    }
    let client_abandoned = abandoned(overall);
    Some(Orphans {
        count: finished_for_nobody.unwrap_or(0.0) + held_at_drain_end.unwrap_or(0.0),
        finished_for_nobody,
        held_at_drain_end,
        server_finished,
        server_aborted,
        client_ok: overall.ok,
        client_abandoned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DrainReport, SampledSummary};
    use crate::stats::{Aggregate, SeriesStats};

    fn counter(name: &str, increase: f64) -> SampledSummary {
        SampledSummary {
            name: name.into(),
            unit: "count".into(),
            source: "scrape".into(),
            aggregate: Aggregate::Delta,
            value: Some(increase),
            stats: SeriesStats::default(),
            gaps: 0,
        }
    }

    fn observed(values: Vec<SampledSummary>, held: Option<f64>) -> ObservedReport {
        ObservedReport {
            values,
            drain: Some(DrainReport {
                held_at_end: held,
                ..DrainReport::default()
            }),
            ..ObservedReport::default()
        }
    }

    fn client(ok: u64, timeouts: u64) -> StatsBlock {
        let mut stats = StatsBlock {
            ok,
            ..StatsBlock::default()
        };
        stats.errors.insert("timeout".into(), timeouts);
        stats
    }

    #[test]
    fn work_finished_for_clients_that_left_and_work_still_held_are_orphans() {
        let o = observed(
            vec![counter(FINISHED, 130.0), counter(ABORTED, 10.0)],
            Some(4.0),
        );
        let found = orphans(Some(&o), &client(100, 30)).unwrap();
        assert_eq!(found.finished_for_nobody, Some(20.0));
        assert_eq!(found.count, 24.0);
        assert_eq!(found.client_abandoned, 30);
    }

    #[test]
    fn a_server_that_aborts_what_clients_abandon_has_none() {
        let o = observed(
            vec![counter(FINISHED, 130.0), counter(ABORTED, 30.0)],
            Some(0.0),
        );
        assert_eq!(orphans(Some(&o), &client(100, 30)).unwrap().count, 0.0);
    }

    #[test]
    fn nothing_measured_is_no_answer_not_zero() {
        let o = observed(Vec::new(), None);
        assert_eq!(orphans(Some(&o), &client(100, 0)), None);
        assert_eq!(orphans(None, &client(100, 0)), None);
    }
}
