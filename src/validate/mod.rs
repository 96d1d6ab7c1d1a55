//! The observability validator (`infercheck validate`, and the same checks
//! at the end of a run that has a Prometheus): does every query of the
//! chosen sets and every panel of the given dashboards return data over
//! the window — and when not, which metric names Prometheus lacks and
//! which exist with other labels; are the rules healthy, and which read
//! metrics nothing exports; how fast each dashboard's queries answer when
//! issued as Grafana would; and, for a run with fault drills, did each
//! expected alert fire within its bound and nothing else fire.
//!
//! A Prometheus that is down or refuses is measured (an error in the
//! result), never a crash.

pub mod dashboard;
pub mod drills;
mod prom;
pub mod promql;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;

use crate::report::{
    DashboardCheck, LabelMismatch, QueryCheck, QueryOutcome, ResponseTimes, RuleProblem,
    RulesCheck, Validation,
};
use crate::sample::queries::{Query, expand};
pub use prom::Prom;

/// The scrape interval assumed when Prometheus does not say (its default).
const DEFAULT_SCRAPE_S: f64 = 15.0;

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct Request {
    pub prometheus: String,
    /// How Prometheus is reached (credential, TLS).
    pub access: crate::tls::Access,
    /// Unix seconds.
    pub window: (f64, f64),
    /// (set name, its queries).
    pub query_sets: Vec<(String, Vec<Query>)>,
    /// Dashboard files or folders of them.
    pub dashboards: Vec<PathBuf>,
    pub rules: bool,
}

/// Every check of `request`; `pass` when every query and panel returned
/// data, no rule is unhealthy and no rule evaluation failed.
pub async fn validate(request: &Request) -> Validation {
    let mut v = Validation {
        prometheus: request.prometheus.clone(),
        window: request.window,
        ..Validation::default()
    };
    let prom = match Prom::new(&request.prometheus, &request.access) {
        Ok(p) => p,
        Err(e) => return failed(v, e),
    };
    let names = match prom.names(request.window).await {
        Ok(n) => n,
        Err(e) => return failed(v, format!("Prometheus did not answer: {e}")),
    };
    let scrape_s = prom.scrape_interval_s().await.unwrap_or(DEFAULT_SCRAPE_S);
    let groups = if request.rules {
        match prom.rule_groups().await {
            Ok(g) => Some(g),
            Err(e) => {
                v.errors.push(e);
                None
            }
        }
    } else {
        None
    };
    let known = Known::new(&names, groups.as_deref().unwrap_or(&[]));
    let checker = Checker {
        prom: &prom,
        known: &known,
        window: request.window,
        scrape_s,
    };
    for (set, queries) in &request.query_sets {
        for q in queries {
            v.queries.push(checker.query_set_entry(set, q).await);
        }
    }
    v.query_response = response_times(&v.queries, None);
    for path in &request.dashboards {
        match dashboard::load_all(path, scrape_s) {
            Ok(ds) => {
                for d in &ds {
                    v.dashboards.push(checker.dashboard(d).await);
                }
            }
            Err(e) => v.errors.push(e),
        }
    }
    if let Some(groups) = &groups {
        v.rules = Some(checker.rules(groups).await);
    }
    v.pass = passes(&v);
    v
}

fn failed(mut v: Validation, error: String) -> Validation {
    v.errors.push(error);
    v.pass = false;
    v
}

/// Every query has data, every rule is healthy and evaluated without a
/// failure, every drill's alerts fired in time and none unexpected, and
/// nothing was left unchecked.
pub fn passes(v: &Validation) -> bool {
    let all_data = v
        .queries
        .iter()
        .chain(v.dashboards.iter().flat_map(|d| &d.queries))
        .all(|q| q.outcome.has_data());
    let rules_ok = v
        .rules
        .as_ref()
        .is_none_or(|r| r.unhealthy.is_empty() && r.evaluation_failures.is_none_or(|f| f <= 0.0));
    let drills_ok = v
        .drills
        .as_ref()
        .is_none_or(|d| d.expected_fired == d.expected && d.unexpected.is_empty());
    v.errors.is_empty() && all_data && rules_ok && drills_ok
}

