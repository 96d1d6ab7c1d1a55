//! The validator's lines and tables: "Prometheus Metrics", "Dashboard
//! Response", "Rule Health" and "Alert Rules" as facts with their figures,
//! then the queries that returned nothing (and why), the dashboards, the
//! fault drills with each alert's delay, and the alerts nobody expected.

use super::format::{NONE, count, duration, opt_ms};
use super::validation_model::{
    DashboardCheck, DrillsCheck, QueryCheck, QueryOutcome, RulesCheck, Validation,
};
use super::view::{Fact, Table, fact};

/// The summary lines, in examples/000's words.
pub(crate) fn facts(v: &Validation) -> Vec<Fact> {
    let mut facts = Vec::new();
    if !v.queries.is_empty() {
        facts.push(queries_fact(v));
    }
    facts.extend(v.dashboards.iter().map(dashboard_fact));
    facts.extend(v.rules.as_ref().map(rules_fact));
    facts.extend(v.drills.as_ref().map(drills_fact));
    if !v.errors.is_empty() {
        let mut f = fact("Not checked", format!("{} problems", v.errors.len()));
        f.details = v.errors.clone();
        facts.push(f);
    }
    facts.push(fact(
        "Validation",
        if v.pass { "PASS" } else { "FAIL" }.to_owned(),
    ));
    facts
}

fn with_data(queries: &[QueryCheck]) -> usize {
    queries.iter().filter(|q| q.outcome.has_data()).count()
}

fn queries_fact(v: &Validation) -> Fact {
    let r = &v.query_response;
    fact(
        "Prometheus Metrics",
        format!(
            "{}/{} queries returned data; response p95 {}, max {}",
            with_data(&v.queries),
            v.queries.len(),
            opt_ms(r.p95_ms),
            opt_ms(r.max_ms)
        ),
    )
}

fn dashboard_fact(d: &DashboardCheck) -> Fact {
    fact(
        &format!("Dashboard Response ({})", d.title),
        format!(
            "{}/{} panel queries returned data; p95 {}, max {}, one refresh {} (last {} at Grafana's steps)",
            with_data(&d.queries),
            d.queries.len(),
            opt_ms(d.response.p95_ms),
            opt_ms(d.response.max_ms),
            opt_ms(d.response.refresh_ms),
            duration(d.range_s)
        ),
    )
}

fn rules_fact(r: &RulesCheck) -> Fact {
    let failures = r
        .evaluation_failures
        .map_or_else(|| "not measured".to_owned(), |f| format!("+{f:.0}"));
    let mut f = fact(
        "Rule Health",
        format!(
            "{} rules in {} groups: {} unhealthy, evaluation failures {failures}, {} blind (read metrics no target exports)",
            count(r.rules as u64),
            r.groups,
            r.unhealthy.len(),
            r.blind.len()
        ),
    );
    f.details = r
        .unhealthy
        .iter()
        .map(|p| format!("{} ({}): {}", p.name, p.group, p.detail))
        .collect();
    f
}

fn drills_fact(d: &DrillsCheck) -> Fact {
    let delays: Vec<String> = d
        .drills
        .iter()
        .flat_map(|drill| &drill.alerts)
        .map(|a| match a.delay_s {
            Some(s) => format!("{} {}", a.name, duration(s)),
            None => format!("{} never", a.name),
        })
        .collect();
    fact(
        "Alert Rules",
        format!(
            "{}/{} expected alerts fired within bound ({}), {} false positives",
            d.expected_fired,
            d.expected,
            if delays.is_empty() {
                NONE.to_owned()
            } else {
                delays.join(", ")
            },
            d.unexpected.len()
        ),
    )
}

/// The terminal's one line: the verdict, queries and panels with data,
/// the drills' alerts.
pub(crate) fn terminal_line(v: &Validation) -> String {
    let all: Vec<&QueryCheck> = v
        .queries
        .iter()
        .chain(v.dashboards.iter().flat_map(|d| &d.queries))
        .collect();
    let data = all.iter().filter(|q| q.outcome.has_data()).count();
    let mut text = format!(
        "{}: {data}/{} queries and panels returned data",
        if v.pass { "PASS" } else { "FAIL" },
        all.len()
    );
    if let Some(r) = &v.rules {
        text.push_str(&format!(
            ", {} of {} rules unhealthy",
            r.unhealthy.len(),
            r.rules
        ));
    }
    if let Some(d) = &v.drills {
        text.push_str(&format!(
            ", {}/{} expected alerts in bound, {} unexpected",
            d.expected_fired,
            d.expected,
            d.unexpected.len()
        ));
    }
    if !v.errors.is_empty() {
        text.push_str(&format!(", {} not checked", v.errors.len()));
    }
    text
}

