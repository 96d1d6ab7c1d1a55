//! dashboards/: the Grafana dashboards infercheck ships, checked statically
//! (no Grafana, no Prometheus, no network). Every `dashboards/*.json`
//! validates against the Grafana Foundation SDK's dashboard JSON schema
//! (../shared/fixtures/grafana, read in place) and follows the folder's
//! conventions: a `datasource` variable that every panel, target,
//! annotation and query variable goes through; `[$__rate_interval]` in
//! every `rate`/`irate`/`increase`; a unit and a description on every
//! panel; unique `infercheck-` uids and panel ids, grid positions, a time
//! range, a refresh and the `infercheck` tag; multi-value variables only
//! behind `=~`; and every expression parses with promql-parser once
//! Grafana's variables are substituted. Each checker returns its findings,
//! and a negative test per checker proves it finds a broken dashboard.
//! Whether each query returns data against a live stack is checked where a
//! Prometheus runs, not here.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

/// The Grafana Foundation SDK's dashboard schema (draft-07;
/// fixtures/SOURCES.md).
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/grafana/dashboard.jsonschema.json"
);

/// Real exported dashboards, read in place to pin the schema's quirks.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/grafana");

/// What every panel, target, annotation and query variable reads from.
fn datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

/// Functions over a raw counter whose range must be `$__rate_interval`.
const RANGE_FUNCTIONS: [&str; 3] = ["rate", "irate", "increase"];

/// A per-dashboard check: its findings, empty when the dashboard is clean.
type Checker = fn(&Value) -> Vec<String>;

/// One dashboard file: its name (for messages) and its JSON.
struct Dashboard {
    file: String,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no .json in {}", dir.display());
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            Dashboard { file, json }
        })
        .collect()
}

/// Runs `check` on every shipped dashboard and fails with every finding,
/// each prefixed by its file.
fn assert_clean(check: Checker) {
    let findings: Vec<String> = dashboards()
        .iter()
        .flat_map(|d| {
            check(&d.json)
                .into_iter()
                .map(|f| format!("{}: {f}", d.file))
        })
        .collect();
    assert!(findings.is_empty(), "\n{}", findings.join("\n"));
}

// ---------------------------------------------------------------------------
// Reading a dashboard

/// Every panel, rows included, with the panels of collapsed rows.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in array(&dashboard["panels"]) {
        out.push(panel);
        out.extend(array(&panel["panels"]));
    }
    out
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

fn is_row(panel: &Value) -> bool {
    panel["type"] == "row"
}

/// How messages name a panel.
fn name(panel: &Value) -> String {
    match panel["title"].as_str() {
        Some(title) => format!("panel {title:?}"),
        None => format!("panel id {}", panel["id"]),
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn variables(dashboard: &Value) -> &[Value] {
    array(&dashboard["templating"]["list"])
}

fn annotations(dashboard: &Value) -> &[Value] {
    array(&dashboard["annotations"]["list"])
}

/// One PromQL expression and where it is.
struct Query {
    place: String,
    expr: String,
}

/// Every expression: panel targets, annotations, query variables (the
/// selector inside `label_values(...)`, the expression of `query_result`).
fn queries(dashboard: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        for target in array(&panel["targets"]) {
            out.push(Query {
                place: format!("{} target {}", name(panel), text(&target["refId"])),
                expr: text(&target["expr"]).to_string(),
            });
        }
    }
    for annotation in annotations(dashboard) {
        if let Some(expr) = annotation["expr"].as_str() {
            out.push(Query {
                place: format!("annotation {:?}", text(&annotation["name"])),
                expr: expr.to_string(),
            });
        }
    }
    for variable in variables(dashboard).iter().filter(|v| v["type"] == "query") {
        if let Some(expr) = variable_expr(variable) {
            out.push(Query {
                place: format!("variable {:?}", text(&variable["name"])),
                expr,
            });
        }
    }
    out
}

/// The PromQL inside a query variable's query (a string, or Grafana's
/// `{"query": ...}` object); `None` for `label_values(label)` and the like.
fn variable_expr(variable: &Value) -> Option<String> {
    let query = &variable["query"];
    let query = query.as_str().or(query["query"].as_str())?.trim();
    if let Some(inner) = call_argument(query, "label_values") {
        return inner
            .rsplit_once(',')
            .map(|(selector, _)| selector.to_string());
    }
    call_argument(query, "query_result").map(str::to_string)
}

/// `f(ARG)` → `ARG` when `text` is a call of `function`.
fn call_argument<'a>(text: &'a str, function: &str) -> Option<&'a str> {
    text.strip_prefix(function)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

