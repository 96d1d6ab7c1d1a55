//! A Grafana dashboard as the validator reads it: its panels (rows and
//! collapsed rows' panels included), each panel's Prometheus queries with
//! the template variables substituted as Grafana would for the default
//! view, and the range and step Grafana would query them at.
//!
//! Grafana's step: `max(min interval, range / max data points)`, rounded
//! up to a round interval, where the min interval is the panel's
//! `interval` (default: the scrape interval) and max data points the
//! panel's `maxDataPoints` (default: its width in pixels on a 1920 px
//! screen). `$__rate_interval` is `max($__interval + scrape interval,
//! 4 × scrape interval)`. A variable that includes "All" reads `.*`
//! (Grafana's `allValue` where a dashboard sets one); otherwise its
//! current value.

use std::path::Path;

use serde_json::Value;

/// A dashboard's queries, ready to send.
#[derive(Clone, Debug, PartialEq)]
pub struct Dashboard {
    pub file: String,
    pub title: String,
    pub uid: String,
    /// The default time range, in seconds back from now.
    pub range_s: f64,
    pub panels: Vec<Panel>,
}

/// One panel with a query.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    pub title: String,
    pub id: i64,
    pub targets: Vec<Target>,
    /// Query step, seconds.
    pub step_s: f64,
}

/// One query of a panel, variables substituted.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub ref_id: String,
    pub expr: String,
}

/// Grid columns and the screen width a panel's pixel width is taken from.
const GRID_COLUMNS: f64 = 24.0;
const SCREEN_PX: f64 = 1920.0;
/// Grafana's round intervals (seconds) a step is rounded up to.
const ROUND_STEPS_S: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    7200.0, 10800.0, 21600.0, 43200.0, 86400.0,
];

/// Reads one dashboard file; `scrape_s` is the Prometheus scrape interval.
pub fn load(path: &Path, scrape_s: f64) -> Result<Dashboard, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    // A dashboard exported for sharing or wrapped by the HTTP API.
    let json = json.get("dashboard").cloned().unwrap_or(json);
    parse(&path.display().to_string(), &json, scrape_s)
}