/// The metric names that exist: in Prometheus over the window, or
/// recorded by one of its rules.
struct Known {
    names: BTreeSet<String>,
}

impl Known {
    fn new(names: &BTreeSet<String>, groups: &[Value]) -> Known {
        let mut names = names.clone();
        for rule in groups.iter().flat_map(rules_of) {
            if rule.get("type").and_then(Value::as_str) == Some("recording") {
                names.insert(str_of(rule, "name"));
            }
        }
        // Alerting rules' series.
        names.insert("ALERTS".into());
        names.insert("ALERTS_FOR_STATE".into());
        Known { names }
    }

    fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

fn rules_of(group: &Value) -> impl Iterator<Item = &Value> {
    group
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

struct Checker<'a> {
    prom: &'a Prom,
    known: &'a Known,
    window: (f64, f64),
    scrape_s: f64,
}

impl Checker<'_> {
    fn window_s(&self) -> f64 {
        (self.window.1 - self.window.0).max(self.scrape_s)
    }

    /// A query set's query: the first of its forms with data, or why the
    /// first form has none.
    async fn query_set_entry(&self, set: &str, q: &Query) -> QueryCheck {
        let step = self.scrape_s.max(self.window_s() / 1000.0);
        let mut first = None;
        for expr in std::iter::once(&q.promql).chain(&q.aliases) {
            let expr = expand(expr, self.scrape_s);
            let timed = self.prom.range(&expr, self.window, step, self.window).await;
            let check = self.judge(set, &q.name, &expr, timed).await;
            if check.outcome.has_data() {
                return check;
            }
            first.get_or_insert(check);
        }
        first.expect("a query has a promql form")
    }

    /// Every panel query of one dashboard, issued at once over its default
    /// range at its step (one Grafana refresh), then judged on the window.
    async fn dashboard(&self, d: &dashboard::Dashboard) -> DashboardCheck {
        let end = self.window.1;
        let range = (end - d.range_s, end);
        let targets: Vec<(&dashboard::Panel, &dashboard::Target)> = d
            .panels
            .iter()
            .flat_map(|p| p.targets.iter().map(move |t| (p, t)))
            .collect();
        let began = Instant::now();
        let answers = join_all(
            targets
                .iter()
                .map(|(p, t)| self.prom.range(&t.expr, range, p.step_s, self.window)),
        )
        .await;
        let refresh = began.elapsed();
        let mut queries = Vec::new();
        for ((panel, target), timed) in targets.iter().zip(answers) {
            let origin = format!("{} / {}", d.title, panel.title);
            let name = format!("{} ({})", panel.title, target.ref_id);
            queries.push(self.judge(&origin, &name, &target.expr, timed).await);
        }
        DashboardCheck {
            file: d.file.clone(),
            title: d.title.clone(),
            uid: d.uid.clone(),
            panels: d.panels.len(),
            response: response_times(&queries, (!queries.is_empty()).then_some(refresh)),
            queries,
            range_s: d.range_s,
        }
    }

    async fn judge(&self, origin: &str, name: &str, expr: &str, timed: prom::Timed) -> QueryCheck {
        let outcome = match timed.series {
            Ok(n) if n > 0 => QueryOutcome::Data { series: n },
            Ok(_) => self.why_no_data(expr).await,
            Err(message) => QueryOutcome::Error { message },
        };
        QueryCheck {
            origin: origin.to_owned(),
            name: name.to_owned(),
            expr: expr.to_owned(),
            outcome,
            latency_ms: timed.latency.as_secs_f64() * 1000.0,
        }
    }

    /// The names Prometheus lacks, and the selectors of names it has that
    /// match none of their series (with the values their labels take).
    async fn why_no_data(&self, expr: &str) -> QueryOutcome {
        let selectors = match promql::selectors(expr) {
            Ok(s) => s,
            Err(message) => return QueryOutcome::Error { message },
        };
        let mut absent_metrics = Vec::new();
        let mut other_labels = Vec::new();
        let (at, range) = (self.window.1, self.window_s());
        for s in selectors {
            let Some(name) = &s.name else { continue };
            if !self.known.has(name) {
                absent_metrics.push(name.clone());
                continue;
            }
            if s.matchers.is_empty() || self.prom.matches(&s.promql(), at, range).await {
                continue;
            }
            let mut labels = Vec::new();
            for (label, _, _) in &s.matchers {
                let values = self.prom.label_values(name, label, at, range).await;
                labels.push((label.clone(), values));
            }
            other_labels.push(LabelMismatch {
                selector: s.promql(),
                labels,
            });
        }
        QueryOutcome::NoData {
            absent_metrics,
            other_labels,
        }
    }

