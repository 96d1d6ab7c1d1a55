//! Client ↔ server cross-checks (DESIGN.md, "Observability validation"):
//! does the server's own telemetry agree with what the client measured?
//! Counters over the run and drain (requests finished, output and prompt
//! tokens) must equal the client's figures, allowing for the work of
//! requests the client gave up on; a server latency quantile, read from
//! its histogram's buckets as the interval it falls in, must not lie above
//! the client's (the server's first token cannot come later than the
//! client's), and the gap between them is network and router time.
//!
//! Beside them, the laws the server's telemetry must keep with itself:
//! Little's law and the queue-time share (`little`), the two forms of the
//! prefix-cache hit rate (`prefix_forms`); and its requests by finish
//! reason against the requests the client lost.

mod little;
mod prefix_forms;

use super::orphans::abandoned;
use crate::plan::Plan;
use crate::report::{
    CheckUnit, CrossCheck, ModelReport, ObservedReport, Orphans, Reference, RunHistogram,
    StatsBlock,
};
use crate::stats::{Distribution, Quantiles};

/// Relative slack on counters: scrape timing at the run's edges.
const COUNTER_TOLERANCE: f64 = 0.01;

/// Every check both sides have figures for, and why the others were not
/// made.
pub fn agreement(
    plan: &Plan,
    observed: Option<&ObservedReport>,
    overall: &StatsBlock,
    models: &[ModelReport],
    orphans: Option<&Orphans>,
) -> (Vec<CrossCheck>, Vec<String>) {
    let Some(observed) = observed else {
        return (Vec::new(), Vec::new());
    };
    let abandoned = abandoned(overall);
    let (mut checks, mut skipped) = (Vec::new(), Vec::new());
    let mut add = |result: Result<CrossCheck, String>| match result {
        Ok(check) => checks.push(check),
        Err(why) => skipped.push(why),
    };
    add(requests(observed, overall, abandoned, orphans));
    let max_tokens = plan.phases.iter().map(|p| p.max_tokens).max().unwrap_or(0);
    add(tokens(
        "Output tokens",
        "generation_tokens",
        observed,
        overall.output_tokens,
        abandoned * u64::from(max_tokens),
    ));
    let prompt_per_request = overall.prompt_tokens.checked_div(overall.ok).unwrap_or(0);
    add(tokens(
        "Prompt tokens",
        "prompt_tokens",
        observed,
        overall.prompt_tokens,
        // A request the client abandoned may have been prefilled: allow
        // twice the mean prompt for each.
        abandoned * 2 * prompt_per_request,
    ));
    for (label, query, client) in [
        ("TTFT", "server_ttft_p95", Distribution::TtftService),
        ("E2E latency", "server_e2e_p95", Distribution::ServiceTime),
    ] {
        for (name, q) in [("p50", 0.5), ("p95", 0.95)] {
            add(quantile(
                &format!("{label} {name}"),
                histogram(observed, query),
                q,
                overall.quantiles(client),
            ));
        }
    }
    for law in little::checks(plan, observed, overall, abandoned) {
        add(law);
    }
    add(prefix_forms::check(
        observed, overall, max_tokens, abandoned,
    ));
    add(finish_reasons(observed, overall));
    checks.extend(per_model(observed, models));
    (checks, skipped)
}

/// Routing correctness (examples/004): the requests the engines serving
/// each model finished, by the model label of their counters, must lie
/// between the client's successes for it and the requests it sent for it
/// (±1 %); requests sent for a model that no engine serving it finished
/// while other models were served are a routing error. Only when the
/// server labels its counters by model.
fn per_model(observed: &ObservedReport, models: &[ModelReport]) -> Vec<CrossCheck> {
    let Some(finished) = observed
        .by_model
        .iter()
        .find(|c| c.query == "requests_completed")
    else {
        return Vec::new();
    };
    let aborted = observed
        .by_model
        .iter()
        .find(|c| c.query == "requests_aborted");
    let served = |model: &str| {
        finished.by_model.get(model).copied().unwrap_or(0.0)
            - aborted
                .and_then(|a| a.by_model.get(model))
                .copied()
                .unwrap_or(0.0)
    };
    let named: Vec<&ModelReport> = models
        .iter()
        .filter(|m| m.model != crate::plan::SERVER_DEFAULT_MODEL)
        .collect();
    let any_served = named.iter().any(|m| served(&m.model) > 0.0);
    named
        .iter()
        .map(|m| routing_check(m, served(&m.model), any_served))
        .collect()
}

