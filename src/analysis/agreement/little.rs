//! The server's time in system, checked against itself (DESIGN.md,
//! "Cross-check … Little's law"): the requests its gauges held, integrated
//! over the sampled window, against the time its latency histograms say
//! those requests spent; and its queue time against the time to first
//! token that must contain it.
//!
//! Little's law, L̄ = λ·W̄, is an identity over a window that starts and
//! ends empty: ∫N(t)dt over the window is exactly ΣWᵢ, the time every
//! request spent inside it. The run's sampled window is such a window — the
//! baseline is read before any request is sent and the drain window ends
//! at the first sample that finds nothing held — so the law is checked over
//! the whole of it (load and drain), never over the load alone, whose end
//! cuts through requests still held. What is left is sampling: the gauges
//! are read every Δ, and a request of W seconds is seen by ⌊W/Δ⌋ or
//! ⌈W/Δ⌉ samples, so each adds an error within ±Δ to Δ·ΣN(tₖ). With
//! arrivals not locked to the ticks these errors are independent with a
//! variance of at most Δ²/4: three standard deviations over n requests
//! are 1.5·Δ·√n request-seconds. With arrivals locked to the ticks (a
//! constant rate whose period divides Δ) every sample sees the same phase
//! and the mean is off by up to one whole request for the whole window:
//! T request-seconds. The bound is the larger of the two.

use super::increase;
use crate::plan::Plan;
use crate::report::{CheckUnit, CrossCheck, ObservedReport, Reference, StatsBlock};
use crate::stats::Distribution;

/// The gauges of the requests a server holds.
const RUNNING: &str = "running";
const WAITING: &str = "server_waiting_all";

/// Relative slack on a bound between two means: the client's mean comes
/// from an HDR histogram (three significant digits).
const MEAN_PRECISION: f64 = 0.001;

/// The sampled window, from the baseline to the end of the drain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Window {
    pub seconds: f64,
    pub interval_s: f64,
}

/// The window the law holds over, or why there is none.
fn window(observed: &ObservedReport, label: &str) -> Result<Window, String> {
    let drain = observed.drain.as_ref().ok_or_else(|| {
        format!("{label}: no drain window was sampled, so the window may not end empty")
    })?;
    if let Some(why) = &drain.skipped {
        return Err(format!("{label}: no drain window ({why})"));
    }
    let drained = drain.drain_time_s.ok_or_else(|| {
        format!(
            "{label}: the server still held {} requests when the drain window ended, so the window does not end empty",
            drain.held_at_end.map_or("some".to_owned(), |h| format!("{h:.0}"))
        )
    })?;
    Ok(Window {
        seconds: drain.load_end_s + drained,
        interval_s: observed.interval_s,
    })
}

/// ∫N(t)dt of the named gauges over the window (request-seconds):
/// Δ·ΣN(tₖ) over the ticks, the missed ones (gaps) filled with the mean
/// of the others. Refused when a gauge held requests at the baseline.
fn held_seconds(
    observed: &ObservedReport,
    names: &[&str],
    interval_s: f64,
    label: &str,
) -> Result<f64, String> {
    let mut total = 0.0;
    for name in names {
        let v = observed
            .value(name)
            .filter(|v| v.stats.samples > 0)
            .ok_or_else(|| format!("{label}: the server exports no `{name}` gauge"))?;
        let first = v.stats.first.unwrap_or(0.0);
        if first > 0.0 {
            return Err(format!(
                "{label}: `{name}` was {first:.0} before the run (earlier work or another tenant), so the window does not start empty"
            ));
        }
        let mean = v.stats.avg.unwrap_or(0.0);
        let ticks = (v.stats.samples + v.gaps) as f64;
        total += interval_s * mean * ticks;
    }
    Ok(total)
}

/// One law: what the gauges held against what the histogram's requests
/// spent, with what may be missing on either side.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Law {
    pub label: &'static str,
    /// ∫N(t)dt of the gauges (request-seconds).
    pub held_s: f64,
    /// ΣWᵢ: the histogram's sum's increase (seconds).
    pub spent_s: f64,
    /// The histogram's count's increase.
    pub requests: f64,
    pub window: Window,
    /// Request-seconds the gauges may hold beyond `spent_s` for requests
    /// the histogram never observed (each at most the client's timeout).
    pub unobserved_s: f64,
    /// The gauges may hold any amount more (the histogram times only a
    /// part of what the gauge counts, e.g. a first wait of several).
    pub open_above: bool,
    /// Likely causes when the gauges hold fewer, and when more.
    pub fewer: &'static str,
    pub more: &'static str,
}

