//! Shared test helpers: servers on 127.0.0.1:0, plans in temp folders,
//! in-process runs, the binary under test, and a real Prometheus
//! ([`prometheus`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use infercheck::cli::RunArgs;
use infercheck::runner::{RunResult, run_plan};
use infercheck::sim::{SimConfig, SimServer};

pub mod prometheus;

/// Tests that put load on a server take this lock, so timing-sensitive
/// measurements never share the 2-core machine with another load test.
pub async fn exclusive() -> tokio::sync::MutexGuard<'static, ()> {
    LOAD.lock().await
}

static LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The same lock for tests outside a runtime (those that run the binary).
pub fn exclusive_blocking() -> tokio::sync::MutexGuard<'static, ()> {
    LOAD.blocking_lock()
}

/// Starts a simulator on a free loopback port.
pub async fn sim(config: SimConfig) -> SimServer {
    SimServer::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("the simulator starts")
}

/// A simulator whose latency is exactly predictable: no slowdown with load.
pub fn exact_sim(ttft_ms: u64, per_token_ms: u64) -> SimConfig {
    SimConfig {
        ttft: Duration::from_millis(ttft_ms),
        per_token: Duration::from_millis(per_token_ms),
        slowdown_per_running: 0.0,
        ..SimConfig::default()
    }
}

/// Writes `toml` as plan.toml in `dir` and returns its path.
pub fn write_plan(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("plan.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Runs a plan (TOML text) in-process against `target`.
pub async fn run(toml: &str, target: Option<&str>) -> (RunResult, tempfile::TempDir) {
    let held = exclusive().await;
    run_holding(&held, toml, target).await
}

/// [`run`] for a test that already holds [`exclusive`], because its
/// measurement spans more than the run (e.g. a Prometheus scraping before
/// and after it).
pub async fn run_holding(
    _held: &tokio::sync::MutexGuard<'static, ()>,
    toml: &str,
    target: Option<&str>,
) -> (RunResult, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), toml);
    let mut args = RunArgs::new(plan.to_str().unwrap(), dir.path().join("results"));
    args.target = target.map(str::to_owned);
    let result = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("run failed: {}", f.message));
    (result, dir)
}

/// The run folder under a results folder holding one run (besides the
/// history file), once it exists.
pub fn run_folder(results: &Path) -> Option<PathBuf> {
    std::fs::read_dir(results)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

/// A loopback address nothing listens on.
pub fn dead_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

pub fn binary() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_infercheck"))
}

/// The cross-check row named `check` of a report's agreement table.
pub fn agreement_row<'a>(
    report: &'a infercheck::report::Report,
    check: &str,
) -> &'a infercheck::report::CrossCheck {
    report
        .server
        .agreement
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| {
            panic!(
                "no {check:?} row: {:#?} / not checked: {:?}",
                report.server.agreement, report.server.not_checked
            )
        })
}

/// The sum of a counter family on a simulator's /metrics (its own ground
/// truth: requests, tokens, prefix-cache hits).
pub async fn sim_counter(base_url: &str, family: &str) -> f64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
