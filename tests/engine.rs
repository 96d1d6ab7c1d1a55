//! Integration tests: the load engine against the simulator — rate and
//! latency accuracy, coordinated omission, error kinds, load models.

use std::time::Duration;

use infercheck::report::{Outcome, ThresholdStatus};
use infercheck::sim::{Faults, SimConfig, Stall};
use infercheck::stats::Distribution;

use crate::util::{dead_address, exact_sim, exclusive, run, run_holding, sim};

fn constant_plan(rate: u32, duration: &str, stream: bool, max_tokens: u32, extra: &str) -> String {
    format!(
        "name = 'accuracy'\n{extra}\n[target]\nstream = {stream}\ntimeout = '10s'\n\
         [workload]\nmax_tokens = {max_tokens}\n\
         [[phases]]\nname = 'steady'\nduration = '{duration}'\nload = {{ type = 'constant', rate = {rate} }}\n"
    )
}

/// 120 req/s against a server set to answer in exactly 50ms + 19×5ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_and_latency_match_what_the_server_was_set_to() {
    let server = sim(exact_sim(50, 5)).await;
    let (result, _dir) = run(
        &constant_plan(120, "15s", false, 20, ""),
        Some(&server.base_url()),
    )
    .await;
    let phase = &result.report.phases[0].stats;
    assert_eq!(phase.requests, 1800, "every scheduled arrival is sent");
    assert!(
        (phase.rps - 120.0).abs() / 120.0 < 0.01,
        "rps {}",
        phase.rps
    );
    let lag = phase.quantiles(Distribution::ScheduleLag).unwrap();
    assert!(lag.p99 < 5.0, "schedule lag p99 {}ms", lag.p99);
    // Tokens come out at the ends of 5 ms engine steps: a request waits up
    // to one step to be scheduled and its first token up to one more.
    let latency = phase.quantiles(Distribution::Latency).unwrap();
    let (low, high) = (145.0, 155.0);
    for (name, value) in [("p50", latency.p50), ("p99", latency.p99)] {
        assert!(
            value >= low * 0.99 && value <= high * 1.03,
            "{name} {value}ms vs {low}..{high}ms"
        );
    }
    assert_eq!(phase.errors.values().sum::<u64>(), 0);
    assert_eq!(phase.output_tokens, 1800 * 20);
    assert_eq!(
        phase.tokens_counted_from_chunks, 0,
        "usage is read from the response"
    );
    server.stop().await;
}

/// Streaming: TTFT, ITL and TPOT follow the server's settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_ttft_itl_and_tpot_are_measured_per_chunk() {
    let server = sim(exact_sim(40, 8)).await;
    let (result, _dir) = run(
        &constant_plan(20, "3s", true, 16, ""),
        Some(&server.base_url()),
    )
    .await;
    let s = &result.report.overall;
    // 40 ms, plus up to one 8 ms step to be scheduled and one to end on.
    let ttft = s.quantiles(Distribution::Ttft).unwrap();
    assert!((39.0..=58.0).contains(&ttft.p50), "ttft p50 {}", ttft.p50);
    let itl = s.quantiles(Distribution::Itl).unwrap();
    assert_eq!(
        itl.count,
        60 * 15,
        "one gap per content chunk after the first"
    );
    assert!((itl.p50 - 8.0).abs() < 1.5, "itl p50 {}", itl.p50);
    let tpot = s.quantiles(Distribution::Tpot).unwrap();
    assert!((tpot.mean - 8.0).abs() < 1.0, "tpot mean {}", tpot.mean);
    let speed = s.quantiles(Distribution::TokensPerS).unwrap();
    assert!(
        speed.p50 > 50.0 && speed.p50 < 110.0,
        "tokens/s {}",
        speed.p50
    );
    assert_eq!(s.output_tokens, 60 * 16);
    server.stop().await;
}