/// The sampling bound (request-seconds): one request over the window, or
/// three standard deviations of independent phases, whichever is larger.
pub(super) fn sampling_bound(window: Window, requests: f64) -> f64 {
    let locked = window.seconds;
    let independent = 1.5 * window.interval_s * requests.max(0.0).sqrt();
    locked.max(independent)
}

/// The law judged: L̄ (the gauges) against λ·W̄ (the histogram), both over
/// the window.
pub(super) fn judge(law: &Law) -> CrossCheck {
    let t = law.window.seconds;
    let bound = sampling_bound(law.window, law.requests);
    let (low, high) = (law.spent_s - bound, law.spent_s + bound + law.unobserved_s);
    let fewer = law.held_s < low;
    let more = !law.open_above && law.held_s > high;
    let (held, predicted) = (law.held_s / t, law.spent_s / t);
    let rate = law.requests / t;
    let mean_ms = if law.requests > 0.0 {
        law.spent_s / law.requests * 1000.0
    } else {
        0.0
    };
    let diff = held - predicted;
    let pct = if predicted > 0.0 {
        diff / predicted * 100.0
    } else {
        0.0
    };
    let mut detail = format!(
        "L̄ {held:.2} (gauges sampled every {}s over {t:.1}s) vs λ {rate:.2}/s × W̄ {} = {predicted:.2}: {diff:+.2} ({pct:+.1}%)",
        law.window.interval_s,
        super::ms(mean_ms),
    );
    if fewer {
        detail.push_str(&format!(
            ": the gauges held fewer requests than the latencies account for — {}",
            law.fewer
        ));
    } else if more {
        detail.push_str(&format!(
            ": the gauges held more requests than the latencies account for — {}",
            law.more
        ));
    }
    let mut tolerance = format!(
        "±{:.2} (the larger of one request and 1.5·Δ·√n/T = 1.5 × {}s × √{:.0} / {t:.1}s)",
        bound / t,
        law.window.interval_s,
        law.requests
    );
    if law.open_above {
        tolerance = format!("at least λ·W̄ − {:.2} (one-sided: {})", bound / t, law.more);
    } else if law.unobserved_s > 0.0 {
        tolerance.push_str(&format!(
            ", and up to {:.2} more for requests the histogram did not observe",
            law.unobserved_s / t
        ));
    }
    CrossCheck {
        check: law.label.to_owned(),
        unit: CheckUnit::Requests,
        client: predicted,
        server_low: held,
        server_high: Some(held),
        tolerance,
        pass: !fewer && !more,
        detail,
        reference: Reference::Server,
    }
}

/// Little's law over the requests in the system (running + waiting) and
/// over the waiting ones alone, and the queue-time share; each, or why it
/// could not be made.
pub(super) fn checks(
    plan: &Plan,
    observed: &ObservedReport,
    overall: &StatsBlock,
    abandoned: u64,
) -> Vec<Result<CrossCheck, String>> {
    let timeout_s = plan.target.timeout.as_secs_f64();
    let finished = increase(observed, "requests_completed");
    vec![
        in_system(observed, finished, timeout_s),
        waiting(observed, finished, timeout_s),
        queue_share(observed, overall, abandoned),
    ]
}

/// Requests the finished-request counter counted beyond those `observed`
/// by a histogram: aborted ones, which it may leave out.
fn unobserved(finished: Option<f64>, observed: f64) -> f64 {
    finished.map_or(0.0, |f| (f - observed).max(0.0))
}

fn histogram_sums(
    observed: &ObservedReport,
    label: &str,
    sum: &str,
    count: &str,
) -> Result<(f64, f64), String> {
    let sum_s = increase(observed, sum)
        .ok_or_else(|| format!("{label}: the server exports no `{sum}` histogram sum"))?;
    let requests = increase(observed, count)
        .ok_or_else(|| format!("{label}: the server exports no `{count}` histogram count"))?;
    if requests <= 0.0 {
        return Err(format!("{label}: `{count}` counted no request"));
    }
    Ok((sum_s, requests))
}

fn in_system(
    observed: &ObservedReport,
    finished: Option<f64>,
    timeout_s: f64,
) -> Result<CrossCheck, String> {
    const LABEL: &str = "Little's law (in system)";
    let window = window(observed, LABEL)?;
    let held_s = held_seconds(observed, &[RUNNING, WAITING], window.interval_s, LABEL)?;
    let (spent_s, requests) =
        histogram_sums(observed, LABEL, "server_e2e_sum", "server_e2e_count")?;
    Ok(judge(&Law {
        label: LABEL,
        held_s,
        spent_s,
        requests,
        window,
        unobserved_s: unobserved(finished, requests) * timeout_s,
        open_above: false,
        fewer: "a running gauge that counts only some of the requests (decoding only, or one replica of several), a scrape interval too coarse for requests this short, or a counter reset during the run",
        more: "requests the e2e histogram never observed (aborted, or another tenant's on a shared gauge), an e2e histogram that under-reports, or gauges summed over replicas whose histograms were not",
    }))
}