fn routing_check(m: &ModelReport, server: f64, any_served: bool) -> CrossCheck {
    let (ok, sent) = (m.stats.ok as f64, m.stats.requests as f64);
    let slack = (sent * COUNTER_TOLERANCE).max(1.0);
    let starved = sent > 0.0 && server == 0.0 && any_served;
    let pass = !starved && server >= ok - slack && server <= sent + slack;
    let model = &m.model;
    let detail = if starved {
        format!(
            "none of the {sent:.0} requests sent for {model} was finished by an engine serving {model} — a routing error (they went to another model's backend{})",
            if ok < sent {
                ", which refused them"
            } else {
                ""
            }
        )
    } else if server < ok - slack {
        format!(
            "server {:+.0}: engines serving {model} finished fewer than the client received for it — requests served by another model's engine (a routing error), or an engine labelling them under another name",
            server - ok
        )
    } else if server > sent + slack {
        format!(
            "server {:+.0}: engines serving {model} finished more than the client sent for it — requests for another model routed to them, or another tenant's traffic",
            server - sent
        )
    } else {
        format!(
            "engines serving {model} finished {server:.0}; the client received {ok:.0} of {sent:.0} sent"
        )
    };
    CrossCheck {
        check: format!("Requests for {model}"),
        unit: CheckUnit::Count,
        client: sent,
        server_low: server,
        server_high: Some(server),
        tolerance: format!("between the {ok:.0} received and the {sent:.0} sent, ±{slack:.0}"),
        pass,
        detail,
        reference: Reference::Client,
    }
}

/// A counter's increase over the run and drain (a `delta` query's value).
fn increase(observed: &ObservedReport, name: &str) -> Option<f64> {
    observed.value(name).and_then(|v| v.value)
}

fn histogram<'a>(observed: &'a ObservedReport, query: &str) -> Option<&'a RunHistogram> {
    observed.histograms.iter().find(|h| h.query == query)
}

/// Requests the server finished (aborts left out) against the client's
/// successes; requests finished for clients that had left are allowed.
fn requests(
    observed: &ObservedReport,
    overall: &StatsBlock,
    abandoned: u64,
    orphans: Option<&Orphans>,
) -> Result<CrossCheck, String> {
    let finished = increase(observed, "requests_completed")
        .ok_or("Requests completed: the server exports no finished-request counter")?;
    let server = finished - increase(observed, "requests_aborted").unwrap_or(0.0);
    let orphaned = orphans.and_then(|o| o.finished_for_nobody).unwrap_or(0.0);
    let mut check = counter(
        "Requests completed",
        overall.ok as f64,
        server,
        abandoned as f64,
    );
    if orphaned > 0.0 {
        check.detail.push_str(&format!(
            "; {orphaned:.0} of them finished after their client had left (orphaned tasks)"
        ));
    }
    Ok(check)
}

fn tokens(
    label: &str,
    query: &str,
    observed: &ObservedReport,
    client: u64,
    allowance: u64,
) -> Result<CrossCheck, String> {
    if client == 0 {
        return Err(format!("{label}: the server sent no usage to the client"));
    }
    let server = increase(observed, query)
        .ok_or_else(|| format!("{label}: the server exports no `{query}` counter"))?;
    Ok(counter(label, client as f64, server, allowance as f64))
}

/// A counter's increase must equal the client's figure within
/// [`COUNTER_TOLERANCE`] (and one unit), plus `allowance` above it for
/// work on requests the client gave up on.
fn counter(label: &str, client: f64, server: f64, allowance: f64) -> CrossCheck {
    let slack = (client * COUNTER_TOLERANCE).max(1.0);
    let (low, high) = (client - slack, client + slack + allowance);
    let pass = (low..=high).contains(&server);
    let diff = server - client;
    let pct = if client > 0.0 {
        diff / client * 100.0
    } else {
        0.0
    };
    let mut detail = format!("server {diff:+.0} ({pct:+.1}%) vs the client");
    if !pass && server < low {
        detail.push_str(": the server counted fewer than the client received — under-reporting metrics, a counter reset during the run, or a scrape that missed the run's end");
    } else if !pass {
        detail.push_str(": more than this run can explain — another tenant's traffic on the same server, router retries, or a counter shared by several models");
    }
    let tolerance = if allowance > 0.0 {
        format!("±{slack:.0}, and up to {allowance:.0} more for requests the client gave up on")
    } else {
        format!("±{slack:.0}")
    };
    CrossCheck {
        check: label.to_owned(),
        unit: CheckUnit::Count,
        client,
        server_low: server,
        server_high: Some(server),
        tolerance,
        pass,
        detail,
        reference: Reference::Client,
    }
}