/// A server that freezes for 2 s: requests scheduled during the freeze
/// wait behind the in-flight cap. Latency from the intended time shows the
/// stall for all of them; service time, measured from the late send, hides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_latency_from_intended_not_only_in_service_time() {
    let config = SimConfig {
        faults: Faults {
            stall: Some(Stall {
                after: Duration::from_secs(1),
                length: Duration::from_secs(2),
            }),
            ..Faults::default()
        },
        ..exact_sim(10, 2)
    };
    // The stall is placed from the simulator's start: hold the run lock
    // first, or waiting for another test's run could let it pass unseen.
    let held = exclusive().await;
    let server = sim(config).await;
    let plan = constant_plan(50, "5s", false, 5, "")
        .replace("timeout = '10s'", "timeout = '10s'\nmax_in_flight = 10");
    let (result, _dir) = run_holding(&held, &plan, Some(&server.base_url())).await;
    let s = &result.report.overall;
    let latency = s.quantiles(Distribution::Latency).unwrap();
    let service = s.quantiles(Distribution::ServiceTime).unwrap();
    assert!(
        latency.p99 > 1_500.0,
        "latency p99 {}ms must show the 2 s stall",
        latency.p99
    );
    assert!(latency.p95 > 1_000.0, "latency p95 {}ms", latency.p95);
    assert!(
        service.p95 < 300.0,
        "service p95 {}ms: only the 10 requests in flight saw the stall",
        service.p95
    );
    assert!(s.late_sends >= 50, "late sends {}", s.late_sends);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_could_not_run_and_sends_no_load() {
    // The pre-flight request finds nothing listening: exit 3 with the
    // reason, before any load (and so before any results folder).
    let plan = constant_plan(20, "1s", true, 8, "thresholds = ['error_rate < 1%']");
    let dir = tempfile::tempdir().unwrap();
    let path = crate::util::write_plan(dir.path(), &plan);
    let mut args =
        infercheck::cli::RunArgs::new(path.to_str().unwrap(), dir.path().join("results"));
    let dead = dead_address();
    args.target = Some(dead.clone());
    let failure = infercheck::runner::run_plan(args).await.unwrap_err();
    assert_eq!(failure.code, infercheck::exit::COULD_NOT_RUN);
    assert!(
        failure.message.contains(&dead) && failure.message.contains("did not answer"),
        "{}",
        failure.message
    );
    assert!(!dir.path().join("results").exists());
}