// ---------------------------------------------------------------------------
// Grafana's variables, substituted as Prometheus would receive them

/// The PromQL Prometheus receives from Grafana: interval variables become
/// a duration (`$__interval_ms` and the like a number), every dashboard
/// variable the regex its All value is (`.*`). `$1`-style capture
/// references are left alone; any other variable is an error.
fn substitute(expr: &str, known: &BTreeSet<String>) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let (var, len) = variable_at(&rest[at..]);
        let whole = &rest[at..at + len];
        out.push_str(&replacement(var, whole, known)?);
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    Ok(out)
}

/// At a `$`: the variable's name (`${name:format}` → `name`) and the
/// length of the reference.
fn variable_at(text: &str) -> (&str, usize) {
    if let Some(braced) = text.strip_prefix("${")
        && let Some(end) = braced.find('}')
    {
        let inner = &braced[..end];
        let name = inner.split_once(':').map_or(inner, |(n, _)| n);
        return (name, end + 3);
    }
    let name_len = text[1..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len() - 1);
    (&text[1..1 + name_len], 1 + name_len)
}

fn replacement(var: &str, whole: &str, known: &BTreeSet<String>) -> Result<String, String> {
    let value = match var {
        "__rate_interval" | "__interval" | "__range" => "1m",
        "__interval_ms" | "__range_ms" => "60000",
        "__range_s" => "60",
        _ if var.is_empty() || var.bytes().all(|b| b.is_ascii_digit()) => whole,
        _ if known.contains(var) => ".*",
        _ => return Err(format!("unknown variable {whole}")),
    };
    Ok(value.to_string())
}

fn variable_names(dashboard: &Value) -> BTreeSet<String> {
    variables(dashboard)
        .iter()
        .map(|v| text(&v["name"]).to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Checkers: each returns its findings, empty when the dashboard is clean

/// A `datasource` variable of type datasource over Prometheus, and every
/// panel, target, annotation and query variable reading from it; no other
/// datasource reference anywhere (no hard-coded uid or name).
fn datasource_findings(dashboard: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let variable = variables(dashboard)
        .iter()
        .find(|v| v["name"] == "datasource");
    match variable {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        Some(v) => findings.push(format!(
            "variable datasource is type {} query {}, expected datasource / prometheus",
            v["type"], v["query"]
        )),
        None => findings.push("no `datasource` template variable".into()),
    }
    let mut expect = |owner: String, value: &Value| {
        if *value != datasource() {
            findings.push(format!(
                "{owner}: datasource {value}, expected {}",
                datasource()
            ));
        }
    };
    for panel in panels(dashboard).into_iter().filter(|p| !is_row(p)) {
        expect(name(panel), &panel["datasource"]);
        for target in array(&panel["targets"]) {
            let owner = format!("{} target {}", name(panel), text(&target["refId"]));
            expect(owner, &target["datasource"]);
        }
    }
    for annotation in annotations(dashboard) {
        expect(
            format!("annotation {:?}", text(&annotation["name"])),
            &annotation["datasource"],
        );
    }
    for variable in variables(dashboard).iter().filter(|v| v["type"] == "query") {
        expect(
            format!("variable {:?}", text(&variable["name"])),
            &variable["datasource"],
        );
    }
    every_datasource(dashboard, "", &mut findings);
    findings
}

/// Any `datasource` member anywhere (rows, nested options) that is not the
/// variable's, by JSON path.
fn every_datasource(value: &Value, path: &str, findings: &mut Vec<String>) {
    match value {
        Value::Object(members) => {
            for (key, member) in members {
                let here = format!("{path}/{key}");
                if key == "datasource" && *member != datasource() {
                    findings.push(format!("{here}: hard-coded datasource {member}"));
                }
                every_datasource(member, &here, findings);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                every_datasource(item, &format!("{path}/{i}"), findings);
            }
        }
        _ => {}
    }
}

/// Every `rate(`, `irate(` and `increase(` ranges over `$__rate_interval`.
fn rate_interval_findings(dashboard: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    for query in queries(dashboard) {
        for function in RANGE_FUNCTIONS {
            for argument in call_arguments(&query.expr, function) {
                if !argument.trim_end().ends_with("[$__rate_interval]") {
                    findings.push(format!(
                        "{}: {function}({argument}) does not range over [$__rate_interval]",
                        query.place
                    ));
                }
            }
        }
    }
    findings
}

/// The argument text of every call of `function` in `expr` (not of a
/// longer name ending in it: `irate` is no `rate`).
fn call_arguments<'a>(expr: &'a str, function: &str) -> Vec<&'a str> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    for (at, _) in expr.match_indices(function) {
        let before = expr[..at].chars().next_back();
        let after = expr[at + function.len()..].trim_start();
        if before.is_some_and(is_name) || !after.starts_with('(') {
            continue;
        }
        let open = expr.len() - after.len();
        if let Some(close) = matching_paren(expr, open) {
            out.push(&expr[open + 1..close]);
        }
    }
    out
}