/// vLLM's finish reasons and the queries that count them.
const FINISH_REASONS: &[(&str, &str)] = &[
    ("stop", "server_finished_stop"),
    ("length", "server_finished_length"),
    ("repetition", "server_finished_repetition"),
    ("abort", "requests_aborted"),
    ("error", "server_finished_error"),
];

/// The reasons that end a request without its answer.
const ABNORMAL: &[&str] = &["abort", "error"];

/// The server's requests by finish reason (each counter's increase), and
/// the abnormal ones against the requests the client did not receive in
/// full: a request the server aborted or failed cannot have reached its
/// client whole, so there can be no more of them (±1 %) than the client
/// lost. The client records no finish reason (the SSE reader keeps
/// none), so stop and length are the server's word alone.
fn finish_reasons(observed: &ObservedReport, overall: &StatsBlock) -> Result<CrossCheck, String> {
    let counted: Vec<(&str, f64)> = FINISH_REASONS
        .iter()
        .filter_map(|(reason, query)| increase(observed, query).map(|n| (*reason, n)))
        .collect();
    if !counted.iter().any(|(reason, _)| ABNORMAL.contains(reason)) {
        return Err("Requests ended abnormally: the server exports no finish-reason counter for aborts or errors".to_owned());
    }
    Ok(judge_finish_reasons(&counted, overall))
}

fn judge_finish_reasons(counted: &[(&str, f64)], overall: &StatsBlock) -> CrossCheck {
    let server: f64 = counted
        .iter()
        .filter(|(reason, _)| ABNORMAL.contains(reason))
        .map(|(_, n)| n)
        .sum();
    let lost = (overall.requests - overall.ok) as f64;
    let slack = (overall.requests as f64 * COUNTER_TOLERANCE).max(1.0);
    let pass = server <= lost + slack;
    let breakdown: Vec<String> = counted
        .iter()
        .map(|(reason, n)| format!("{reason} {n:.0}"))
        .collect();
    let mut detail = format!(
        "server finished by reason: {}; the client records no finish reason, so stop and length were not compared",
        breakdown.join(", ")
    );
    if !pass {
        detail.push_str(&format!(
            "; the server ended {:.0} more requests abnormally than the client lost — another tenant's aborted requests, or requests it labels aborted that the client received in full",
            server - lost
        ));
    }
    CrossCheck {
        check: "Requests ended abnormally".to_owned(),
        unit: CheckUnit::Count,
        client: lost,
        server_low: server,
        server_high: Some(server),
        tolerance: format!(
            "server ≤ the {lost:.0} the client did not receive in full, +{slack:.0}"
        ),
        pass,
        detail,
        reference: Reference::Client,
    }
}

/// The bucket (low, high] that quantile `q` of a cumulative histogram
/// falls in; `None` when it is empty.
pub fn bucket_interval(buckets: &[(f64, f64)], q: f64) -> Option<(f64, f64)> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut low = 0.0;
    for &(le, count) in buckets {
        if count >= rank {
            return Some((low, le));
        }
        low = le;
    }
    None
}

