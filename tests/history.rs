//! The run history from outside: runs recorded through the public API
//! (from a real report, varied per run) and read back, two writers at
//! once on one file, files it refuses, `infercheck history` through the
//! binary, and the report's "Run History" section in every format.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use infercheck::history::{History, RunEntry, Select};
use infercheck::report::{Format, Outcome, Report, render};
use infercheck::stats::Distribution;

use crate::util::binary;

/// A real report (the sweep golden's), the base every run here varies.
fn base_report() -> Report {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/sweep_fail/report.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Run `n` of `plan`, started `n` minutes into a day, with p95 latency
/// `p95` ms.
fn run(base: &Report, plan: &str, n: u32, outcome: Outcome, p95: f64) -> Report {
    let mut r = base.clone();
    r.plan_name = plan.to_owned();
    r.run_id = format!("{plan}-{n:03}");
    r.started_at = format!("2026-04-01T{:02}:{:02}:00.000Z", n / 60, n % 60);
    r.verdict.outcome = outcome;
    let latency = r
        .overall
        .distributions
        .get_mut(Distribution::Latency.spec().key)
        .expect("the golden has latency");
    latency.p95 = p95;
    r
}

fn record(history: &History, report: &Report) -> RunEntry {
    let path = PathBuf::from(format!("results/{}/report.json", report.run_id));
    history.record(report, &path, Some("stack-7")).unwrap()
}

fn ids(entries: &[RunEntry]) -> Vec<String> {
    entries.iter().map(|e| e.run_id.clone()).collect()
}

#[test]
fn history_record_list_and_find_across_two_plans() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&dir.path().join("db/history.sqlite")).unwrap();
    let base = base_report();
    let runs = [
        run(&base, "smoke", 1, Outcome::Pass, 100.0),
        run(&base, "soak", 2, Outcome::Pass, 900.0),
        run(&base, "smoke", 3, Outcome::Fail, 300.0),
        run(&base, "soak", 4, Outcome::Fail, 950.0),
        run(&base, "smoke", 5, Outcome::Invalid, 120.0),
    ];
    let written: Vec<RunEntry> = runs.iter().map(|r| record(&history, r)).collect();

    let all = history.runs(None, 100).unwrap();
    assert_eq!(
        ids(&all),
        [
            "smoke-005",
            "soak-004",
            "smoke-003",
            "soak-002",
            "smoke-001"
        ]
    );
    assert_eq!(all[4], written[0], "what was recorded reads back");
    let e = &all[0];
    assert_eq!(
        e.target, "embedded simulator",
        "the golden ran the simulator"
    );
    assert_eq!(e.models, "llama-3.1-8b-instruct,qwen2.5-7b-instruct");
    assert_eq!(e.stack_version.as_deref(), Some("stack-7"));
    assert_eq!(e.headline.latency_p95_ms, Some(120.0));
    assert_eq!(e.headline.requests, base.overall.requests);

    let find = |plan, which| history.find(plan, which, None).unwrap().unwrap().run_id;
    assert_eq!(find("smoke", Select::Latest), "smoke-005");
    assert_eq!(find("smoke", Select::LatestPass), "smoke-001");
    assert_eq!(find("soak", Select::Latest), "soak-004");
    assert_eq!(find("soak", Select::LatestPass), "soak-002");
    let excluded = history
        .find("smoke", Select::Latest, Some("smoke-005"))
        .unwrap();
    assert_eq!(excluded.map(|e| e.run_id).as_deref(), Some("smoke-003"));
    assert_eq!(history.find("none", Select::Latest, None).unwrap(), None);
}