/// The index of the `)` closing the `(` at `open`, skipping strings.
fn matching_paren(expr: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in expr[open..].char_indices() {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            (None, _) => {}
        }
    }
    None
}

/// Every non-row panel sets `fieldConfig.defaults.unit`.
fn unit_findings(dashboard: &Value) -> Vec<String> {
    panels(dashboard)
        .into_iter()
        .filter(|p| !is_row(p) && text(&p["fieldConfig"]["defaults"]["unit"]).is_empty())
        .map(|p| format!("{} has no fieldConfig.defaults.unit", name(p)))
        .collect()
}

/// Every non-row panel says what it shows (the schema allows no
/// description on rows).
fn description_findings(dashboard: &Value) -> Vec<String> {
    panels(dashboard)
        .into_iter()
        .filter(|p| !is_row(p) && text(&p["description"]).trim().is_empty())
        .map(|p| format!("{} has no description", name(p)))
        .collect()
}

/// Unique panel ids, and a grid position on every panel, inside the
/// 24-column grid.
fn layout_findings(dashboard: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    let mut ids = BTreeSet::new();
    for panel in panels(dashboard) {
        match panel["id"].as_u64() {
            Some(id) if !ids.insert(id) => findings.push(format!("{}: id {id} twice", name(panel))),
            Some(_) => {}
            None => findings.push(format!("{} has no id", name(panel))),
        }
        let grid = &panel["gridPos"];
        let [h, w, x, y] = ["h", "w", "x", "y"].map(|k| grid[k].as_u64());
        match (h, w, x, y) {
            (Some(_), Some(w), Some(x), Some(_)) if x + w <= 24 => {}
            _ => findings.push(format!(
                "{}: gridPos {grid} is missing or off the grid",
                name(panel)
            )),
        }
    }
    findings
}

/// An `infercheck-` uid, a title, a default time range, a refresh and the
/// `infercheck` tag.
fn metadata_findings(dashboard: &Value) -> Vec<String> {
    let mut findings = Vec::new();
    if !text(&dashboard["uid"]).starts_with("infercheck-") {
        findings.push(format!(
            "uid {} does not start with infercheck-",
            dashboard["uid"]
        ));
    }
    if text(&dashboard["title"]).is_empty() {
        findings.push("no title".into());
    }
    if text(&dashboard["time"]["from"]).is_empty() || text(&dashboard["time"]["to"]).is_empty() {
        findings.push(format!("no default time range: time {}", dashboard["time"]));
    }
    if text(&dashboard["refresh"]).is_empty() {
        findings.push(format!("no refresh: {}", dashboard["refresh"]));
    }
    if !array(&dashboard["tags"]).iter().any(|t| t == "infercheck") {
        findings.push(format!("tags {} lack \"infercheck\"", dashboard["tags"]));
    }
    findings
}

