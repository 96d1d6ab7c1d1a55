//! The weekly regression against a baseline (issue 13's "Done means"):
//! weekly-regression at 120 req/s, shortened; a second run with the
//! simulator's per-token delay raised 30 % regresses p95 latency and
//! TPOT with intervals that exclude no change and fails (exit 4); a run
//! with identical settings is within noise on every metric (exit 0); a
//! baseline of another plan is refused unless forced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use infercheck::cli::RunArgs;
use infercheck::report::{RegressionStatus, Report};
use infercheck::runner::run_plan;
use infercheck::sim::SimConfig;

use crate::util::{binary, exclusive};

/// weekly-regression's 10 minutes at 1/40: 15 s at 120 req/s, 1,800
/// requests a run.
const SCALE: f64 = 0.025;

async fn weekly(
    out: &Path,
    per_token: Duration,
    baseline: Option<&Path>,
) -> (i32, Report, PathBuf) {
    let mut args = RunArgs::new("weekly-regression", out.to_owned());
    args.duration_scale = SCALE;
    args.simulator = Some(Box::new(SimConfig {
        per_token,
        ..SimConfig::default()
    }));
    args.baseline = baseline.map(|p| p.display().to_string());
    let result = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("run failed: {}", f.message));
    (result.exit_code, result.report, result.dir)
}

fn status_of(report: &Report, key: &str) -> RegressionStatus {
    let r = report
        .regression
        .as_ref()
        .expect("compared with the baseline");
    r.rows
        .iter()
        .find(|row| row.key == key)
        .unwrap_or_else(|| panic!("no row {key}: {:#?}", r.rows))
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_decode_regresses_and_identical_settings_are_within_noise() {
    let _held = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let per_token = SimConfig::default().per_token;
    // The plan's own thresholds are judged as ever (`rps >= 118` can miss
    // on a 15 s run: the last responses' tail counts in its duration);
    // only the comparison is under test here.
    let (_, base, base_dir) = weekly(&out, per_token, None).await;
    assert!(base.regression.is_none());

    let (code, same, same_dir) = weekly(&out, per_token, Some(&base_dir)).await;
    let regression = same.regression.as_ref().unwrap();
    let noisy: Vec<_> = regression
        .rows
        .iter()
        .filter(|r| r.status != RegressionStatus::WithinNoise)
        .map(|r| (&r.key, r.change, r.interval, r.status))
        .collect();
    assert!(noisy.is_empty(), "identical settings moved: {noisy:?}");
    assert!(regression.rows.len() >= 17, "{:#?}", regression.rows);
    assert!(
        !same.verdict.reasons.iter().any(|r| r.contains("regressed")),
        "{:?}",
        same.verdict.reasons
    );
    assert_eq!(code, base.verdict.exit_code, "{:?}", same.verdict);
    eprintln!(
        "{}",
        std::fs::read_to_string(same_dir.join("report.md"))
            .unwrap()
            .split("## Performance Results")
            .next()
            .unwrap()
    );

    let slower = per_token.mul_f64(1.3);
    let (code, slow, slow_dir) = weekly(&out, slower, Some(&base_dir)).await;
    assert_eq!(code, 4, "{:?}", slow.verdict);
    for key in ["p95(latency)", "p95(tpot)"] {
        assert_eq!(status_of(&slow, key), RegressionStatus::Regressed, "{key}");
    }
    let p95 = slow
        .regression
        .as_ref()
        .unwrap()
        .rows
        .iter()
        .find(|r| r.key == "p95(tpot)")
        .unwrap();
    let (lo, hi) = p95.interval.unwrap();
    // A decode step is the per-token delay × (1 + slowdown × running): the
    // delay alone makes TPOT 30 % longer, and slower streams keep more
    // requests running, so the change is at least that, and the interval
    // holds its own point estimate.
    let change = p95.change.unwrap();
    assert!(
        change > 0.30 && lo > 0.25 && lo <= change && change <= hi,
        "{change}: {lo}..{hi}"
    );
    assert!(
        slow.verdict
            .reasons
            .iter()
            .any(|r| r.contains("P95 Latency")),
        "{:?}",
        slow.verdict.reasons
    );
    let md = std::fs::read_to_string(slow_dir.join("report.md")).unwrap();
    eprintln!("{}", md.split("## Performance Results").next().unwrap());
    assert!(md.contains("## Regression vs Baseline"), "{md}");
    assert!(md.contains("FAIL regressed"));

    // The same judgement from the command line, on the files.
    let compare = |a: &Path, b: &Path, extra: &[&str]| {
        binary()
            .arg("compare")
            .arg(a)
            .arg(b)
            .args(extra)
            .output()
            .unwrap()
    };
    let slow_vs_base = compare(&base_dir, &slow_dir, &["--format", "json"]);
    assert_eq!(slow_vs_base.status.code(), Some(4));
    let json: serde_json::Value = serde_json::from_slice(&slow_vs_base.stdout).unwrap();
    let row = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "p95(latency)")
        .unwrap();
    assert_eq!(row["status"], "regressed");
    assert!(row["interval"][0].as_f64().unwrap() > 0.0);
    let same_vs_base = compare(&base_dir, &same_dir, &[]);
    assert_eq!(same_vs_base.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&same_vs_base.stdout).contains("PASS: no metric regressed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_of_another_plan_is_refused_unless_forced() {
    let _held = exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let mut args = RunArgs::new("smoke", out.clone());
    args.duration_scale = 0.2;
    let smoke = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    let mut args = RunArgs::new("weekly-regression", out.clone());
    args.duration_scale = 0.005;
    args.baseline = Some(smoke.dir.display().to_string());
    let refused = run_plan(args.clone()).await.unwrap_err();
    assert_eq!(refused.code, 2);
    assert!(
        refused.message.contains("plan `smoke`") && refused.message.contains("--force-baseline"),
        "{}",
        refused.message
    );
    // Refused before any request: no run folder but the baseline's.
    assert_eq!(
        std::fs::read_dir(&out)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        1
    );
    args.force_baseline = true;
    let forced = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    let r = forced.report.regression.unwrap();
    assert_eq!(r.forced.len(), 1, "{:?}", r.forced);
    let output = binary()
        .arg("compare")
        .arg(&smoke.dir)
        .arg(&forced.dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not comparable"));
}