/// Queries and panels that returned nothing, with the reason.
pub(crate) fn no_data(v: &Validation) -> Option<Table> {
    let mut table = Table::new(&["Where", "Query", "Why"]);
    let all = v
        .queries
        .iter()
        .chain(v.dashboards.iter().flat_map(|d| &d.queries));
    table.rows = all
        .filter(|q| !q.outcome.has_data())
        .map(|q| vec![q.origin.clone(), format!("`{}`", q.expr), why(&q.outcome)])
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

fn why(outcome: &QueryOutcome) -> String {
    match outcome {
        QueryOutcome::Data { .. } => String::new(),
        QueryOutcome::Error { message } => format!("error: {message}"),
        QueryOutcome::NoData {
            absent_metrics,
            other_labels,
        } => {
            let mut parts = Vec::new();
            if !absent_metrics.is_empty() {
                parts.push(format!("not in Prometheus: {}", absent_metrics.join(", ")));
            }
            for m in other_labels {
                let labels: Vec<String> = m
                    .labels
                    .iter()
                    .map(|(l, vals)| format!("{l} ∈ {{{}}}", vals.join(", ")))
                    .collect();
                parts.push(format!(
                    "{} matches none; the metric has {}",
                    m.selector,
                    labels.join("; ")
                ));
            }
            if parts.is_empty() {
                "the metrics exist but the expression returned no sample in the window".to_owned()
            } else {
                parts.join("; ")
            }
        }
    }
}

/// One row per dashboard.
pub(crate) fn dashboards(v: &Validation) -> Option<Table> {
    if v.dashboards.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        "Dashboard",
        "Panels",
        "With Data",
        "P50",
        "P95",
        "Max",
        "Refresh",
        "Status",
    ]);
    table.rows = v
        .dashboards
        .iter()
        .map(|d| {
            let ok = with_data(&d.queries) == d.queries.len();
            vec![
                format!("{} (`{}`)", d.title, d.file),
                count(d.panels as u64),
                format!("{}/{}", with_data(&d.queries), d.queries.len()),
                opt_ms(d.response.p50_ms),
                opt_ms(d.response.p95_ms),
                opt_ms(d.response.max_ms),
                opt_ms(d.response.refresh_ms),
                if ok { "✅ PASS" } else { "❌ FAIL" }.to_owned(),
            ]
        })
        .collect();
    Some(table)
}

/// One row per expected alert of every drill.
pub(crate) fn drills(v: &Validation) -> Option<Table> {
    let d = v.drills.as_ref()?;
    let mut table = Table::new(&[
        "Phase",
        "Fault",
        "Alert",
        "Fired After",
        "Bound",
        "Resolved After",
        "Status",
    ]);
    for drill in &d.drills {
        for a in &drill.alerts {
            table.rows.push(vec![
                drill.phase.clone(),
                drill.fault.clone(),
                a.name.clone(),
                a.delay_s.map_or_else(|| "never".to_owned(), duration),
                a.bound_s.map_or_else(|| NONE.to_owned(), duration),
                a.resolved_after_s
                    .map_or_else(|| "still firing".to_owned(), duration),
                if a.pass { "✅ PASS" } else { "❌ FAIL" }.to_owned(),
            ]);
        }
    }
    (!table.rows.is_empty()).then_some(table)
}