/// Multi-value variables select several values, which Grafana writes as a
/// regex: they may only stand behind `=~` / `!~`, and their All value is
/// `.*` (what [`substitute`] assumes).
fn variable_findings(dashboard: &Value) -> Vec<String> {
    let multi: Vec<&Value> = variables(dashboard)
        .iter()
        .filter(|v| v["multi"] == true || v["includeAll"] == true)
        .collect();
    let mut findings: Vec<String> = multi
        .iter()
        .filter(|v| v["includeAll"] == true && v["allValue"] != ".*")
        .map(|v| {
            format!(
                "variable {:?}: allValue {}, expected \".*\"",
                text(&v["name"]),
                v["allValue"]
            )
        })
        .collect();
    for query in queries(dashboard) {
        for var in &multi {
            let name = text(&var["name"]);
            for reference in [format!("${name}"), format!("${{{name}}}")] {
                if outside_regex(&query.expr, &reference) {
                    findings.push(format!(
                        "{}: multi-value {reference} outside a =~\"...\" matcher",
                        query.place
                    ));
                }
            }
        }
    }
    findings
}

/// Whether `expr` holds `reference` (whole, not the start of a longer
/// name) anywhere but as the value of a regex matcher (`=~"$var"`).
fn outside_regex(expr: &str, reference: &str) -> bool {
    expr.match_indices(reference).any(|(at, _)| {
        let next = expr[at + reference.len()..].chars().next();
        let whole = !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let regex = expr[..at].ends_with("=~\"") || expr[..at].ends_with("!~\"");
        whole && !regex
    })
}

/// Every expression parses with promql-parser after [`substitute`].
fn promql_findings(dashboard: &Value) -> Vec<String> {
    let known = variable_names(dashboard);
    let mut findings = Vec::new();
    for query in queries(dashboard) {
        if query.expr.trim().is_empty() {
            findings.push(format!("{}: empty expr", query.place));
            continue;
        }
        let parsed = substitute(&query.expr, &known)
            .and_then(|expr| promql_parser::parser::parse(&expr).map(|_| ()));
        if let Err(e) = parsed {
            findings.push(format!("{}: {e}\n  {}", query.place, query.expr));
        }
    }
    findings
}

/// Every per-dashboard checker.
const CHECKERS: [Checker; 8] = [
    datasource_findings,
    rate_interval_findings,
    unit_findings,
    description_findings,
    layout_findings,
    metadata_findings,
    variable_findings,
    promql_findings,
];

/// Uids unique across the folder.
fn uid_findings(dashboards: &[Dashboard]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    dashboards
        .iter()
        .filter(|d| !seen.insert(text(&d.json["uid"]).to_string()))
        .map(|d| {
            format!(
                "{}: uid {} is taken by another dashboard",
                d.file, d.json["uid"]
            )
        })
        .collect()
}

