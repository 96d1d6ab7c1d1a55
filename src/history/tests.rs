//! The history's own tests: what a record keeps, which run a query picks,
//! and the files it refuses.

use std::path::{Path, PathBuf};

use super::*;
use crate::report::test_report::report;
use crate::report::{EngineReport, ModelReport, ObservedReport, Outcome, Report, StatsBlock};

/// A report of `plan` started at second `second` of one day, with p95
/// latency `p95` ms.
fn run(plan: &str, second: u32, outcome: Outcome, p95: f64) -> Report {
    let mut r = report(Vec::new(), outcome);
    r.run_id = format!("{plan}-{second:05}");
    r.plan_name = plan.to_owned();
    r.started_at = started(second);
    r.ended_at = started(second + 1);
    r.plan = serde_json::json!({ "name": plan, "phases": [{ "rate": 5 }] });
    r.overall.requests = 100;
    r.overall.rps = 10.0;
    // The quantiles by their report.json form (this module reads only
    // `report`'s types).
    let latency = serde_json::json!({
        "count": 100, "min": 1.0, "mean": p95 / 2.0, "p50": p95 / 2.0,
        "p90": p95, "p95": p95, "p99": p95 * 1.5, "max": p95 * 2.0,
    });
    r.overall.distributions.insert(
        "latency_ms".to_owned(),
        serde_json::from_value(latency).unwrap(),
    );
    r
}

fn started(second: u32) -> String {
    format!(
        "2026-03-01T{:02}:{:02}:{:02}.000Z",
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("nested").join("history.sqlite")
}

fn record(history: &History, report: &Report) -> RunEntry {
    let path = PathBuf::from(format!("results/{}/report.json", report.run_id));
    history.record(report, &path, None).unwrap()
}

fn ids(entries: &[RunEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.run_id.as_str()).collect()
}

#[test]
fn a_record_keeps_the_runs_identity_and_headline() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db(&dir)).unwrap();
    let mut r = run("smoke", 10, Outcome::Fail, 180.0);
    r.verdict.exit_code = 4;
    r.target.embedded_simulator = true;
    r.target.base_url = "http://127.0.0.1:41234".into();
    r.overall.goodput_per_s = Some(8.5);
    r.models = ["llama", "qwen"]
        .iter()
        .map(|m| ModelReport {
            model: (*m).to_owned(),
            weight: 0.5,
            stats: StatsBlock::default(),
        })
        .collect();
    r.observed = Some(ObservedReport {
        engine: Some(EngineReport {
            name: "vllm".into(),
            label: "vLLM".into(),
            version: None,
            chosen: "detected".into(),
        }),
        ..ObservedReport::default()
    });
    let written = history
        .record(&r, Path::new("out/run/report.json"), Some("v1.2.3"))
        .unwrap();

    let read = history.runs(None, 10).unwrap();
    assert_eq!(read, std::slice::from_ref(&written));
    let e = &read[0];
    assert_eq!(
        (e.target.as_str(), e.models.as_str(), e.engine.as_str()),
        ("embedded simulator", "llama,qwen", "vllm")
    );
    assert_eq!((e.outcome.as_str(), e.exit_code), ("fail", 4));
    assert_eq!(e.stack_version.as_deref(), Some("v1.2.3"));
    assert_eq!(e.report_path, Path::new("out/run/report.json"));
    assert_eq!(e.headline, Headline::of(&r));
    assert_eq!(e.headline.latency_p95_ms, Some(180.0));
    assert_eq!(e.headline.goodput_per_s, Some(8.5));
    assert_eq!(e.plan_hash, plan_hash(&r.plan));
}

#[test]
fn the_plan_hash_is_the_sha256_of_the_plan_json_whatever_its_key_order() {
    let plan: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[{"d":2,"c":3}]}"#).unwrap();
    let hash = plan_hash(&plan);
    assert_eq!(hash.len(), 64);
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let reordered: serde_json::Value =
        serde_json::from_str(r#"{"a":[{"c":3,"d":2}],"b":1}"#).unwrap();
    assert_eq!(plan_hash(&reordered), hash);
    assert_ne!(plan_hash(&serde_json::json!({"a": [], "b": 1})), hash);
    // The empty plan's digest is sha256("null").
    assert_eq!(
        plan_hash(&serde_json::Value::Null),
        "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"
    );
}