fn waiting(
    observed: &ObservedReport,
    finished: Option<f64>,
    timeout_s: f64,
) -> Result<CrossCheck, String> {
    const LABEL: &str = "Little's law (waiting)";
    let window = window(observed, LABEL)?;
    let held_s = held_seconds(observed, &[WAITING], window.interval_s, LABEL)?;
    let (spent_s, requests) =
        histogram_sums(observed, LABEL, "server_queue_sum", "server_queue_count")?;
    // A preempted request waits again; the queue-time histogram times its
    // first wait only.
    let preempted = increase(observed, "preemptions").is_some_and(|p| p > 0.0);
    Ok(judge(&Law {
        label: LABEL,
        held_s,
        spent_s,
        requests,
        window,
        unobserved_s: unobserved(finished, requests) * timeout_s,
        open_above: preempted,
        fewer: "a queue-time histogram that times more than the wait (to the end of prefill, or in other units than it says), or a waiting gauge that misses requests",
        more: "a queue-time histogram that under-reports the wait, requests waiting again after a preemption, or a waiting gauge that counts something else",
    }))
}

/// The bound on the mean queue time: a request's wait ends before its
/// first token, at the server (its TTFT histogram, summed over a superset
/// of the queue histogram's requests) and at the client (from sending to
/// the first token, when it received every request the server queued).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct QueueBound {
    /// Mean queue time and mean e2e at the server (ms).
    pub queue_ms: f64,
    pub e2e_ms: f64,
    /// ΣTTFT / queued requests at the server (ms).
    pub server_ttft_ms: Option<f64>,
    /// The client's mean TTFT from sending (ms).
    pub client_ttft_ms: Option<f64>,
}