fn schema_violations(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(SCHEMA).unwrap_or_else(|e| panic!("{SCHEMA}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    jsonschema::draft7::new(&schema).expect("the fixture schema compiles")
}

// ---------------------------------------------------------------------------
// The shipped dashboards

#[test]
fn every_dashboard_validates_against_the_grafana_schema() {
    let validator = validator();
    for d in dashboards() {
        let violations = schema_violations(&validator, &d.json);
        assert!(
            violations.is_empty(),
            "{}:\n{}",
            d.file,
            violations.join("\n")
        );
    }
}

/// The schema is stricter than Grafana: it rejects the object form of a
/// query variable's `query` (`{"query": ..., "refId": ...}`) that Grafana
/// 10/11 exports, because it types that object's members as objects. Our
/// dashboards write the query as a plain string, which Grafana also reads.
/// Pinned on real dashboards: the jaeger mixin passes whole, and vLLM's
/// query-statistics dashboard fails on that one member only.
#[test]
fn schema_passes_real_dashboards_but_for_the_variable_query_quirk() {
    let validator = validator();
    let fixture = |file: &str| -> Value {
        let path = format!("{FIXTURES}/{file}");
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    };
    let jaeger = schema_violations(&validator, &fixture("jaeger-mixin-dashboard.json"));
    assert_eq!(jaeger, Vec::<String>::new());
    let vllm = schema_violations(&validator, &fixture("vllm-query-statistics.json"));
    assert_eq!(vllm.len(), 1, "{vllm:#?}");
    assert!(
        vllm[0].ends_with(" at /templating/list/1/query"),
        "{vllm:#?}"
    );
}

#[test]
fn dashboards_read_through_the_datasource_variable() {
    assert_clean(datasource_findings);
}

#[test]
fn rates_range_over_the_rate_interval() {
    assert_clean(rate_interval_findings);
}

#[test]
fn every_panel_has_a_unit() {
    assert_clean(unit_findings);
}

#[test]
fn every_panel_has_a_description() {
    assert_clean(description_findings);
}

#[test]
fn panels_have_unique_ids_and_grid_positions() {
    assert_clean(layout_findings);
}

#[test]
fn dashboards_have_uid_time_refresh_and_tags() {
    assert_clean(metadata_findings);
}

#[test]
fn multi_value_variables_stand_behind_regex_matchers() {
    assert_clean(variable_findings);
}

#[test]
fn every_expression_parses_as_promql() {
    assert_clean(promql_findings);
}

#[test]
fn uids_are_unique_across_the_folder() {
    let findings = uid_findings(&dashboards());
    assert!(findings.is_empty(), "{findings:#?}");
}

/// The serving dashboard filters by model and backend as the brief of
/// issue 12 asks: both multi-value with an All of `.*`.
#[test]
fn llm_serving_filters_by_model_and_instance() {
    let all = dashboards();
    let serving = all
        .iter()
        .find(|d| d.file == "llm-serving.json")
        .expect("llm-serving.json");
    for want in ["model", "instance"] {
        let v = variables(&serving.json)
            .iter()
            .find(|v| v["name"] == want)
            .unwrap_or_else(|| panic!("llm-serving.json: no variable {want}"));
        assert_eq!(v["type"], "query", "{want}");
        assert_eq!(v["multi"], true, "{want}");
        assert_eq!(v["includeAll"], true, "{want}");
        assert_eq!(v["allValue"], ".*", "{want}");
    }
}

/// The live dashboard marks the plan's phases from infercheck_phase_info.
#[test]
fn load_test_annotates_phases() {
    let all = dashboards();
    let live = all
        .iter()
        .find(|d| d.file == "load-test.json")
        .expect("load-test.json");
    let phases = annotations(&live.json)
        .iter()
        .find(|a| a["expr"] == "infercheck_phase_info == 1")
        .expect("an annotation on infercheck_phase_info == 1");
    assert_eq!(phases["titleFormat"], "{{phase}}");
    assert_eq!(phases["step"], "1s");
}

// ---------------------------------------------------------------------------
// The checkers themselves: a clean dashboard passes, each breakage is found

/// A small dashboard that passes every checker and the schema.
fn good() -> Value {
    json!({
        "uid": "infercheck-test",
        "title": "test",
        "tags": ["infercheck"],
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "schemaVersion": 39,
        "annotations": {"list": [{
            "name": "Phases", "enable": true, "iconColor": "blue",
            "datasource": datasource(), "expr": "infercheck_phase_info == 1",
        }]},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "model", "type": "query", "datasource": datasource(),
             "query": "label_values(llm:running, model_name)",
             "multi": true, "includeAll": true, "allValue": ".*"},
        ]},
        "panels": [
            {"type": "row", "title": "Row", "id": 1, "collapsed": false, "panels": [],
             "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0}},
            {"type": "timeseries", "title": "Tokens", "id": 2,
             "description": "Generated tokens per second.",
             "datasource": datasource(),
             "gridPos": {"h": 8, "w": 12, "x": 0, "y": 1},
             "fieldConfig": {"defaults": {"unit": "short"}, "overrides": []},
             "targets": [{"refId": "A", "datasource": datasource(),
                 "expr": r#"sum(rate(vllm:generation_tokens_total{model_name=~"$model"}[$__rate_interval]))"#}]},
        ],
    })
}

/// Where `good()` keeps its one panel's expression.
const EXPR: &str = "/panels/1/targets/0/expr";

/// `good()` with the object member at JSON `pointer` set to `value`
/// (added if missing; null stands for a missing member).
fn edited(pointer: &str, value: &Value) -> Value {
    let mut dashboard = good();
    let (parent, key) = pointer.rsplit_once('/').expect(pointer);
    dashboard.pointer_mut(parent).expect(pointer)[key] = value.clone();
    dashboard
}

/// Each edit of `good()` makes `check` report a finding containing its
/// text (which names the panel, target, annotation or variable).
fn assert_each_found(check: Checker, cases: &[(&str, Value, &str)]) {
    for (pointer, value, says) in cases {
        let findings = check(&edited(pointer, value));
        assert!(
            findings.iter().any(|f| f.contains(says)),
            "{pointer} = {value}: expected a finding containing {says:?}, got {findings:#?}"
        );
    }
}

#[test]
fn the_clean_example_passes_every_checker_and_the_schema() {
    let dashboard = good();
    for check in CHECKERS {
        assert_eq!(check(&dashboard), Vec::<String>::new());
    }
    let violations = schema_violations(&validator(), &dashboard);
    assert_eq!(violations, Vec::<String>::new());
}

#[test]
fn schema_rejects_a_malformed_dashboard() {
    let validator = validator();
    let cases = [
        ("/panels/1/gridPos/w", json!(30)),
        ("/templating", json!(null)),
        ("/panels/0/collapsed", json!(null)),
    ];
    for (pointer, value) in cases {
        let violations = schema_violations(&validator, &edited(pointer, &value));
        assert!(!violations.is_empty(), "{pointer} = {value} passes");
    }
}

#[test]
fn datasource_checker_finds_hard_coded_datasources() {
    let uid = json!({"type": "prometheus", "uid": "P1809F7CD0C75ACF3"});
    #[rustfmt::skip]
    let cases = [
        ("/panels/1/datasource", uid.clone(), r#"panel "Tokens": datasource"#),
        ("/panels/1/targets/0/datasource", json!("Prometheus"), "target A: datasource"),
        ("/annotations/list/0/datasource", json!(null), r#"annotation "Phases": datasource"#),
        ("/templating/list/1/datasource", uid.clone(), r#"variable "model": datasource"#),
        ("/panels/0/datasource", uid, "/panels/0/datasource: hard-coded"),
        ("/templating/list/0/query", json!("loki"), "variable datasource is type"),
        ("/templating/list/0/name", json!("ds"), "no `datasource` template variable"),
    ];
    assert_each_found(datasource_findings, &cases);
}

#[test]
fn rate_checker_finds_fixed_ranges() {
    #[rustfmt::skip]
    let cases = [
        (EXPR, json!("sum(rate(x_total[5m]))"), "target A: rate(x_total[5m]) does not"),
        (EXPR, json!("irate(x_total[$__interval])"), "target A: irate("),
        (EXPR, json!("increase (x_total{a=\"(\"}[1h])"), "target A: increase("),
        (EXPR, json!("rate(x[$__rate_interval]) / rate(y[1m])"), "rate(y[1m])"),
        ("/annotations/list/0/expr", json!("rate(x[1m]) > 0"), "annotation \"Phases\""),
    ];
    assert_each_found(rate_interval_findings, &cases);
    // A recorded rate is no call of rate().
    let recorded = edited(EXPR, &json!("llm:generation_tokens:rate5m"));
    assert_eq!(rate_interval_findings(&recorded), Vec::<String>::new());
}

#[test]
fn unit_and_description_checkers_find_what_a_panel_lacks() {
    let no_unit = json!({"overrides": []});
    let cases = [(
        "/panels/1/fieldConfig",
        no_unit,
        "has no fieldConfig.defaults.unit",
    )];
    assert_each_found(unit_findings, &cases);
    let cases = [("/panels/1/description", json!(" "), "has no description")];
    assert_each_found(description_findings, &cases);
}

#[test]
fn layout_checker_finds_duplicate_ids_and_missing_grid_positions() {
    #[rustfmt::skip]
    let cases = [
        ("/panels/1/id", json!(1), r#"panel "Tokens": id 1 twice"#),
        ("/panels/1/gridPos", json!(null), r#"panel "Tokens": gridPos null"#),
        ("/panels/1/gridPos/x", json!(20), "off the grid"),
    ];
    assert_each_found(layout_findings, &cases);
}

#[test]
fn metadata_checker_finds_missing_uid_prefix_time_refresh_and_tag() {
    #[rustfmt::skip]
    let cases = [
        ("/uid", json!("llm"), "does not start with infercheck-"),
        ("/time", json!({}), "no default time range"),
        ("/refresh", json!(null), "no refresh"),
        ("/tags", json!(["llm"]), r#"lack "infercheck""#),
        ("/title", json!(""), "no title"),
    ];
    assert_each_found(metadata_findings, &cases);
}

#[test]
fn uid_checker_finds_a_uid_used_twice() {
    let twice = ["a.json", "b.json"].map(|file| Dashboard {
        file: file.into(),
        json: good(),
    });
    let findings = uid_findings(&twice);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].starts_with(r#"b.json: uid "infercheck-test""#));
}

#[test]
fn variable_checker_finds_multi_values_outside_regex_matchers() {
    #[rustfmt::skip]
    let cases = [
        (EXPR, json!(r#"x{model_name="$model"}"#), "target A: multi-value $model"),
        (EXPR, json!(r#"x{model_name!="${model}"}"#), "multi-value ${model}"),
        ("/templating/list/1/allValue", json!("$__all"), r#"variable "model": allValue"#),
    ];
    assert_each_found(variable_findings, &cases);
}

#[test]
fn promql_checker_finds_unparsable_expressions_and_unknown_variables() {
    #[rustfmt::skip]
    let cases = [
        (EXPR, json!("sum(rate(x[$__rate_interval])"), r#"panel "Tokens" target A"#),
        (EXPR, json!(r#"up{job=~"$jobb"}"#), "unknown variable $jobb"),
        (EXPR, json!(" "), "empty expr"),
        ("/templating/list/1/query", json!("label_values(up{, job)"), r#"variable "model""#),
        ("/annotations/list/0/expr", json!("x =="), r#"annotation "Phases""#),
    ];
    assert_each_found(promql_findings, &cases);
}

#[test]
fn substitute_writes_what_prometheus_receives() {
    let known: BTreeSet<String> = ["model", "instance"].map(String::from).into();
    #[rustfmt::skip]
    let table = [
        ("rate(x[$__rate_interval])", "rate(x[1m])"),
        (r#"x{a=~"$model", b=~"${instance}"}"#, r#"x{a=~".*", b=~".*"}"#),
        (r#"x{a=~"${model:regex}"}"#, r#"x{a=~".*"}"#),
        ("increase(x[$__range]) / $__range_s", "increase(x[1m]) / 60"),
        ("x * $__interval_ms", "x * 60000"),
        // label_replace's capture references are no variables.
        (r#"label_replace(x, "a", "$1", "b", "(.*)")"#, r#"label_replace(x, "a", "$1", "b", "(.*)")"#),
    ];
    for (expr, want) in table {
        assert_eq!(substitute(expr, &known).as_deref(), Ok(want), "{expr}");
    }
    for unknown in ["$nope", "${nope}", "$__nope"] {
        let expr = format!(r#"x{{a=~"{unknown}"}}"#);
        let want = format!("unknown variable {unknown}");
        assert_eq!(substitute(&expr, &known), Err(want));
    }
}

#[test]
fn variable_queries_yield_their_promql() {
    #[rustfmt::skip]
    let table = [
        (json!(r#"label_values(x{a=~"$b"}, model_name)"#), Some(r#"x{a=~"$b"}"#)),
        (json!({"query": "label_values(up, job)", "refId": "A"}), Some("up")),
        (json!("query_result(topk(3, up))"), Some("topk(3, up)")),
        (json!("label_values(job)"), None),
    ];
    for (query, want) in table {
        let got = variable_expr(&json!({ "query": query }));
        assert_eq!(got.as_deref(), want, "{query}");
    }
}