#[test]
fn latest_and_latest_pass_pick_the_plans_own_runs() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db(&dir)).unwrap();
    let runs = [
        run("smoke", 1, Outcome::Pass, 100.0),
        run("sweep", 2, Outcome::Pass, 300.0),
        run("smoke", 3, Outcome::Fail, 400.0),
        run("sweep", 4, Outcome::Fail, 500.0),
        run("smoke", 5, Outcome::Interrupted, 90.0),
        run("sweep", 6, Outcome::Pass, 310.0),
    ];
    for r in &runs {
        record(&history, r);
    }
    let pick = |plan, which, excluding| {
        history
            .find(plan, which, excluding)
            .unwrap()
            .map(|e| e.run_id)
    };
    assert_eq!(
        pick("smoke", Select::Latest, None).as_deref(),
        Some("smoke-00005")
    );
    assert_eq!(
        pick("smoke", Select::LatestPass, None).as_deref(),
        Some("smoke-00001")
    );
    assert_eq!(
        pick("sweep", Select::Latest, None).as_deref(),
        Some("sweep-00006")
    );
    assert_eq!(
        pick("sweep", Select::LatestPass, None).as_deref(),
        Some("sweep-00006")
    );
    // The run being judged is never its own baseline.
    let this = Some("sweep-00006");
    assert_eq!(
        pick("sweep", Select::Latest, this).as_deref(),
        Some("sweep-00004")
    );
    assert_eq!(
        pick("sweep", Select::LatestPass, this).as_deref(),
        Some("sweep-00002")
    );
    assert_eq!(pick("other", Select::Latest, None), None);
}

#[test]
fn runs_are_newest_first_by_start_then_by_record() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db(&dir)).unwrap();
    // Recorded out of order: the later start is the newer run.
    for second in [30, 10, 20] {
        record(&history, &run("smoke", second, Outcome::Pass, 100.0));
    }
    let mut unstamped = run("smoke", 0, Outcome::Pass, 100.0);
    unstamped.run_id = "no-start".into();
    unstamped.started_at = String::new();
    record(&history, &unstamped);
    record(&history, &run("other", 40, Outcome::Pass, 100.0));

    let all = history.runs(None, 10).unwrap();
    assert_eq!(
        ids(&all),
        [
            "other-00040",
            "smoke-00030",
            "smoke-00020",
            "smoke-00010",
            "no-start"
        ]
    );
    let smoke = history.runs(Some("smoke"), 2).unwrap();
    assert_eq!(ids(&smoke), ["smoke-00030", "smoke-00020"]);
    assert!(history.runs(Some("smoke"), 0).unwrap().is_empty());
}

#[test]
fn recording_a_run_id_again_replaces_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db(&dir)).unwrap();
    let first = run("smoke", 1, Outcome::Fail, 100.0);
    record(&history, &first);
    record(&history, &run("smoke", 2, Outcome::Pass, 100.0));
    let mut again = first.clone();
    again.verdict.outcome = Outcome::Pass;
    again.overall.rps = 42.0;
    let entry = history
        .record(&again, Path::new("elsewhere/report.json"), Some("v2"))
        .unwrap();
    let runs = history.runs(None, 10).unwrap();
    assert_eq!(ids(&runs), ["smoke-00002", "smoke-00001"]);
    assert_eq!(runs[1], entry);
    assert_eq!(
        (runs[1].outcome.as_str(), runs[1].headline.rps),
        ("pass", 42.0)
    );
}

