//! Load shapes and stops beyond rate and time: a request-count stop
//! (async blast's TOTAL_REQUESTS), users spawned at a rate (Locust's
//! --spawn-rate), bursts, a pause that sends nothing while the samplers
//! go on, and the command-line and environment overrides suites pass
//! (`--concurrency`, `--requests`, `INFERCHECK_*`, `--set`). Counts are
//! checked against the simulator's own counters.

use infercheck::cli::RunArgs;
use infercheck::runner::run_plan;
use infercheck::stats::Distribution;

use crate::util::{binary, exact_sim, exclusive, exclusive_blocking, run_folder, sim, write_plan};

/// Requests the simulator answered, from its own /metrics.
async fn served(base_url: &str) -> f64 {
    crate::util::sim_counter(base_url, "vllm:request_success_total").await
}

/// The built-in async-blast plan with suite-style overrides sends exactly
/// the requests asked, never more than the concurrency at once, then stops
/// (the phase ends when its count is done, long before its 10 min cap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_blast_sends_exactly_its_requests_at_its_concurrency_and_stops() {
    let _held = exclusive().await;
    let server = sim(exact_sim(10, 1)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = RunArgs::new("async-blast", dir.path().join("results"));
    args.target = Some(server.base_url());
    args.concurrency = Some(12);
    args.requests = Some(150);
    args.from_env = vec!["requests".to_owned()];
    let result = run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    let report = &result.report;
    let phase = &report.phases[0];
    assert_eq!(report.overall.requests, 150);
    assert_eq!(report.overall.ok, 150);
    assert_eq!(served(&server.base_url()).await, 150.0);
    assert_eq!(phase.peak_concurrency, 12);
    assert_eq!(phase.planned_requests, Some(150));
    // 150 requests of ~75 ms (10 ms + 63 × 1 ms) in rounds of 12: about a
    // second; the phase's clock stops with its last request.
    assert!(phase.stats.duration_s < 5.0, "{}", phase.stats.duration_s);
    assert!(
        (phase.stats.rps * phase.stats.duration_s - 150.0).abs() < 1e-6,
        "rps {} over {}s",
        phase.stats.rps,
        phase.stats.duration_s
    );
    assert_eq!(
        report.plan["overrides"],
        serde_json::json!(["--concurrency 12", "INFERCHECK_REQUESTS=150"])
    );
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(md.contains("150 of 150 requests in"), "{md}");
    server.stop().await;
}

/// A count and a duration: whichever comes first ends the phase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duration_reached_before_the_count_ends_the_phase() {
    let server = sim(exact_sim(10, 1)).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
        [[phases]]\nname = 'short'\nduration = '1s'\nrequests = 1000\nload = { type = 'constant', rate = 10 }\n\
        [[phases]]\nname = 'after'\nduration = '1s'\nload = { type = 'constant', rate = 10 }\n";
    let (result, _dir) = crate::util::run(plan, Some(&server.base_url())).await;
    let phases = &result.report.phases;
    assert_eq!(phases[0].stats.requests, 10);
    assert!(phases[0].models.is_empty() || phases[0].models[0].stats.requests == 10);
    assert_eq!(phases[1].stats.requests, 10);
    assert!(
        (phases[1].start_s - 1.0).abs() < 0.1,
        "{}",
        phases[1].start_s
    );
    server.stop().await;
}

/// A pause sends nothing for its 10 s while the server is still sampled
/// every second; the phases around it run as planned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_sends_nothing_and_the_server_is_still_sampled() {
    let server = sim(exact_sim(10, 1)).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
        [[phases]]\nname = 'before'\nduration = '2s'\nload = { type = 'constant', rate = 10 }\n\
        [[phases]]\nname = 'cool-down'\nduration = '10s'\nload = { type = 'pause' }\n\
        [[phases]]\nname = 'after'\nduration = '2s'\nload = { type = 'constant', rate = 10 }\n";
    let (result, _dir) = crate::util::run(plan, Some(&server.base_url())).await;
    let report = &result.report;
    let pause = &report.phases[1];
    assert_eq!(pause.load, "pause");
    assert_eq!(pause.stats.requests, 0);
    assert!((pause.end_s - pause.start_s - 10.0).abs() < 0.1);
    let running = pause
        .sampled("running")
        .unwrap_or_else(|| panic!("no running series in {:?}", pause.sampled));
    assert!(
        running.stats.samples >= 9,
        "{} samples in a 10 s pause",
        running.stats.samples
    );
    // The server is idle once the requests sent just before the pause are
    // done: every sample after its first second reads 0 running.
    let series = report.series.iter().find(|s| s.name == "running").unwrap();
    let idle = series.within(pause.start_s + 1.0, pause.end_s).stats();
    assert!(idle.samples >= 8, "{idle:?}");
    assert_eq!(
        idle.max,
        Some(0.0),
        "{:?}",
        series.within(pause.start_s, pause.end_s)
    );
    let quiet: Vec<_> = report
        .intervals
        .iter()
        .filter(|i| i.phase == "cool-down")
        .collect();
    assert!(quiet.len() >= 9 && quiet.iter().all(|i| i.requests == 0));
    assert_eq!(
        report.phases[0].stats.requests + report.phases[2].stats.requests,
        40
    );
    assert_eq!(served(&server.base_url()).await, 40.0);
    server.stop().await;
}