/// The dashboards of `path`: the file itself, or every `.json` in the folder.
pub fn load_all(path: &Path, scrape_s: f64) -> Result<Vec<Dashboard>, String> {
    if path.is_file() {
        return Ok(vec![load(path, scrape_s)?]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no .json dashboard in it", path.display()));
    }
    files.iter().map(|f| load(f, scrape_s)).collect()
}

/// A dashboard from its JSON model.
pub fn parse(file: &str, json: &Value, scrape_s: f64) -> Result<Dashboard, String> {
    let panels = json
        .get("panels")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{file}: no `panels` list: not a Grafana dashboard"))?;
    let range_s = default_range_s(json);
    let variables = variables(json);
    let mut out = Vec::new();
    for panel in flatten(panels) {
        let targets = targets(panel, &variables, range_s, scrape_s);
        if targets.is_empty() {
            continue;
        }
        out.push(Panel {
            title: text(panel, "title"),
            id: panel.get("id").and_then(Value::as_i64).unwrap_or(0),
            step_s: step_s(panel, range_s, scrape_s),
            targets,
        });
    }
    Ok(Dashboard {
        file: file.to_owned(),
        title: text(json, "title"),
        uid: text(json, "uid"),
        range_s,
        panels: out,
    })
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

/// Panels, with those nested in rows (collapsed rows keep theirs).
fn flatten(panels: &[Value]) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in panels {
        out.push(p);
        if let Some(inner) = p.get("panels").and_then(Value::as_array) {
            out.extend(flatten(inner));
        }
    }
    out
}

/// `time.from` as seconds back from now (`now-1h`); 6 h, Grafana's
/// default, when absent or not relative.
fn default_range_s(json: &Value) -> f64 {
    let from = json
        .pointer("/time/from")
        .and_then(Value::as_str)
        .unwrap_or("now-6h");
    from.strip_prefix("now-")
        .and_then(|d| crate::units::parse_duration(d).ok())
        .map_or(6.0 * 3600.0, |d| d.as_secs_f64())
}

/// (name, value) of every template variable, as the default view reads it.
fn variables(json: &Value) -> Vec<(String, String)> {
    let list = json
        .pointer("/templating/list")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .map(|v| (text(v, "name"), variable_value(v)))
        .filter(|(n, _)| !n.is_empty())
        .collect()
}

fn variable_value(v: &Value) -> String {
    let all = v
        .get("includeAll")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let current = v.pointer("/current/value");
    let current_text = match current {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
        _ => None,
    };
    match current_text.as_deref() {
        Some("$__all") | None if all => v
            .get("allValue")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(".*")
            .to_owned(),
        Some(value) => value.to_owned(),
        None => ".*".to_owned(),
    }
}

/// A panel's Prometheus targets (hidden ones left out).
fn targets(
    panel: &Value,
    variables: &[(String, String)],
    range_s: f64,
    scrape_s: f64,
) -> Vec<Target> {
    let step = step_s(panel, range_s, scrape_s);
    let builtins = builtins(step, range_s, scrape_s);
    panel
        .get("targets")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter(|t| !t.get("hide").and_then(Value::as_bool).unwrap_or(false))
                .filter_map(|t| {
                    let expr = t.get("expr").and_then(Value::as_str)?;
                    (!expr.trim().is_empty()).then(|| Target {
                        ref_id: text(t, "refId"),
                        expr: substitute(expr, &builtins, variables),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Grafana's built-in interval variables for one panel.
fn builtins(step_s: f64, range_s: f64, scrape_s: f64) -> Vec<(String, String)> {
    let rate = (step_s + scrape_s).max(4.0 * scrape_s);
    vec![
        ("__rate_interval".into(), duration(rate)),
        (
            "__interval_ms".into(),
            format!("{}", (step_s * 1000.0) as u64),
        ),
        ("__interval".into(), duration(step_s)),
        ("__range_s".into(), format!("{}", range_s as u64)),
        (
            "__range_ms".into(),
            format!("{}", (range_s * 1000.0) as u64),
        ),
        ("__range".into(), duration(range_s)),
    ]
}

fn duration(s: f64) -> String {
    format!("{}s", s.ceil() as u64)
}

/// `expr` with `$name`, `${name}`, `${name:fmt}` and `[[name]]` replaced;
/// longer names first so `$__interval_ms` is not read as `$__interval`.
pub fn substitute(
    expr: &str,
    builtins: &[(String, String)],
    variables: &[(String, String)],
) -> String {
    let mut all: Vec<&(String, String)> = builtins.iter().chain(variables).collect();
    all.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut out = expr.to_owned();
    for (name, value) in all {
        out = replace_braced(&out, name, value);
        out = out.replace(&format!("[[{name}]]"), value);
        out = replace_bare(&out, name, value);
    }
    out
}

/// `${name}` and `${name:format}`.
fn replace_braced(text: &str, name: &str, value: &str) -> String {
    let open = format!("${{{name}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let close = match after.chars().next() {
            Some('}') => Some(0),
            Some(':') => after.find('}'),
            _ => None,
        };
        out.push_str(&rest[..i]);
        match close {
            Some(c) => {
                out.push_str(value);
                rest = &after[c + 1..];
            }
            None => {
                out.push_str(&open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `$name` not followed by a name character.
fn replace_bare(text: &str, name: &str, value: &str) -> String {
    let pattern = format!("${name}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&pattern) {
        let after = &rest[i + pattern.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
            out.push_str(&pattern);
        } else {
            out.push_str(value);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The step Grafana queries a panel at (seconds).
fn step_s(panel: &Value, range_s: f64, scrape_s: f64) -> f64 {
    let min = panel
        .get("interval")
        .and_then(Value::as_str)
        .map(|s| s.trim_start_matches('>'))
        .and_then(|s| crate::units::parse_duration(s).ok())
        .map_or(scrape_s, |d| d.as_secs_f64());
    let width = panel
        .pointer("/gridPos/w")
        .and_then(Value::as_f64)
        .unwrap_or(12.0);
    let points = panel
        .get("maxDataPoints")
        .and_then(Value::as_f64)
        .unwrap_or((width / GRID_COLUMNS * SCREEN_PX).max(1.0));
    let raw = (range_s / points).max(min);
    ROUND_STEPS_S
        .iter()
        .copied()
        .find(|s| *s >= raw - 1e-9)
        .unwrap_or(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dash(panels: Value) -> Value {
        json!({
            "title": "t", "uid": "u", "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": [
                {"name": "datasource", "type": "datasource", "current": {"value": "prom"}},
                {"name": "model", "type": "query", "includeAll": true, "current": {"value": ["$__all"]}},
                {"name": "job", "type": "custom", "current": {"value": "vllm"}}
            ]},
            "panels": panels
        })
    }

    #[test]
    fn variables_and_intervals_are_substituted_as_grafana_would() {
        let d = parse(
            "d.json",
            &dash(json!([{
                "title": "Rate", "id": 2, "gridPos": {"w": 12, "h": 8, "x": 0, "y": 0},
                "targets": [{"refId": "A", "expr": "sum(rate(x_total{model=~\"$model\",job=\"${job}\"}[$__rate_interval])) / $__interval_ms"}]
            }])),
            15.0,
        )
        .unwrap();
        assert_eq!(d.range_s, 3600.0);
        let p = &d.panels[0];
        // 3600 s over 960 px is 3.75 s, under the 15 s scrape interval.
        assert_eq!(p.step_s, 15.0);
        assert_eq!(
            p.targets[0].expr,
            "sum(rate(x_total{model=~\".*\",job=\"vllm\"}[60s])) / 15000"
        );
    }

    #[test]
    fn rows_and_collapsed_rows_give_their_panels() {
        let d = parse(
            "d.json",
            &dash(json!([
                {"type": "row", "title": "r", "collapsed": true, "panels": [
                    {"title": "inner", "id": 3, "targets": [{"refId": "A", "expr": "up"}]}
                ]},
                {"title": "text", "id": 4, "type": "text"},
                {"title": "hidden", "id": 5, "targets": [{"refId": "A", "expr": "up", "hide": true}]}
            ])),
            15.0,
        )
        .unwrap();
        let titles: Vec<&str> = d.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, vec!["inner"]);
    }

    #[test]
    fn a_long_range_on_a_narrow_panel_rounds_the_step_up() {
        let panel = json!({"gridPos": {"w": 6}});
        // 7 days over 480 px: 1260 s → 1800 s.
        assert_eq!(step_s(&panel, 7.0 * 86400.0, 15.0), 1800.0);
        assert_eq!(step_s(&json!({"interval": ">1m"}), 600.0, 15.0), 60.0);
    }

    #[test]
    fn every_real_dashboard_of_the_fixtures_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/grafana");
        let mut queries = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().unwrap() == "dashboard.jsonschema.json" {
                continue;
            }
            let Ok(d) = load(&path, 15.0) else { continue };
            for t in d.panels.iter().flat_map(|p| &p.targets) {
                queries += 1;
                assert!(
                    !t.expr.contains("$__rate_interval"),
                    "{}: {}",
                    d.file,
                    t.expr
                );
            }
        }
        assert!(queries > 100, "only {queries} queries in the fixtures");
    }
}
