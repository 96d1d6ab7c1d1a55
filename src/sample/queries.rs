//! Query sets: named server-side values with their PromQL, unit, how to
//! summarise them over a run, renamed-metric aliases, and a recipe for
//! deriving the same value from a raw `/metrics` scrape. The sets in
//! `queries/*.toml` are built in; plans choose sets and add their own. Every
//! PromQL expression is parsed (promql-parser) when the plan is resolved,
//! after Grafana's interval variables are replaced.
//!
//! Engine profiles (`vllm`, `sglang`, `tgi`, `llamacpp`, `triton`; see
//! [`super::engine`]) define the same query names, each from its engine's
//! own metrics: a plan swaps one profile for another without renaming
//! anything. vLLM's is the reference: every other profile's names are a
//! subset of its names.
//!
//! A recipe finds its series by name (`metric`, tried in order) and,
//! optionally, by label values (`labels`: every one must match). When none
//! of its names has a matching series, its `alternatives` (whole recipes,
//! tried in order) stand in, the way `aliases` do for PromQL:
//!
//! ```toml
//! scrape = { op = "sum", metric = ["vllm:num_requests_waiting_by_reason"], labels = { reason = "capacity" },
//!            alternatives = [{ op = "sum", metric = ["vllm:num_requests_waiting"] }] }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::stats::Aggregate;

/// The built-in sets, by name.
pub const BUILTIN_SETS: &[(&str, &str)] = &[
    ("vllm", include_str!("../../queries/vllm.toml")),
    ("dcgm", include_str!("../../queries/dcgm.toml")),
    ("node", include_str!("../../queries/node.toml")),
    ("router", include_str!("../../queries/router.toml")),
    ("infercheck", include_str!("../../queries/infercheck.toml")),
    ("sglang", include_str!("../../queries/sglang.toml")),
    ("tgi", include_str!("../../queries/tgi.toml")),
    ("llamacpp", include_str!("../../queries/llamacpp.toml")),
    ("triton", include_str!("../../queries/triton.toml")),
];

/// One named value.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub promql: String,
    /// Tried in order when `promql` returns nothing (renamed metrics).
    #[serde(default)]
    pub aliases: Vec<String>,
    pub unit: Unit,
    pub aggregate: Aggregate,
    /// How to derive the value from a raw scrape; `None`: Prometheus only.
    #[serde(default)]
    pub scrape: Option<Recipe>,
}

/// Units as written in query files. Values are stored normalised:
/// percent → ratio, MiB → bytes, milliseconds and microseconds → seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Ratio,
    Percent,
    Bytes,
    Mebibytes,
    Seconds,
    Milliseconds,
    Microseconds,
    PerSecond,
    Count,
    Cores,
    Watts,
    Celsius,
}

impl Unit {
    /// The value in the stored unit.
    pub fn normalise(self, value: f64) -> f64 {
        match self {
            Unit::Percent => value / 100.0,
            Unit::Mebibytes => value * 1_048_576.0,
            Unit::Milliseconds => value / 1e3,
            Unit::Microseconds => value / 1e6,
            _ => value,
        }
    }

    /// The stored unit's name (series and report).
    pub fn stored(self) -> &'static str {
        match self {
            Unit::Ratio | Unit::Percent => "ratio",
            Unit::Bytes | Unit::Mebibytes => "bytes",
            Unit::Seconds | Unit::Milliseconds | Unit::Microseconds => "seconds",
            Unit::PerSecond => "per_second",
            Unit::Count => "count",
            Unit::Cores => "cores",
            Unit::Watts => "watts",
            Unit::Celsius => "celsius",
        }
    }
}

/// Deriving a value from scraped families.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub op: ScrapeOp,
    /// Metric names tried in order (histograms by base name).
    pub metric: Vec<String>,
    /// The denominator of `ratio_of_rates`.
    #[serde(default)]
    pub over: Vec<String>,
    /// The quantile of `quantile`.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// Label values every series of `metric` must have (label → value);
    /// empty: every series. Never applied to `over`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Recipes tried in order when no name of `metric` has a series that
    /// matches `labels` (see the module documentation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Recipe>,
}