/// A burst sends its size at once, every period: 3 bursts of 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_sends_its_size_at_once_every_period() {
    let server = sim(exact_sim(50, 1)).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
        [[phases]]\nname = 'bursts'\nduration = '3s'\nload = { type = 'burst', size = 8, every = '1s' }\n";
    let (result, _dir) = crate::util::run(plan, Some(&server.base_url())).await;
    let phase = &result.report.phases[0];
    assert_eq!(phase.load, "burst of 8 every 1s");
    assert_eq!(phase.stats.requests, 24);
    assert_eq!(phase.peak_concurrency, 8, "each burst is in flight at once");
    let lag = phase.stats.quantiles(Distribution::ScheduleLag).unwrap();
    assert!(
        lag.p99 < 20.0,
        "a burst leaves together: lag p99 {}ms",
        lag.p99
    );
    assert_eq!(served(&server.base_url()).await, 24.0);
    server.stop().await;
}

/// Users spawned at 4/s start 250 ms apart and stop, newest first, 250 ms
/// apart before the end: over 3 s with ~100 ms requests the four users
/// are active 3 + 2.5 + 2 + 1.5 = 9 user-seconds, not 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_spawned_at_a_rate_ramp_in_and_out() {
    let server = sim(exact_sim(37, 1)).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 64\n\
        [[phases]]\nname = 'ramp'\nduration = '3s'\nload = { type = 'users', users = 4, spawn_rate = 4 }\n";
    let (result, _dir) = crate::util::run(plan, Some(&server.base_url())).await;
    let phase = &result.report.phases[0];
    assert_eq!(phase.load, "4 users, think 0ms–0ms, spawned 4/s");
    let latency = phase.stats.quantiles(Distribution::Latency).unwrap();
    // Each user sends back to back inside its window.
    let expected: f64 = [3.0, 2.5, 2.0, 1.5]
        .iter()
        .map(|w| (w * 1000.0 / latency.mean).ceil())
        .sum();
    let sent = phase.stats.requests as f64;
    assert!(
        (sent - expected).abs() <= 4.0,
        "{sent} sent, {expected} expected at {}ms a request",
        latency.mean
    );
    assert_eq!(phase.peak_concurrency, 4);
    server.stop().await;
}

const TINY: &str = "[target]\nstream = false\n[workload]\nmax_tokens = 4\n\
    [[phases]]\nname = 'p'\nduration = '30s'\nload = { type = 'constant', rate = 5 }\n";

/// From the command line and the environment, through the binary: the
/// values are applied, validated like the file's, and recorded.
#[test]
fn overrides_from_flags_and_the_environment_are_applied_and_recorded() {
    let _held = exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), TINY);
    let out = dir.path().join("results");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = binary();
        command
            .arg("run")
            .arg(&plan)
            .args(["--quiet", "--no-history", "--out"]);
        command.arg(&out).args(args);
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    };
    let output = run(
        &[
            "--set",
            "phases.0.load.rate=20",
            "--set",
            "workload.max_tokens=2",
        ],
        &[("INFERCHECK_REQUESTS", "7")],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let folder = run_folder(&out).unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["overall"]["requests"], 7);
    assert_eq!(
        report["plan"]["overrides"],
        serde_json::json!([
            "INFERCHECK_REQUESTS=7",
            "--set phases.0.load.rate=20",
            "--set workload.max_tokens=2"
        ])
    );
    assert_eq!(report["plan"]["phases"][0]["load"]["rate"], 20.0);
    assert_eq!(report["plan"]["workload"]["max_tokens"], 2);

    // A bad value is the plan's own error, located, naming the override;
    // nothing is sent (the plan fails before the run folder exists).
    std::fs::remove_dir_all(&out).unwrap();
    let bad = run(&["--set", "phases.0.load.rate=fast"], &[]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--set phases.0.load.rate=fast") && stderr.contains("rate"),
        "{stderr}"
    );
    assert!(run_folder(&out).is_none());
    let missing = run(&["--set", "phases.3.duration=1s"], &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("past the end"));
    // The command line refuses what clap can judge alone.
    for args in [
        &["--rate", "0"][..],
        &["--rate", "5", "--concurrency", "3"],
        &["--requests", "0"],
    ] {
        let refused = run(args, &[]);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
    }
}

/// Mistakes in the new shapes fail before any request, located.
#[test]
fn invalid_stops_and_shapes_are_plan_errors() {
    let phase = |body: &str| format!("[[phases]]\nname = 'p'\n{body}\n");
    for (body, expected) in [
        (
            "requests = 0\nload = { type = 'concurrency', concurrency = 2 }",
            "requests must be at least 1",
        ),
        (
            "requests = 10\nload = { type = 'sweep', levels = [1, 2], step_duration = '1s' }",
            "a sweep's steps end by time",
        ),
        (
            "duration = '5s'\nrequests = 3\nload = { type = 'pause' }",
            "a pause sends nothing",
        ),
        (
            "duration = '5s'\nload = { type = 'burst', size = 4, every = '0s' }",
            "never ends",
        ),
        (
            "duration = '5s'\nload = { type = 'burst', size = 0, every = '1s' }",
            "at least 1",
        ),
        ("load = { type = 'constant', rate = 5 }", "or `requests`"),
    ] {
        let error = infercheck::plan::resolve_source(
            "p.toml",
            &phase(body),
            None,
            &infercheck::plan::Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains(expected), "{body}: {error}");
        assert!(error.contains("p.toml:"), "located: {error}");
    }
}