#[test]
fn history_two_writers_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Neither writer finds the file: both create and migrate it at once.
    let path = Arc::new(dir.path().join("history.sqlite"));
    let start = Arc::new(Barrier::new(2));
    let base = Arc::new(base_report());
    let writers: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|plan| {
            let (path, start, base) = (path.clone(), start.clone(), base.clone());
            std::thread::spawn(move || {
                start.wait();
                let history = History::open(&path).unwrap();
                for n in 0..50 {
                    record(&history, &run(&base, plan, n, Outcome::Pass, 100.0));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer failed");
    }
    let history = History::open(&path).unwrap();
    let all = history.runs(None, 1000).unwrap();
    assert_eq!(all.len(), 100);
    for plan in ["left", "right"] {
        assert_eq!(history.runs(Some(plan), 1000).unwrap().len(), 50, "{plan}");
    }
    let integrity: String = rusqlite::Connection::open(&*path)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}

fn history_binary(args: &[&str]) -> (i32, String, String) {
    let out = binary()
        .arg("history")
        .args(args)
        .output()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn history_files_it_cannot_read_exit_3_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    std::fs::write(&garbage, "not a database at all\n".repeat(100)).unwrap();
    let newer = dir.path().join("newer.sqlite");
    drop(History::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let missing = dir.path().join("missing.sqlite");
    let cases = [
        (
            &garbage,
            "is not an infercheck history: file is not a database",
        ),
        (
            &newer,
            "was written by a newer infercheck: schema 999, this build reads up to 1",
        ),
        (&missing, "no run history at"),
    ];
    for (path, reason) in cases {
        let (code, stdout, stderr) = history_binary(&["--db", path.to_str().unwrap()]);
        assert_eq!(code, 3, "{}: {stderr}", path.display());
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(reason),
            "{}: {stderr}",
            path.display()
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert!(!missing.exists(), "reading never creates a history");
}

#[test]
fn history_command_lists_runs_and_a_rising_trend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let db = path.to_str().unwrap();
    let history = History::open(&path).unwrap();
    let base = base_report();
    for n in 0..10 {
        let p95 = 200.0 + 25.0 * f64::from(n);
        record(&history, &run(&base, "smoke", n, Outcome::Pass, p95));
    }
    record(&history, &run(&base, "soak", 20, Outcome::Fail, 999.0));
    drop(history);

    let (code, stdout, stderr) = history_binary(&["--db", db, "--plan", "smoke"]);
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("RUN") && lines[0].contains("STACK"),
        "{stdout}"
    );
    assert!(lines[1].starts_with("smoke-009"), "newest first:\n{stdout}");
    assert!(lines[10].starts_with("smoke-000"), "{stdout}");
    assert!(
        lines[1].contains("425.0ms") && lines[1].contains("stack-7"),
        "{stdout}"
    );
    assert!(!stdout.contains("soak"), "--plan keeps one plan:\n{stdout}");
    let p95 = lines
        .iter()
        .find(|l| l.trim_start().starts_with("P95 Latency"))
        .unwrap_or_else(|| panic!("no p95 trend line:\n{stdout}"));
    assert!(p95.contains("200.0ms → 425.0ms"), "{p95}");
    assert!(p95.contains("+25.0ms/run, rising (worse)"), "{p95}");

    let (code, stdout, _) = history_binary(&["--db", db, "--limit", "3", "--json"]);
    assert_eq!(code, 0);
    let entries: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let ids: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["soak-020", "smoke-009", "smoke-008"]);
    assert_eq!(entries[0]["headline"]["latency_p95_ms"], 999.0);
    assert_eq!(entries[0]["outcome"], "fail");
}

#[test]
fn history_trend_in_the_report_follows_the_schema_and_shows_in_md_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&dir.path().join("history.sqlite")).unwrap();
    let base = base_report();
    for n in 0..4 {
        let p95 = 300.0 + 50.0 * f64::from(n);
        record(&history, &run(&base, "smoke", n, Outcome::Pass, p95));
    }
    let mut report = run(&base, "smoke", 3, Outcome::Pass, 450.0);
    report.history = Some(history.trend("smoke", 10).unwrap());
    assert_eq!(report.history.as_ref().unwrap().points.len(), 4);

    let json: serde_json::Value = serde_json::from_str(&text(&report, Format::Json)).unwrap();
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert_eq!(errors, Vec::<String>::new());

    let md = text(&report, Format::Markdown);
    assert!(md.contains("## Run History"), "{md}");
    assert!(
        md.contains("| smoke-000 | 2026-04-01T00:00:00.000Z | ✅ PASS | 300ms |"),
        "{md}"
    );
    assert!(md.contains("| smoke-003 (this run) |"), "{md}");
    let html = text(&report, Format::Html);
    let section = &html[html.find("<h2>Run History</h2>").expect("an html section")..];
    let section = &section[..section[4..].find("<h2>").map_or(section.len(), |i| i + 4)];
    assert!(section.contains("<td>smoke-000</td>"), "{section}");
    assert!(
        section.contains("<svg") && section.contains("<polyline"),
        "{section}"
    );

    // One run is no trend: the section is left out.
    report.history = Some(history.trend("smoke", 1).unwrap());
    assert!(!text(&report, Format::Markdown).contains("Run History"));
}

fn text(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    render(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}
