//! Integration tests for the server's own laws among the client↔server
//! cross-checks (issue 10, items 1 and 4): Little's law over the requests
//! in the system and over the waiting ones, the queue-time share, the two
//! forms of the prefix-cache hit rate and the requests ended by finish
//! reason — each PASS on a simulator that tells the truth, and FAIL, by
//! how much, when its telemetry lies (`SimConfig::telemetry_faults`) or
//! another tenant shares it. The engine profiles' new queries are read
//! from the real captures in place.

use infercheck::report::{CheckUnit, CrossCheck, Reference, Report};
use infercheck::sample::exposition::{Exposition, Sample, parse};
use infercheck::sample::queries::builtin;
use infercheck::sample::scrape::evaluate;
use infercheck::sim::{SimConfig, SimServer};

use crate::util;

const IN_SYSTEM: &str = "Little's law (in system)";
const WAITING: &str = "Little's law (waiting)";
const QUEUE_SHARE: &str = "Queue-time share";
const PREFIX: &str = "Prefix-cache hit rate: lookups vs prompt tokens";
const ABNORMAL: &str = "Requests ended abnormally";

/// 20 requests a second for 4 s at a server that runs 4 at a time, each
/// 20 ms + 24 × 10 ms: it serves ~15 a second, so a queue builds and
/// drains after the load.
const QUEUEING: &str = "name = 'little'\n\
    [workload]\nmax_tokens = 24\nprompts = [{ tokens = 32 }]\n\
    [[phases]]\nname = 'queueing'\nduration = '4s'\nload = { type = 'constant', rate = 20 }\n";

fn queueing_sim() -> SimConfig {
    SimConfig {
        max_num_seqs: 4,
        ..util::exact_sim(20, 10)
    }
}

/// [`QUEUEING`] with the server sampled every 250 ms: a sampling bound
/// of one request (±1 of ~10 held) instead of 1.5·Δ·√n/T (±2.2 at 1 s).
fn sampled_every_250ms() -> String {
    format!("{QUEUEING}[observe]\ninterval = '250ms'\n")
}

async fn run_against(config: SimConfig) -> (Report, SimServer) {
    run_plan_against(QUEUEING, config).await
}

async fn run_plan_against(plan: &str, config: SimConfig) -> (Report, SimServer) {
    let held = util::exclusive().await;
    let server = util::sim(config).await;
    let (result, _dir) = util::run_holding(&held, plan, Some(&server.base_url())).await;
    (result.report, server)
}

fn row<'a>(report: &'a Report, check: &str) -> &'a CrossCheck {
    util::agreement_row(report, check)
}