    /// Health, evaluation failures and blind rules.
    async fn rules(&self, groups: &[Value]) -> RulesCheck {
        let mut check = RulesCheck {
            groups: groups.len(),
            ..RulesCheck::default()
        };
        for group in groups {
            let group_name = str_of(group, "name");
            for rule in rules_of(group) {
                check.rules += 1;
                let problem = |detail: String| RuleProblem {
                    group: group_name.clone(),
                    name: str_of(rule, "name"),
                    detail,
                };
                let health = str_of(rule, "health");
                let last_error = str_of(rule, "lastError");
                if (health != "ok" && health != "unknown") || !last_error.is_empty() {
                    check
                        .unhealthy
                        .push(problem(format!("health {health}: {last_error}")));
                }
                let query = str_of(rule, "query");
                if let Ok(missing) = promql::missing_names(&query, &|n| self.known.has(n))
                    && !missing.is_empty()
                {
                    check
                        .blind
                        .push(problem(format!("no target exports {}", missing.join(", "))));
                }
            }
        }
        let failures = format!(
            "sum(increase(prometheus_rule_evaluation_failures_total[{}s]))",
            self.window_s().ceil() as u64
        );
        check.evaluation_failures = self.prom.scalar(&failures, self.window.1).await;
        check
    }
}

/// p50, p95 and max of the queries' latencies, and one refresh's wall time.
fn response_times(queries: &[QueryCheck], refresh: Option<Duration>) -> ResponseTimes {
    let mut ms: Vec<f64> = queries.iter().map(|q| q.latency_ms).collect();
    ms.sort_by(f64::total_cmp);
    let rank = |q: f64| {
        (!ms.is_empty()).then(|| ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1])
    };
    ResponseTimes {
        queries: ms.len(),
        p50_ms: rank(0.5),
        p95_ms: rank(0.95),
        max_ms: ms.last().copied(),
        refresh_ms: refresh.map(|d| d.as_secs_f64() * 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(latency_ms: f64, data: bool) -> QueryCheck {
        QueryCheck {
            origin: "o".into(),
            name: "n".into(),
            expr: "up".into(),
            outcome: if data {
                QueryOutcome::Data { series: 1 }
            } else {
                QueryOutcome::NoData {
                    absent_metrics: vec!["up".into()],
                    other_labels: Vec::new(),
                }
            },
            latency_ms,
        }
    }

    #[test]
    fn response_times_are_nearest_rank_percentiles() {
        let qs: Vec<QueryCheck> = (1..=20).map(|i| check(f64::from(i), true)).collect();
        let r = response_times(&qs, Some(Duration::from_millis(25)));
        assert_eq!(
            (r.p50_ms, r.p95_ms, r.max_ms),
            (Some(10.0), Some(19.0), Some(20.0))
        );
        assert_eq!(r.refresh_ms, Some(25.0));
        assert_eq!(response_times(&[], None).p95_ms, None);
    }

    #[test]
    fn one_query_without_data_fails_the_validation() {
        let mut v = Validation {
            queries: vec![check(1.0, true)],
            ..Validation::default()
        };
        assert!(passes(&v));
        v.queries.push(check(1.0, false));
        assert!(!passes(&v));
    }

    #[test]
    fn recorded_names_count_as_known() {
        let groups = vec![serde_json::json!({"name": "g", "rules": [
            {"type": "recording", "name": "llm:running", "query": "sum(vllm:num_requests_running)"}
        ]})];
        let known = Known::new(&BTreeSet::new(), &groups);
        assert!(known.has("llm:running") && !known.has("vllm:num_requests_running"));
    }
}