/// A server quantile (seconds, from buckets) against the client's (ms).
fn quantile(
    label: &str,
    histogram: Option<&RunHistogram>,
    q: f64,
    client: Option<Quantiles>,
) -> Result<CrossCheck, String> {
    let h = histogram.ok_or_else(|| format!("{label}: the server exports no such histogram"))?;
    let client = client.ok_or_else(|| format!("{label}: the client measured none"))?;
    let client_ms = if q == 0.5 { client.p50 } else { client.p95 };
    let (low_s, high_s) = bucket_interval(&h.buckets, q)
        .ok_or_else(|| format!("{label}: `{}` counted no request", h.metric))?;
    let (low, high) = (low_s * 1000.0, high_s * 1000.0);
    let pass = low <= client_ms;
    let detail = if pass {
        let (min_gap, max_gap) = ((client_ms - high).max(0.0), client_ms - low);
        format!(
            "network + router between {} and {} (the client's minus the server's bucket)",
            ms(min_gap),
            ms(max_gap)
        )
    } else {
        format!(
            "the server's quantile lies above the client's, which cannot be: bucket resolution ({} … {}), clocks or another tenant's slower requests in `{}`",
            ms(low),
            ms(high),
            h.metric
        )
    };
    Ok(CrossCheck {
        check: label.to_owned(),
        unit: CheckUnit::Milliseconds,
        client: client_ms,
        server_low: low,
        server_high: high.is_finite().then_some(high),
        tolerance: "server ≤ client".to_owned(),
        pass,
        detail,
        reference: Reference::Client,
    })
}

fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.1} ms")
    } else {
        "∞".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_the_bucket_its_rank_falls_in() {
        let b = [
            (0.01, 10.0),
            (0.02, 80.0),
            (0.04, 95.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(bucket_interval(&b, 0.5), Some((0.01, 0.02)));
        assert_eq!(bucket_interval(&b, 0.95), Some((0.02, 0.04)));
        assert_eq!(bucket_interval(&b, 0.99), Some((0.04, f64::INFINITY)));
        assert_eq!(bucket_interval(&[(0.1, 0.0)], 0.5), None);
    }

    #[test]
    fn counters_equal_within_one_percent_and_say_by_how_much_when_not() {
        assert!(counter("t", 1000.0, 1005.0, 0.0).pass);
        let under = counter("Output tokens", 1000.0, 900.0, 0.0);
        assert!(!under.pass);
        assert!(
            under.detail.starts_with("server -100 (-10.0%)"),
            "{}",
            under.detail
        );
        assert!(under.detail.contains("under-reporting"));
        assert!(counter("t", 100.0, 130.0, 30.0).pass);
        assert!(!counter("t", 100.0, 140.0, 30.0).detail.contains("under"));
    }

    #[test]
    fn a_server_quantile_above_the_clients_fails() {
        let h = RunHistogram {
            query: "server_ttft_p95".into(),
            metric: "vllm:time_to_first_token_seconds".into(),
            buckets: vec![(1.0, 0.0), (2.5, 100.0), (f64::INFINITY, 100.0)],
        };
        let client = |p95: f64| Quantiles {
            count: 100,
            min: 0.0,
            mean: p95,
            p50: p95,
            p90: p95,
            p95,
            p99: p95,
            max: p95,
        };
        // Real vLLM V1 (issue 10): 2,425 ms interpolated, client 1,321 ms;
        // as an interval (1 s, 2.5 s] it is consistent.
        let ok = quantile("TTFT p95", Some(&h), 0.95, Some(client(1321.0))).unwrap();
        assert!(ok.pass, "{ok:?}");
        assert_eq!((ok.server_low, ok.server_high), (1000.0, Some(2500.0)));
        let bad = quantile("TTFT p95", Some(&h), 0.95, Some(client(900.0))).unwrap();
        assert!(!bad.pass && bad.detail.contains("bucket resolution"));
    }

    fn model(name: &str, ok: u64, requests: u64) -> ModelReport {
        ModelReport {
            model: name.into(),
            weight: 0.5,
            stats: StatsBlock {
                ok,
                requests,
                ..StatsBlock::default()
            },
        }
    }

    #[test]
    fn routing_rows_catch_starved_and_swollen_models() {
        // Routed right.
        assert!(routing_check(&model("a", 30, 30), 30.0, true).pass);
        // b's requests refused by a's engine: none served as b.
        let starved = routing_check(&model("b", 0, 30), 0.0, true);
        assert!(!starved.pass && starved.detail.contains("a routing error"));
        // An engine that answers any model: a's engine finished b's too.
        let swollen = routing_check(&model("a", 30, 30), 60.0, true);
        assert!(!swollen.pass && swollen.detail.contains("routed to them"));
        let short = routing_check(&model("b", 30, 30), 0.0, true);
        assert!(!short.pass);
    }
}