/// The relative difference the detail states, e.g. "(-48.9%)".
fn stated_pct(c: &CrossCheck) -> f64 {
    let text = c.detail.split(" (").nth(2).unwrap_or_default();
    let number = text.split('%').next().unwrap_or_default();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no percentage in {:?}", c.detail))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truthful_simulator_keeps_littles_law_and_every_new_check_passes() {
    let (report, server) = run_against(queueing_sim()).await;
    for check in [IN_SYSTEM, WAITING, QUEUE_SHARE, PREFIX, ABNORMAL] {
        let c = row(&report, check);
        eprintln!(
            "{check}: reference {:.4} server {:.4} [{}] {}",
            c.client, c.server_low, c.tolerance, c.detail
        );
        assert!(c.pass, "{c:#?}");
    }
    let system = row(&report, IN_SYSTEM);
    assert_eq!(
        (system.unit, system.reference),
        (CheckUnit::Requests, Reference::Server)
    );
    // The queue built: the law was checked on requests that waited.
    let waiting = row(&report, WAITING);
    assert!(waiting.client > 0.5, "{waiting:?}");
    assert!(system.client > waiting.client, "{system:?}");
    let share = row(&report, QUEUE_SHARE);
    assert!(
        share.server_low > 0.1 && share.server_low <= share.client,
        "{share:?}"
    );
    let abnormal = row(&report, ABNORMAL);
    assert!(
        abnormal.detail.contains("length ")
            && abnormal.detail.contains("abort 0")
            && abnormal
                .detail
                .contains("stop and length were not compared"),
        "{abnormal:?}"
    );
    let truth = server.stats();
    assert!(
        abnormal
            .detail
            .contains(&format!("length {}", truth.completed)),
        "{abnormal:?} vs {truth:?}"
    );
    // Every row, old and new, agrees.
    assert!(
        report.server.agreement.iter().all(|c| c.pass),
        "{:#?}",
        report.server.agreement
    );
    // And every row is what docs/report-schema.json documents.
    let schema = crate::report::strict(crate::report::schema());
    let rows = &schema["$defs"]["server_checks"]["properties"]["agreement"];
    let validator = jsonschema::validator_for(rows).unwrap();
    let written = serde_json::to_value(&report.server.agreement).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(written.to_string().contains("\"reference\":\"server\""));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_gauge_that_leaves_out_half_fails_littles_law_and_says_by_how_much() {
    let mut config = queueing_sim();
    config.telemetry_faults.running_underreport = 0.5;
    let (report, server) = run_plan_against(&sampled_every_250ms(), config).await;
    let system = row(&report, IN_SYSTEM);
    eprintln!("{}: {} [{}]", system.check, system.detail, system.tolerance);
    assert!(!system.pass, "{system:?}");
    assert!(system.detail.contains("held fewer requests"), "{system:?}");
    // Half of the running requests are left out: the sum falls by half
    // the running share of it (4 running of the ~4 + queue in system).
    let running = report
        .observed
        .as_ref()
        .and_then(|o| o.value("running"))
        .and_then(|v| v.stats.avg)
        .unwrap();
    let all = running * 2.0
        + report
            .observed
            .as_ref()
            .unwrap()
            .value("server_waiting_all")
            .unwrap()
            .stats
            .avg
            .unwrap();
    let expected = -(running / all) * 100.0;
    let pct = stated_pct(system);
    assert!(
        pct < -10.0 && (pct - expected).abs() < 10.0,
        "stated {pct}%, about {expected:.1}% expected: {system:?}"
    );
    // The waiting gauge and the queue-time histogram still tell the truth.
    assert!(row(&report, WAITING).pass);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_time_histogram_that_under_reports_fails_the_waiting_law() {
    let mut config = queueing_sim();
    config.telemetry_faults.queue_time_misreport = -0.5;
    let (report, server) = run_against(config).await;
    let waiting = row(&report, WAITING);
    eprintln!(
        "{}: {} [{}]",
        waiting.check, waiting.detail, waiting.tolerance
    );
    assert!(!waiting.pass, "{waiting:?}");
    assert!(waiting.detail.contains("held more requests"), "{waiting:?}");
    // λ·W̄ is half the truth, so the gauges hold twice it: +100 %.
    let pct = stated_pct(waiting);
    assert!((60.0..=140.0).contains(&pct), "{pct}%: {waiting:?}");
    assert!(
        row(&report, IN_SYSTEM).pass,
        "the e2e histogram is truthful"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_time_longer_than_the_first_token_fails_the_queue_share() {
    let mut config = queueing_sim();
    config.telemetry_faults.queue_time_misreport = 1.0;
    let (report, server) = run_against(config).await;
    let share = row(&report, QUEUE_SHARE);
    eprintln!("{}: {} [{}]", share.check, share.detail, share.tolerance);
    assert!(!share.pass, "{share:?}");
    assert!(
        share.server_low > share.client
            && share.detail.contains("exceeds the time to first token by"),
        "{share:?}"
    );
    assert!(
        !row(&report, WAITING).pass,
        "doubled waits fail the law too"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_aborted_requests_fail_the_finish_reason_row() {
    let held = util::exclusive().await;
    let server = util::sim(queueing_sim()).await;
    let url = format!("{}/v1/completions", server.base_url());
    // The other tenant: streams it gives up on after the first chunk.
    let tenant = async {
        let client = reqwest::Client::new();
        for _ in 0..40 {
            let mut response = client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"prompt": "another tenant", "max_tokens": 200, "stream": true}"#)
                .send()
                .await
                .unwrap();
            let _ = response.chunk().await;
        }
    };
    let base = server.base_url();
    let run = util::run_holding(&held, QUEUEING, Some(&base));
    let ((result, _dir), ()) = tokio::join!(run, tenant);
    let report = &result.report;
    let abnormal = row(report, ABNORMAL);
    eprintln!(
        "{}: {} [{}]",
        abnormal.check, abnormal.detail, abnormal.tolerance
    );
    assert!(!abnormal.pass, "{abnormal:?}");
    assert_eq!(abnormal.client, 0.0, "the run itself lost nothing");
    assert!(abnormal.server_low >= 5.0, "{abnormal:?}");
    assert!(
        abnormal.detail.contains(&format!(
            "ended {:.0} more requests abnormally",
            abnormal.server_low
        )),
        "{abnormal:?}"
    );
    server.stop().await;
}

// --- the engine profiles' new queries on the real captures, in place ---

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/metrics");

/// A profile's value on one capture, as its increase from zero.
fn captured(profile: &str, file: &str, name: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
    let now = parse(&text).unwrap();
    let zero = Exposition {
        samples: now
            .samples
            .iter()
            .map(|s| Sample {
                value: 0.0,
                ..s.clone()
            })
            .collect(),
    };
    let queries = builtin(profile).unwrap();
    let q = queries.iter().find(|q| q.name == name)?;
    let value = evaluate(q.scrape.as_ref()?, &now, Some((&zero, 1.0)))?;
    Some(q.unit.normalise(value))
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 1e-9 * b.abs().max(1.0))
}

/// A profile, a capture, the values it must read from it, and the queries
/// the capture has no metrics for.
type Capture = (
    &'static str,
    &'static str,
    &'static [(&'static str, f64)],
    &'static [&'static str],
);

#[test]
fn the_profiles_read_latency_sums_queue_times_and_finish_reasons_from_the_captures() {
    let cases: &[Capture] = &[
        (
            "vllm",
            "vllm-v1-cpu-queued.txt",
            &[
                ("server_waiting_all", 12.0),
                ("server_e2e_sum", 48.46429181098938),
                ("server_e2e_count", 16.0),
                ("server_queue_sum", 27.864515803998074),
                ("server_queue_count", 16.0),
                ("server_ttft_sum", 30.45319366455078),
                ("server_ttft_count", 20.0),
                ("server_prompt_tokens_cached", 0.0),
                ("server_finished_stop", 0.0),
                ("server_finished_length", 16.0),
                ("server_finished_error", 0.0),
                ("server_finished_repetition", 0.0),
            ],
            &[],
        ),
        (
            "sglang",
            "sglang.txt",
            &[
                ("server_waiting_all", 2826.0),
                ("server_e2e_sum", 3.116093850019932e6),
                ("server_e2e_count", 11228.0),
                ("server_ttft_sum", 2.3518979474117756e6),
                ("server_ttft_count", 11008.0),
            ],
            // Older SGLang: no queue-time histogram.
            &["server_queue_sum", "server_queue_count"],
        ),
        (
            "tgi",
            "tgi.txt",
            &[
                ("server_waiting_all", 0.0),
                ("server_e2e_sum", 541.2140316159999),
                ("server_e2e_count", 109.0),
                ("server_queue_sum", 295.275961956),
                ("server_queue_count", 109.0),
            ],
            &[],
        ),
        (
            "triton",
            "triton.txt",
            &[
                ("server_e2e_sum", 1.327965),
                ("server_e2e_count", 3.0),
                ("server_queue_sum", 145e-6),
                ("server_queue_count", 3.0),
            ],
            &[],
        ),
    ];
    for (profile, file, values, absent) in cases {
        for &(name, want) in *values {
            let got = captured(profile, file, name);
            assert!(
                close(got, want),
                "{file}: {name} = {got:?}, file says {want}"
            );
        }
        for name in *absent {
            assert_eq!(captured(profile, file, name), None, "{file}: {name}");
        }
    }
    // The by-source alternative of the cached prompt tokens (V0/V1 mix has
    // neither: the lookup form alone).
    assert!(close(
        captured(
            "vllm",
            "vllm-v1-cpu-under-load.txt",
            "server_prompt_tokens_cached"
        ),
        0.0
    ));
    // Little's law on the captured counters of a queued vLLM: 16 finished
    // requests spent 48.5 s, 27.9 s of it waiting; TTFT covers the wait.
    let mean = |sum: &str, count: &str| {
        captured("vllm", "vllm-v1-cpu-queued.txt", sum).unwrap()
            / captured("vllm", "vllm-v1-cpu-queued.txt", count).unwrap()
    };
    let (queue, ttft) = (
        mean("server_queue_sum", "server_queue_count"),
        captured("vllm", "vllm-v1-cpu-queued.txt", "server_ttft_sum").unwrap() / 16.0,
    );
    assert!(
        queue <= ttft,
        "queue {queue} s ≤ TTFT {ttft} s per queued request"
    );
}