pub(super) fn judge_queue_share(b: &QueueBound) -> Option<CrossCheck> {
    let bound = match (b.server_ttft_ms, b.client_ttft_ms) {
        (Some(s), Some(c)) => s.min(c),
        (s, c) => s.or(c)?,
    };
    let from_server = b.server_ttft_ms == Some(bound);
    let share = |ms: f64| {
        if b.e2e_ms > 0.0 { ms / b.e2e_ms } else { 0.0 }
    };
    let pass = b.queue_ms <= bound * (1.0 + MEAN_PRECISION);
    let figure = |name: &str, v: Option<f64>| {
        v.map(|ms| format!("{name} {} ({:.1}%)", super::ms(ms), share(ms) * 100.0))
    };
    let ttfts: Vec<String> = [
        figure("the server's mean TTFT", b.server_ttft_ms),
        figure("the client's", b.client_ttft_ms),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut detail = format!(
        "mean queue time {} is {:.1}% of the server's mean e2e {}; {}",
        super::ms(b.queue_ms),
        share(b.queue_ms) * 100.0,
        super::ms(b.e2e_ms),
        ttfts.join(", ")
    );
    if !pass {
        detail.push_str(&format!(
            ": the queue time exceeds the time to first token by {}, which cannot be — a queue-time histogram that times more than the wait (to the end of prefill or of the request), in other units than it says, or observed on other requests than the TTFT",
            super::ms(b.queue_ms - bound)
        ));
    }
    Some(CrossCheck {
        check: "Queue-time share".to_owned(),
        unit: CheckUnit::Ratio,
        client: share(bound),
        server_low: share(b.queue_ms),
        server_high: Some(share(b.queue_ms)),
        tolerance: format!(
            "queue ≤ time to first token ({}, {} of the e2e mean)",
            if from_server {
                "the server's"
            } else {
                "the client's"
            },
            super::ms(bound)
        ),
        pass,
        detail,
        reference: if from_server {
            Reference::Server
        } else {
            Reference::Client
        },
    })
}

fn queue_share(
    observed: &ObservedReport,
    overall: &StatsBlock,
    abandoned: u64,
) -> Result<CrossCheck, String> {
    const LABEL: &str = "Queue-time share";
    let (queue_s, queued) =
        histogram_sums(observed, LABEL, "server_queue_sum", "server_queue_count")?;
    let (e2e_s, finished) = histogram_sums(observed, LABEL, "server_e2e_sum", "server_e2e_count")?;
    // Every request the queue histogram observed had a first token, so
    // ΣTTFT covers them (and perhaps more): ΣTTFT / queued bounds the mean.
    let server_ttft_ms = histogram_sums(observed, LABEL, "server_ttft_sum", "server_ttft_count")
        .ok()
        .filter(|&(_, n)| n >= queued)
        .map(|(sum, _)| sum / queued * 1000.0);
    // The client's TTFT covers the server's wait when it received every
    // request the server queued, and no others were queued.
    let same_requests = abandoned == 0 && (overall.ok as f64 - queued).abs() < 0.5;
    let client_ttft_ms = overall
        .quantiles(Distribution::TtftService)
        .filter(|_| same_requests)
        .map(|q| q.mean);
    judge_queue_share(&QueueBound {
        queue_ms: queue_s / queued * 1000.0,
        e2e_ms: e2e_s / finished * 1000.0,
        server_ttft_ms,
        client_ttft_ms,
    })
    .ok_or_else(|| {
        format!("{LABEL}: neither the server's TTFT histogram nor the client's TTFT covers the requests the server queued")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn law(held_s: f64, spent_s: f64, requests: f64) -> Law {
        Law {
            label: "Little's law (in system)",
            held_s,
            spent_s,
            requests,
            window: Window {
                seconds: 10.0,
                interval_s: 1.0,
            },
            unobserved_s: 0.0,
            open_above: false,
            fewer: "fewer causes",
            more: "more causes",
        }
    }

    #[test]
    fn the_sampling_bound_is_one_request_or_three_sigma_of_the_phases() {
        let w = Window {
            seconds: 10.0,
            interval_s: 1.0,
        };
        // 16 requests: 3σ = 1.5 × 1 × 4 = 6 request-seconds < 10 (locked).
        assert_eq!(sampling_bound(w, 16.0), 10.0);
        // 400 requests: 1.5 × 20 = 30 request-seconds.
        assert_eq!(sampling_bound(w, 400.0), 30.0);
        let fast = Window {
            seconds: 10.0,
            interval_s: 0.25,
        };
        assert_eq!(sampling_bound(fast, 400.0), 10.0);
    }

    #[test]
    fn the_gauges_must_hold_what_the_latencies_spent_within_the_bound() {
        // L̄ = 5.0 vs λW̄ = 5.2 over 10 s, 100 requests: bound
        // max(10, 15) = 15 request-seconds = ±1.5.
        let ok = judge(&law(50.0, 52.0, 100.0));
        assert!(ok.pass, "{ok:?}");
        assert_eq!((ok.server_low, ok.client), (5.0, 5.2));
        assert!(ok.tolerance.starts_with("±1.50"), "{}", ok.tolerance);
        assert!(ok.detail.contains("(-3.8%)"), "{}", ok.detail);
        assert_eq!(ok.reference, Reference::Server);
        let half = judge(&law(26.0, 52.0, 100.0));
        assert!(!half.pass);
        assert!(half.detail.contains("(-50.0%)") && half.detail.contains("fewer causes"));
        let double = judge(&law(104.0, 52.0, 100.0));
        assert!(
            !double.pass && double.detail.contains("more causes"),
            "{double:?}"
        );
    }

    #[test]
    fn unobserved_requests_and_preemptions_widen_only_the_upper_side() {
        let mut l = law(80.0, 52.0, 100.0);
        assert!(!judge(&l).pass);
        // 3 aborted requests of at most 5 s each: 15 request-seconds more.
        l.unobserved_s = 15.0;
        let widened = judge(&l);
        assert!(widened.pass, "{widened:?}");
        assert!(widened.tolerance.contains("up to 1.50 more"));
        l.held_s = 20.0;
        assert!(!judge(&l).pass, "the lower side stays");
        l.held_s = 500.0;
        l.open_above = true;
        let open = judge(&l);
        assert!(
            open.pass && open.tolerance.starts_with("at least"),
            "{open:?}"
        );
    }

    #[test]
    fn queue_time_cannot_exceed_the_time_to_first_token() {
        let bound = QueueBound {
            queue_ms: 100.0,
            e2e_ms: 1000.0,
            server_ttft_ms: Some(150.0),
            client_ttft_ms: Some(160.0),
        };
        let ok = judge_queue_share(&bound).unwrap();
        assert!(ok.pass, "{ok:?}");
        assert_eq!((ok.server_low, ok.client), (0.1, 0.15));
        assert_eq!(ok.reference, Reference::Server);
        let over = judge_queue_share(&QueueBound {
            queue_ms: 200.0,
            ..bound
        })
        .unwrap();
        assert!(!over.pass);
        assert!(over.detail.contains("by 50.0 ms"), "{}", over.detail);
        let client_only = judge_queue_share(&QueueBound {
            server_ttft_ms: None,
            ..bound
        })
        .unwrap();
        assert_eq!(client_only.reference, Reference::Client);
        assert!(
            judge_queue_share(&QueueBound {
                server_ttft_ms: None,
                client_ttft_ms: None,
                ..bound
            })
            .is_none()
        );
    }
}