async fn error_kinds_for(
    config: SimConfig,
    stream: bool,
    timeout: &str,
) -> std::collections::BTreeMap<String, u64> {
    let server = sim(config).await;
    let plan = constant_plan(10, "1s", stream, 8, "")
        .replace("timeout = '10s'", &format!("timeout = '{timeout}'"));
    let (result, _dir) = run(&plan, Some(&server.base_url())).await;
    server.stop().await;
    result.report.overall.errors.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_is_counted_under_its_kind() {
    let faults = |f: Faults| SimConfig {
        faults: f,
        ..exact_sim(5, 1)
    };
    let cases: Vec<(SimConfig, bool, &str, &str)> = vec![
        (
            faults(Faults {
                error_rate: 1.0,
                error_status: 503,
                ..Faults::default()
            }),
            true,
            "5s",
            "http_5xx",
        ),
        (
            faults(Faults {
                error_rate: 1.0,
                error_status: 429,
                ..Faults::default()
            }),
            true,
            "5s",
            "rate_limited",
        ),
        (
            faults(Faults {
                truncate_rate: 1.0,
                ..Faults::default()
            }),
            true,
            "5s",
            "stream_error",
        ),
        (
            faults(Faults {
                error_event_rate: 1.0,
                ..Faults::default()
            }),
            true,
            "5s",
            "stream_error",
        ),
        (exact_sim(2_000, 1), false, "200ms", "timeout"),
    ];
    for (config, stream, timeout, kind) in cases {
        let errors = error_kinds_for(config, stream, timeout).await;
        assert_eq!(errors.get(kind), Some(&10), "{kind}: {errors:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_has_one_step_per_level_and_throughput_rises_with_concurrency() {
    let server = sim(exact_sim(20, 2)).await;
    let plan = "[target]\nstream = true\n[workload]\nmax_tokens = 10\n\
        [[phases]]\nname = 'sweep'\nload = { type = 'sweep', levels = [1, 4, 8], step_duration = '1s' }\n";
    let (result, _dir) = run(plan, Some(&server.base_url())).await;
    let steps = &result.report.phases[0].steps;
    let labels: Vec<&str> = steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["c=1", "c=4", "c=8"]);
    let rps: Vec<f64> = steps.iter().map(|s| s.stats.rps).collect();
    assert!(rps[0] < rps[1] && rps[1] < rps[2], "{rps:?}");
    assert!(
        (rps[2] / rps[0]) > 5.0,
        "8 users should do ~8× one user: {rps:?}"
    );
    assert_eq!(result.report.phases[0].peak_concurrency, 8);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_poisson_and_users_send_what_their_schedule_says() {
    let server = sim(exact_sim(5, 1)).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 2\n\
        [[phases]]\nname = 'ramp'\nduration = '4s'\nload = { type = 'ramp', from = 10, to = 50 }\n\
        [[phases]]\nname = 'poisson'\nduration = '3s'\nload = { type = 'poisson', rate = 40 }\n\
        [[phases]]\nname = 'users'\nduration = '2s'\nload = { type = 'users', users = 3, think = '100ms..100ms' }\n";
    let (result, _dir) = run(plan, Some(&server.base_url())).await;
    let requests: Vec<u64> = result
        .report
        .phases
        .iter()
        .map(|p| p.stats.requests)
        .collect();
    assert!(
        (119..=121).contains(&requests[0]),
        "ramp 10→50 over 4s sends 120: {requests:?}"
    );
    assert!(
        (90..=150).contains(&requests[1]),
        "poisson 40/s over 3s: {requests:?}"
    );
    // Each user: ~9ms request + 100ms think → ~18 requests each in 2 s.
    assert!((45..=60).contains(&requests[2]), "users: {requests:?}");
    assert_eq!(result.report.verdict.outcome, Outcome::Pass);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_models_split_by_weight_with_their_own_thresholds() {
    let server = sim(exact_sim(5, 1).serving(&["a".into(), "b".into()])).await;
    let plan = "[target]\nstream = false\n[workload]\nmax_tokens = 2\n\
        [[models]]\nname = 'a'\nweight = 70\nthresholds = ['p95(latency) < 5s']\n\
        [[models]]\nname = 'b'\nweight = 30\nthresholds = ['p95(latency) < 1ms']\n\
        [[phases]]\nname = 'mix'\nduration = '3s'\nload = { type = 'constant', rate = 300 }\n";
    let (result, _dir) = run(plan, Some(&server.base_url())).await;
    let models = &result.report.models;
    let share = models[0].stats.requests as f64 / result.report.overall.requests as f64;
    assert!((share - 0.7).abs() < 0.05, "model a share {share}");
    let by_scope: Vec<(String, ThresholdStatus)> = result
        .report
        .thresholds
        .iter()
        .map(|t| (t.scope.label(), t.status))
        .collect();
    assert_eq!(
        by_scope,
        [
            ("model a".to_owned(), ThresholdStatus::Pass),
            ("model b".to_owned(), ThresholdStatus::Fail)
        ]
    );
    assert_eq!(result.exit_code, infercheck::exit::THRESHOLDS_FAILED);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intervals_are_flushed_every_second_as_the_run_goes() {
    let server = sim(exact_sim(5, 1)).await;
    let (result, _dir) = run(
        &constant_plan(10, "3s", true, 4, ""),
        Some(&server.base_url()),
    )
    .await;
    let text = std::fs::read_to_string(result.dir.join("intervals.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!((3..=5).contains(&lines.len()), "{} intervals", lines.len());
    let total: u64 = lines.iter().map(|l| l["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, 30);
    assert_eq!(lines[0]["phase"], "steady");
    server.stop().await;
}

/// abort_on_fail: a failing run-wide threshold stops the run after its
/// grace period instead of letting it run its full length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_a_failing_run_early() {
    let plan = constant_plan(
        20,
        "60s",
        false,
        2,
        "abort_on_fail = true\nthresholds = ['error_rate < 1%']",
    );
    let server = sim(SimConfig {
        faults: Faults {
            error_rate: 1.0,
            ..Faults::default()
        },
        ..exact_sim(5, 1)
    })
    .await;
    let (result, _dir) = run(&plan, Some(&server.base_url())).await;
    server.stop().await;
    assert!(
        result.report.duration_s < 10.0,
        "ran {}s of 60s",
        result.report.duration_s
    );
    assert_eq!(result.exit_code, infercheck::exit::THRESHOLDS_FAILED);
    assert_eq!(result.report.verdict.outcome, Outcome::Fail);
    assert!(
        result.report.verdict.reasons[0].contains("aborted on a failing threshold"),
        "{:?}",
        result.report.verdict.reasons
    );
}