/// Alerts that fired where no drill expected them.
pub(crate) fn unexpected(v: &Validation) -> Option<Table> {
    let d = v.drills.as_ref()?;
    let mut table = Table::new(&["Alert", "Began In Phase", "At", "Labels"]);
    table.rows = d
        .unexpected
        .iter()
        .map(|a| {
            let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            vec![
                a.name.clone(),
                a.phase.clone(),
                duration(a.at_s),
                labels.join(", "),
            ]
        })
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

/// Every unhealthy or blind rule.
pub(crate) fn rule_problems(v: &Validation) -> Option<Table> {
    let r = v.rules.as_ref()?;
    let mut table = Table::new(&["Rule", "Group", "Problem"]);
    table.rows = r
        .unhealthy
        .iter()
        .map(|p| (p, "unhealthy"))
        .chain(r.blind.iter().map(|p| (p, "blind")))
        .map(|(p, kind)| {
            vec![
                p.name.clone(),
                p.group.clone(),
                format!("{kind}: {}", p.detail),
            ]
        })
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DrillResult, ExpectedAlert, ResponseTimes, UnexpectedAlert};

    fn query(origin: &str, ms: f64, outcome: QueryOutcome) -> QueryCheck {
        QueryCheck {
            origin: origin.into(),
            name: "q".into(),
            expr: "up".into(),
            outcome,
            latency_ms: ms,
        }
    }

    fn validation() -> Validation {
        let no_data = QueryOutcome::NoData {
            absent_metrics: vec!["vllm:gone".into()],
            other_labels: Vec::new(),
        };
        Validation {
            queries: vec![
                query("run", 4.0, QueryOutcome::Data { series: 1 }),
                query("run", 9.0, no_data),
            ],
            query_response: ResponseTimes {
                queries: 2,
                p50_ms: Some(4.0),
                p95_ms: Some(9.0),
                max_ms: Some(9.0),
                refresh_ms: None,
            },
            dashboards: vec![DashboardCheck {
                file: "d.json".into(),
                title: "LLM".into(),
                uid: "u".into(),
                panels: 1,
                queries: vec![query("LLM / Rate", 12.0, QueryOutcome::Data { series: 2 })],
                range_s: 3600.0,
                response: ResponseTimes {
                    queries: 1,
                    p50_ms: Some(12.0),
                    p95_ms: Some(12.0),
                    max_ms: Some(12.0),
                    refresh_ms: Some(13.0),
                },
            }],
            drills: Some(DrillsCheck {
                drills: vec![DrillResult {
                    phase: "flood".into(),
                    fault: "queue_flood".into(),
                    start_s: 10.0,
                    end_s: 20.0,
                    injection_error: None,
                    alerts: vec![ExpectedAlert {
                        name: "LLMQueueBacklog".into(),
                        delay_s: Some(4.5),
                        bound_s: Some(6.0),
                        resolved_after_s: None,
                        pass: true,
                        detail: String::new(),
                    }],
                }],
                unexpected: vec![UnexpectedAlert {
                    name: "Other".into(),
                    phase: "clean".into(),
                    at_s: 3.0,
                    labels: vec![("job".into(), "vllm".into())],
                }],
                expected_fired: 1,
                expected: 1,
            }),
            ..Validation::default()
        }
    }

    #[test]
    fn the_lines_cite_their_figures() {
        let v = validation();
        let facts = facts(&v);
        let value = |label: &str| &facts.iter().find(|f| f.label == label).unwrap().value;
        assert_eq!(
            value("Prometheus Metrics"),
            "1/2 queries returned data; response p95 9.0ms, max 9.0ms"
        );
        assert!(
            value("Dashboard Response (LLM)")
                .starts_with("1/1 panel queries returned data; p95 12.0ms")
        );
        assert_eq!(
            value("Alert Rules"),
            "1/1 expected alerts fired within bound (LLMQueueBacklog 4.5s), 1 false positives"
        );
        assert_eq!(value("Validation"), "FAIL");
        assert_eq!(
            terminal_line(&v),
            "FAIL: 2/3 queries and panels returned data, 1/1 expected alerts in bound, 1 unexpected"
        );
    }

    #[test]
    fn the_tables_name_what_failed() {
        let v = validation();
        let missing = no_data(&v).unwrap();
        assert_eq!(missing.rows.len(), 1);
        assert_eq!(missing.rows[0][2], "not in Prometheus: vllm:gone");
        let drills = drills(&v).unwrap();
        assert_eq!(drills.rows[0][3..6], ["4.5s", "6.0s", "still firing"]);
        assert_eq!(unexpected(&v).unwrap().rows[0][3], "job=vllm");
        assert!(rule_problems(&v).is_none());
    }
}