impl Recipe {
    /// Whether the value (or an alternative's) is a change since the
    /// previous scrape.
    pub fn needs_previous(&self) -> bool {
        self.op.needs_previous() || self.alternatives.iter().any(Recipe::needs_previous)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScrapeOp {
    /// Sum of every series (gauges, counters as they are). Every op reads
    /// only the series that match the recipe's `labels`.
    Sum,
    Max,
    Min,
    /// Per-second increase of the summed counter since the last scrape.
    Rate,
    /// rate(metric) / rate(over).
    RatioOfRates,
    /// The quantile of the histogram's increase since the last scrape.
    Quantile,
    /// rate(_sum) / rate(_count) of a histogram.
    HistogramMean,
}

impl ScrapeOp {
    /// Whether the value is a change since the previous scrape.
    pub fn needs_previous(self) -> bool {
        matches!(
            self,
            ScrapeOp::Rate | ScrapeOp::RatioOfRates | ScrapeOp::Quantile | ScrapeOp::HistogramMean
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryFile {
    #[serde(rename = "query", default)]
    queries: Vec<Query>,
}

/// Parses and checks a query file; `origin` names it in errors.
pub fn parse_set(text: &str, origin: &str) -> Result<Vec<Query>, String> {
    let file: QueryFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    for q in &file.queries {
        check(q).map_err(|e| format!("{origin}: query \"{}\": {e}", q.name))?;
    }
    Ok(file.queries)
}

/// A built-in set by name.
pub fn builtin(name: &str) -> Result<Vec<Query>, String> {
    let (_, text) = BUILTIN_SETS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| {
            let names: Vec<&str> = BUILTIN_SETS.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown query set \"{name}\" (built in: {})",
                names.join(", ")
            )
        })?;
    parse_set(text, &format!("queries/{name}.toml"))
}

/// Checks a query: a usable name, PromQL that parses (aliases too), and a
/// recipe with what its op needs.
pub fn check(q: &Query) -> Result<(), String> {
    let valid_name = !q.name.is_empty()
        && q.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err("names use letters, digits and _".into());
    }
    for expr in std::iter::once(&q.promql).chain(&q.aliases) {
        parse_promql(expr)?;
    }
    match &q.scrape {
        Some(r) => check_recipe(r),
        None => Ok(()),
    }
}

/// A recipe, and each of its alternatives, has what its op needs.
fn check_recipe(r: &Recipe) -> Result<(), String> {
    if r.metric.is_empty() {
        return Err("scrape.metric names no metric".into());
    }
    if r.op == ScrapeOp::RatioOfRates && r.over.is_empty() {
        return Err("ratio_of_rates needs scrape.over".into());
    }
    if r.op == ScrapeOp::Quantile && !r.quantile.is_some_and(|q| (0.0..=1.0).contains(&q)) {
        return Err("quantile needs scrape.quantile between 0 and 1".into());
    }
    r.alternatives.iter().try_for_each(check_recipe)
}

/// Grafana's interval variables, replaced before parsing and before a query
/// is sent (Prometheus does not know them).
pub fn expand(expr: &str, interval_s: f64) -> String {
    // Four scrape intervals: what Grafana's $__rate_interval resolves to
    // for a 1 s scrape interval and short ranges, and at least 4 s.
    let rate = format!("{}s", (4.0 * interval_s).ceil().max(4.0) as u64);
    let step = format!("{}s", interval_s.ceil().max(1.0) as u64);
    expr.replace("$__rate_interval", &rate)
        .replace("${__rate_interval}", &rate)
        .replace("$__interval", &step)
        .replace("${__interval}", &step)
        .replace("$__range", "5m")
}

/// Parses PromQL (after expansion); the parser's message on failure.
pub fn parse_promql(expr: &str) -> Result<(), String> {
    promql_parser::parser::parse(&expand(expr, 1.0))
        .map(|_| ())
        .map_err(|e| format!("invalid PromQL {expr:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sample::engine::{Engine, is_engine_set};
    use std::collections::BTreeSet;

    fn names(set: &str) -> BTreeSet<String> {
        let queries = builtin(set).unwrap();
        assert!(!queries.is_empty(), "{set}");
        let names: BTreeSet<String> = queries.iter().map(|q| q.name.clone()).collect();
        assert_eq!(names.len(), queries.len(), "{set}: a name twice");
        names
    }

    #[test]
    fn every_builtin_set_parses_and_names_are_unique() {
        // Engine profiles share names by design; every other name is unique
        // across the non-engine sets and every engine set.
        let mut taken = BTreeSet::new();
        for (set, _) in BUILTIN_SETS.iter().filter(|(s, _)| !is_engine_set(s)) {
            for name in names(set) {
                assert!(taken.insert(name.clone()), "{name} twice ({set})");
            }
        }
        let vllm = names(Engine::Vllm.query_set());
        for engine in Engine::ALL {
            let profile = names(engine.query_set());
            assert!(profile.is_disjoint(&taken), "{}", engine.name());
            let extra: Vec<_> = profile.difference(&vllm).collect();
            assert!(
                extra.is_empty(),
                "{} has names vllm lacks: {extra:?}",
                engine.name()
            );
        }
        assert!(vllm.contains("queue_depth") && taken.contains("gpu_util"));
        let engine_sets = BUILTIN_SETS.iter().filter(|(s, _)| is_engine_set(s));
        assert_eq!(engine_sets.count(), Engine::ALL.len());
    }

    /// Every metric a recipe reads, with its label values, as `name` and
    /// `key="value"` strings.
    fn recipe_terms(r: &Recipe, out: &mut Vec<String>) {
        out.extend(r.metric.iter().chain(&r.over).cloned());
        out.extend(r.labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
        for alternative in &r.alternatives {
            recipe_terms(alternative, out);
        }
    }

    #[test]
    fn scrape_recipes_read_the_metrics_their_promql_queries() {
        for (set, _) in BUILTIN_SETS {
            for q in builtin(set).unwrap() {
                let Some(recipe) = &q.scrape else { continue };
                let promql = [q.promql.as_str()]
                    .into_iter()
                    .chain(q.aliases.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join("\n");
                let mut terms = Vec::new();
                recipe_terms(recipe, &mut terms);
                for term in terms {
                    assert!(
                        promql.contains(&term),
                        "{set}/{}: {term} not in PromQL",
                        q.name
                    );
                }
            }
        }
    }

    #[test]
    fn recipes_with_labels_and_alternatives_parse_and_are_checked() {
        let text = "[[query]]\nname = \"q\"\npromql = \"sum(w)\"\nunit = \"count\"\naggregate = \"max\"\n\
                    scrape = { op = \"sum\", metric = [\"w\"], labels = { reason = \"capacity\" }, \
                    alternatives = [{ op = \"sum\", metric = [\"v\"] }] }\n";
        let q = &parse_set(text, "p").unwrap()[0];
        let r = q.scrape.as_ref().unwrap();
        assert_eq!(r.labels["reason"], "capacity");
        assert_eq!(r.alternatives[0].metric, ["v"]);
        assert!(r.alternatives[0].labels.is_empty());
        let bad = text.replace("metric = [\"v\"]", "metric = []");
        assert!(
            parse_set(&bad, "p")
                .unwrap_err()
                .contains("names no metric")
        );
        // Empty labels and alternatives are left out when serialised.
        let json = serde_json::to_string(&r.alternatives[0]).unwrap();
        assert!(
            !json.contains("labels") && !json.contains("alternatives"),
            "{json}"
        );
    }

    #[test]
    fn bad_promql_and_recipes_are_refused_with_the_query_named() {
        let bad = "[[query]]\nname = \"x\"\npromql = \"sum(rate(foo[1m])\"\nunit = \"count\"\naggregate = \"max\"\n";
        let err = parse_set(bad, "plan.toml").unwrap_err();
        assert!(
            err.contains("query \"x\"") && err.contains("invalid PromQL"),
            "{err}"
        );
        let no_over = "[[query]]\nname = \"y\"\npromql = \"up\"\nunit = \"ratio\"\naggregate = \"avg\"\n\
                       scrape = { op = \"ratio_of_rates\", metric = [\"a\"] }\n";
        assert!(parse_set(no_over, "p").unwrap_err().contains("over"));
        assert!(builtin("nope").unwrap_err().contains("built in: vllm"));
    }

    #[test]
    fn grafana_variables_are_expanded() {
        assert_eq!(expand("rate(x[$__rate_interval])", 1.0), "rate(x[4s])");
        assert_eq!(expand("rate(x[${__interval}])", 15.0), "rate(x[15s])");
        assert!(parse_promql("rate(x[$__rate_interval])").is_ok());
    }

    #[test]
    fn units_normalise_percent_and_mebibytes() {
        assert_eq!(Unit::Percent.normalise(73.0), 0.73);
        assert_eq!(Unit::Mebibytes.normalise(2.0), 2.0 * 1_048_576.0);
        assert_eq!(Unit::Percent.stored(), "ratio");
        assert_eq!(Unit::Microseconds.normalise(1500.0), 0.0015);
        assert_eq!(Unit::Milliseconds.normalise(250.0), 0.25);
        assert_eq!(Unit::Microseconds.stored(), "seconds");
    }
}
