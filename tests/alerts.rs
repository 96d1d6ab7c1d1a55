//! alerts/: the Prometheus rule files and their promtool unit tests.
//! promtool (Debian's prometheus package, installed by scripts/test.sh)
//! checks and tests the rules; the scan below checks what promtool does not:
//! every alerting rule's `for`, severity and annotations, a firing and a
//! not-firing test per alert, and every expression through promql-parser.
//! No YAML parser is a dependency, so the scan reads the files' fixed layout
//! (`- alert:` / `- record:` items, `expr: |` blocks by indentation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yml_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .yml in {}", dir.display());
    files
}

fn rule_files() -> Vec<PathBuf> {
    yml_in(&root().join("alerts"))
}

fn test_files() -> Vec<PathBuf> {
    yml_in(&root().join("alerts/tests"))
}

fn promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not runnable ({e}): scripts/test.sh installs Debian's prometheus")
        });
    assert!(
        out.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_check_rules_passes() {
    promtool(&["check", "rules"], &rule_files());
}

#[test]
fn promtool_test_rules_passes() {
    promtool(&["test", "rules"], &test_files());
}

/// One rule as written: its kind and name, the item's lines, its expr.
struct Rule {
    alert: bool,
    name: String,
    body: Vec<String>,
    expr: String,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn rules(text: &str) -> Vec<Rule> {
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let kind = [("- alert:", true), ("- record:", false)]
            .into_iter()
            .find(|(k, _)| t.starts_with(k));
        let Some((key, alert)) = kind else {
            i += 1;
            continue;
        };
        let item = indent(lines[i]);
        let name = t[key.len()..].trim().to_string();
        let mut body = Vec::new();
        i += 1;
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > item) {
            body.push(lines[i].to_string());
            i += 1;
        }
        let mut expr = String::new();
        if let Some(at) = body
            .iter()
            .position(|l| l.trim_start().starts_with("expr:"))
        {
            let first = body[at].trim_start()["expr:".len()..].trim();
            if first == "|" {
                let own = indent(&body[at]);
                for l in &body[at + 1..] {
                    if !l.trim().is_empty() && indent(l) <= own {
                        break;
                    }
                    expr.push_str(l.trim());
                    expr.push('\n');
                }
            } else {
                expr = first.to_string();
            }
        }
        rules.push(Rule {
            alert,
            name,
            body,
            expr,
        });
    }
    rules
}

fn all_rules() -> Vec<(String, Rule)> {
    rule_files()
        .iter()
        .flat_map(|p| {
            let file = p.file_name().unwrap().to_string_lossy().to_string();
            let text = std::fs::read_to_string(p).unwrap();
            rules(&text).into_iter().map(move |r| (file.clone(), r))
        })
        .collect()
}

#[test]
fn every_alert_has_for_severity_and_annotations() {
    let rules = all_rules();
    let alerts = rules.iter().filter(|(_, r)| r.alert).count();
    assert!(alerts >= 18, "{alerts} alerts");
    for (file, r) in rules.iter().filter(|(_, r)| r.alert) {
        for key in ["for:", "severity:", "summary:", "description:", "runbook:"] {
            assert!(
                r.body.iter().any(|l| l.trim_start().starts_with(key)),
                "{file}: alert {} has no {key}",
                r.name
            );
        }
        let anchor = format!("RUNBOOK.md#{}", r.name.to_lowercase());
        assert!(
            r.body.iter().any(|l| l.contains(&anchor)),
            "{file}: alert {}'s runbook is not {anchor}",
            r.name
        );
    }
}

#[test]
fn every_expr_parses_with_promql_parser() {
    let rules = all_rules();
    assert!(rules.iter().any(|(_, r)| !r.alert), "no recording rules");
    for (file, r) in &rules {
        assert!(!r.expr.is_empty(), "{file}: {} has no expr", r.name);
        if let Err(e) = promql_parser::parser::parse(&r.expr) {
            panic!("{file}: {}: {e}\n{}", r.name, r.expr);
        }
    }
}

#[test]
fn every_alert_has_a_firing_and_a_not_firing_test() {
    // alertname -> (firing cases, not-firing cases)
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for p in test_files() {
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, l) in lines.iter().enumerate() {
            let Some(name) = l.strip_prefix("alertname:") else {
                continue;
            };
            let exp = lines[i + 1..]
                .iter()
                .find(|l| l.starts_with("exp_alerts:"))
                .unwrap_or_else(|| panic!("{}: {name} without exp_alerts", p.display()));
            let entry = cases.entry(name.trim().to_string()).or_default();
            if exp.trim_end() == "exp_alerts: []" {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
    }
    let runbook = std::fs::read_to_string(root().join("alerts/RUNBOOK.md")).unwrap();
    for (file, r) in all_rules().iter().filter(|(_, r)| r.alert) {
        let (firing, quiet) = cases.get(&r.name).copied().unwrap_or_default();
        assert!(firing > 0, "{file}: alert {} has no firing test", r.name);
        assert!(quiet > 0, "{file}: alert {} has no not-firing test", r.name);
        assert!(
            runbook.contains(&format!("## {}\n", r.name)),
            "RUNBOOK.md has no section for {}",
            r.name
        );
    }
}