#[test]
fn the_trend_is_the_plans_last_runs_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let history = History::open(&db(&dir)).unwrap();
    for second in 1..=6 {
        record(
            &history,
            &run(
                "smoke",
                second,
                Outcome::Pass,
                100.0 + 10.0 * f64::from(second),
            ),
        );
        record(&history, &run("other", second, Outcome::Pass, 1.0));
    }
    let trend = history.trend("smoke", 4).unwrap();
    assert_eq!(trend.plan_name, "smoke");
    let p95: Vec<Option<f64>> = trend
        .points
        .iter()
        .map(|p| p.headline.latency_p95_ms)
        .collect();
    assert_eq!(p95, [Some(130.0), Some(140.0), Some(150.0), Some(160.0)]);
    assert_eq!(trend.points[3].run_id, "smoke-00006");
    assert_eq!(trend.points[3].outcome, "pass");
    assert!(history.trend("nothing", 4).unwrap().points.is_empty());
}

#[test]
fn a_history_reopened_keeps_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    {
        let history = History::open(&path).unwrap();
        record(&history, &run("smoke", 1, Outcome::Pass, 100.0));
    }
    let history = History::open_existing(&path).unwrap();
    assert_eq!(history.path(), path);
    assert_eq!(ids(&history.runs(None, 10).unwrap()), ["smoke-00001"]);
}

#[test]
fn a_missing_history_is_not_created_by_open_existing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let Err(error) = History::open_existing(&path) else {
        panic!("a missing file opened");
    };
    assert!(matches!(error, HistoryError::Missing { .. }), "{error:?}");
    assert!(error.to_string().contains("history.sqlite"), "{error}");
    assert!(!path.exists());
}

/// The message of opening `path`, which must fail.
fn refusal(path: &Path) -> String {
    match History::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let garbage = b"this is not a database, it is a note\n".repeat(200);
    std::fs::write(&path, &garbage).unwrap();
    let message = refusal(&path);
    assert_eq!(
        message,
        format!(
            "{} is not an infercheck history: file is not a database",
            path.display()
        )
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never reset");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    drop(History::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    assert_eq!(
        refusal(&path),
        format!(
            "{} was written by a newer infercheck: schema 999, this build reads up to {}",
            path.display(),
            schema::CURRENT
        )
    );
}

#[test]
fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let tables = dir.path().join("tables.sqlite");
    let conn = rusqlite::Connection::open(&tables).unwrap();
    conn.execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    drop(conn);
    assert!(
        refusal(&tables).contains("is not an infercheck history: it is another program's database"),
        "{}",
        refusal(&tables)
    );
    let stamped = dir.path().join("stamped.sqlite");
    let conn = rusqlite::Connection::open(&stamped).unwrap();
    conn.pragma_update(None, "application_id", 7).unwrap();
    drop(conn);
    assert!(
        refusal(&stamped).contains("application id 0x7"),
        "{}",
        refusal(&stamped)
    );
}

#[test]
fn a_damaged_row_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.sqlite");
    let history = History::open(&path).unwrap();
    record(&history, &run("smoke", 1, Outcome::Pass, 100.0));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE runs SET requests = -5", []).unwrap();
    drop(conn);
    let error = history.runs(None, 10).unwrap_err();
    assert!(matches!(error, HistoryError::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().starts_with(&format!(
        "run history {} is corrupt: a row does not read",
        path.display()
    )));
}

#[test]
fn opening_retries_only_while_sqlite_is_busy() {
    let busy = || HistoryError::Sqlite {
        path: PathBuf::from("h.sqlite"),
        error: rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        ),
    };
    let mut calls = 0;
    let result = retry_while_busy(|| {
        calls += 1;
        if calls < 3 { Err(busy()) } else { Ok(()) }
    });
    assert!(result.is_ok() && calls == 3, "{result:?} after {calls}");

    let mut calls = 0;
    let result = retry_while_busy(|| {
        calls += 1;
        Err(HistoryError::Missing {
            path: PathBuf::from("h.sqlite"),
        })
    });
    assert!(matches!(result, Err(HistoryError::Missing { .. })) && calls == 1);
}
