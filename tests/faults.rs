//! Integration tests: one per simulator fault, each showing what infercheck
//! measured when the fault hit (the report's error kinds and latency
//! quantiles), checked against what the simulator says it injected (its
//! `/metrics` and counters).
//!
//! Every test that generates load holds `util::exclusive` from before the
//! simulator starts (fault windows are timed from the start) to its last
//! measurement. Waits poll with deadlines; nothing sleeps to synchronise.

use std::future::Future;
use std::time::Duration;

use infercheck::report::StatsBlock;
use infercheck::sim::{Faults, SimCluster, SimConfig, SimServer, Spike};
use infercheck::stats::Distribution;
use serde_json::{Value, json};
use tokio::sync::MutexGuard;
use tokio::time::Instant;

use crate::util::{exact_sim, exclusive, run_holding, sim};

/// Every test finishes well within this, or fails instead of hanging.
const BOUND: Duration = Duration::from_secs(30);

async fn bounded<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(BOUND, test)
        .await
        .expect("test timed out")
}

/// `config` with `faults`.
fn with(faults: Faults, config: SimConfig) -> SimConfig {
    SimConfig { faults, ..config }
}

/// Takes the load lock, then starts the simulator, so that fault windows
/// (timed from its start) fall inside the run that follows at once.
async fn locked_sim(config: SimConfig) -> (MutexGuard<'static, ()>, SimServer) {
    let held = exclusive().await;
    let server = sim(config).await;
    (held, server)
}

/// One constant-rate phase. `top` adds top-level lines (thresholds).
fn constant(rate: u32, duration: &str, stream: bool, timeout: &str, max_tokens: u32) -> String {
    format!(
        "name = 'faults'\n[target]\nstream = {stream}\ntimeout = '{timeout}'\n\
         [workload]\nmax_tokens = {max_tokens}\n\
         [[phases]]\nname = 'p'\nduration = '{duration}'\nload = {{ type = 'constant', rate = {rate} }}\n"
    )
}

/// One closed phase with a single user sending back to back.
fn one_user(duration: &str, max_tokens: u32) -> String {
    format!(
        "name = 'faults'\n[target]\nstream = false\ntimeout = '5s'\n\
         [workload]\nmax_tokens = {max_tokens}\n\
         [[phases]]\nname = 'p'\nduration = '{duration}'\nload = {{ type = 'concurrency', concurrency = 1 }}\n"
    )
}

/// Runs `plan` against `server` (the caller holds the load lock).
async fn run_on(held: &MutexGuard<'static, ()>, plan: &str, server: &SimServer) -> StatsBlock {
    let (result, _dir) = run_holding(held, plan, Some(&server.base_url())).await;
    result.report.overall
}

/// The error count of `kind` (0 when absent).
fn errors(s: &StatsBlock, kind: &str) -> u64 {
    s.errors.get(kind).copied().unwrap_or(0)
}

/// Every request is accounted for as ok or as exactly one error kind.
fn assert_accounted(s: &StatsBlock) {
    let failed: u64 = s.errors.values().sum();
    assert_eq!(s.ok + failed, s.requests, "{:?}", s.errors);
}

async fn get(client: &reqwest::Client, url: String) -> (u16, String) {
    let response = client.get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("read body"))
}

async fn post(client: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("read body");
    (status, serde_json::from_slice(&bytes).expect("JSON body"))
}

async fn metrics(client: &reqwest::Client, server: &SimServer) -> String {
    let (status, text) = get(client, format!("{}/metrics", server.base_url())).await;
    assert_eq!(status, 200, "{text}");
    text
}

/// The sum of the samples of `name` whose labels include every pair of
/// `labels` (Prometheus text format, as the simulator serves it).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let wanted = metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

const INJECTED: &str = "infercheck_sim_injected_faults_total";

/// error_rate 0.25 with three statuses: the report counts each injected
/// error under its HTTP kind, at the configured rate (binomial bounds),
/// and exactly as many as the simulator says it injected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_rate_is_measured_under_the_status_kind_at_the_rate() {
    bounded(async {
        let client = infercheck::tls::client();
        let rate = 0.25;
        for (status, stream, kind) in [
            (429, true, "rate_limited"),
            (503, false, "http_5xx"),
            (500, true, "http_5xx"),
        ] {
            let faults = Faults {
                error_rate: rate,
                error_status: status,
                ..Faults::default()
            };
            let (held, server) = locked_sim(with(faults, exact_sim(2, 1))).await;
            let s = run_on(&held, &constant(250, "600ms", stream, "5s", 2), &server).await;
            assert_eq!(s.requests, 150);
            assert_accounted(&s);
            let injected = errors(&s, kind);
            assert_eq!(injected, s.requests - s.ok, "{status}: {:?}", s.errors);
            let n = s.requests as f64;
            let sd = (n * rate * (1.0 - rate)).sqrt();
            assert!(
                (injected as f64 - n * rate).abs() <= 4.5 * sd,
                "{status}: {injected} of {n} at rate {rate}"
            );
            let text = metrics(&client, &server).await;
            let counted = sample(&text, INJECTED, &[("fault", "error_status")]);
            assert_eq!(counted, injected as f64, "{status}: the sim's own count");
            assert_eq!(server.stats().errors_injected, injected);
            drop(held);
            server.stop().await;
        }
    })
    .await;
}

/// A 400 ms window of 8× slower engine steps inside a 1.5 s run: requests
/// before and after it answer in ~60 ms, those started inside it take
/// several times longer, so the median stays low and the tail shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_spike_shows_in_the_tail_not_the_median() {
    bounded(async {
        let faults = Faults {
            latency_spike: Some(Spike {
                after: Duration::from_millis(500),
                length: Duration::from_millis(400),
                factor: 8.0,
            }),
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(20, 5))).await;
        let s = run_on(&held, &constant(40, "1500ms", false, "5s", 8), &server).await;
        assert_eq!((s.requests, s.ok), (60, 60));
        // 20 + 7 × 5 = 55 ms unspiked; 160 + 7 × 40 = 440 ms wholly inside.
        // About 16 of 60 requests (27%) have their first step in the window.
        let latency = s.quantiles(Distribution::Latency).unwrap();
        assert!(latency.p50 < 100.0, "p50 {}ms", latency.p50);
        assert!(latency.p90 > 150.0, "p90 {}ms", latency.p90);
        assert!(latency.max > 350.0, "max {}ms", latency.max);
        assert!(
            latency.p99 > 4.0 * latency.p50,
            "p99 {}ms vs p50 {}ms",
            latency.p99,
            latency.p50
        );
        drop(held);
        server.stop().await;
    })
    .await;
}

/// Streams broken halfway: truncated (clean end without `[DONE]`), an SSE
/// error event, a dropped connection. Each request is one `stream_error`.
///
/// A disconnect is a `stream_error`, not `connect`: the simulator cuts the
/// connection after the 200 head and half the tokens, so the client
/// (src/load/client.rs, `read_stream`) sees the body fail mid-stream; only
/// a failure before any response head counts as `connect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_streams_are_measured_as_stream_errors() {
    bounded(async {
        let client = infercheck::tls::client();
        let cases = [
            Faults {
                truncate_rate: 1.0,
                ..Faults::default()
            },
            Faults {
                error_event_rate: 1.0,
                ..Faults::default()
            },
            Faults {
                disconnect_rate: 1.0,
                ..Faults::default()
            },
        ];
        for faults in cases {
            let what = format!("{faults:?}");
            let (held, server) = locked_sim(with(faults, exact_sim(5, 2))).await;
            let s = run_on(&held, &constant(40, "500ms", true, "5s", 8), &server).await;
            assert_eq!(s.requests, 20, "{what}");
            assert_eq!(errors(&s, "stream_error"), 20, "{what}: {:?}", s.errors);
            assert_accounted(&s);
            let text = metrics(&client, &server).await;
            assert_eq!(sample(&text, INJECTED, &[("fault", "stream")]), 20.0);
            drop(held);
            server.stop().await;
        }
    })
    .await;
}

/// A non-JSON chunk halfway through every stream: a `decode` error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunks_are_measured_as_decode_errors() {
    bounded(async {
        let faults = Faults {
            malformed_rate: 1.0,
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(5, 2))).await;
        let s = run_on(&held, &constant(40, "500ms", true, "5s", 8), &server).await;
        assert_eq!(s.requests, 20);
        assert_eq!(errors(&s, "decode"), 20, "{:?}", s.errors);
        assert_accounted(&s);
        assert_eq!(server.stats().errors_injected, 20);
        drop(held);
        server.stop().await;
    })
    .await;
}

/// Polls `/metrics` until `done` holds for it (bounded by the test's
/// timeout); returns the text that satisfied it and how long it took.
async fn until_metrics(
    client: &reqwest::Client,
    server: &SimServer,
    done: impl Fn(&str) -> bool,
) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let text = metrics(client, server).await;
        if done(&text) {
            return (text, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

const RUNNING: &str = "vllm:num_requests_running";
const ORPHANED_TOTAL: &str = "infercheck_sim_orphaned_requests_total";
const SUCCESS: &str = "vllm:request_success_total";

/// Requests that take 20 + 63 × 10 = 650 ms against a 100 ms timeout:
/// infercheck counts timeouts and hangs up. With orphan_on_disconnect the
/// simulator keeps decoding every one of them (running stays above zero
/// after the load, so the drain window waits, and they end as `length`);
/// without, it aborts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timed_out_requests_are_orphaned_or_aborted() {
    bounded(async {
        let client = infercheck::tls::client();
        let plan = constant(20, "500ms", true, "100ms", 64);

        let faults = Faults {
            orphan_on_disconnect: true,
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(20, 10))).await;
        let (result, _dir) = run_holding(&held, &plan, Some(&server.base_url())).await;
        let s = &result.report.overall;
        assert_eq!(errors(s, "timeout"), 10, "{:?}", s.errors);
        assert_eq!(s.requests, 10);
        // The last request gave up ~100 ms into its 650 ms: the server was
        // still decoding it when the load stopped, and the run's drain
        // window waited for it.
        let drain = result
            .report
            .observed
            .as_ref()
            .unwrap()
            .drain
            .clone()
            .unwrap();
        assert!(drain.held_at_load_end >= Some(1.0), "{drain:?}");
        assert_eq!(drain.held_at_end, Some(0.0), "{drain:?}");
        let orphans = result.report.server.orphans.as_ref().unwrap();
        assert_eq!(orphans.count, 10.0, "{orphans:?}");
        let (drained, _) = until_metrics(&client, &server, |t| {
            sample(t, RUNNING, &[]) == 0.0 && sample(t, ORPHANED_TOTAL, &[]) >= 10.0
        })
        .await;
        assert_eq!(sample(&drained, ORPHANED_TOTAL, &[]), 10.0);
        assert_eq!(
            sample(&drained, "infercheck_sim_orphaned_requests", &[]),
            0.0
        );
        let length = sample(&drained, SUCCESS, &[("finished_reason", "length")]);
        assert_eq!(length, 10.0, "orphans decode to the end");
        assert_eq!(server.stats().output_tokens, 10 * 64);
        drop(held);
        server.stop().await;

        let (held, server) = locked_sim(exact_sim(20, 10)).await;
        let s = run_on(&held, &plan, &server).await;
        assert_eq!(errors(&s, "timeout"), 10, "{:?}", s.errors);
        let (drained, took) = until_metrics(&client, &server, |t| {
            sample(t, RUNNING, &[]) == 0.0
                && sample(t, SUCCESS, &[("finished_reason", "abort")]) >= 10.0
        })
        .await;
        assert!(took < Duration::from_millis(200), "drained in {took:?}");
        assert_eq!(sample(&drained, ORPHANED_TOTAL, &[]), 0.0);
        assert_eq!(
            sample(&drained, SUCCESS, &[("finished_reason", "abort")]),
            10.0
        );
        assert_eq!(
            sample(&drained, SUCCESS, &[("finished_reason", "length")]),
            0.0
        );
        assert!(server.stats().output_tokens < 10 * 64);
        drop(held);
        server.stop().await;
    })
    .await;
}

/// `/metrics` answers late with metrics_delay and 500 with
/// metrics_error_rate 1, while completions are not slowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_faults_delay_or_fail_the_scrape_only() {
    bounded(async {
        let _held = exclusive().await;
        let client = infercheck::tls::client();
        let delay = Duration::from_millis(300);
        let faults = Faults {
            metrics_delay: delay,
            ..Faults::default()
        };
        let server = sim(with(faults, exact_sim(5, 1))).await;
        let url = server.base_url();
        let scrape = tokio::spawn({
            let (client, url) = (client.clone(), url.clone());
            async move {
                let sent = Instant::now();
                let (status, _) = get(&client, format!("{url}/metrics")).await;
                (status, sent.elapsed())
            }
        });
        let sent = Instant::now();
        let body = json!({"prompt": "x", "max_tokens": 2});
        let (status, _) = post(&client, format!("{url}/v1/completions"), &body).await;
        let completion = sent.elapsed();
        let (scrape_status, scraped_in) = scrape.await.unwrap();
        assert_eq!((status, scrape_status), (200, 200));
        assert!(scraped_in >= delay, "scrape took {scraped_in:?}");
        assert!(completion < delay, "completion took {completion:?}");
        server.stop().await;

        let faults = Faults {
            metrics_error_rate: 1.0,
            ..Faults::default()
        };
        let server = sim(with(faults, exact_sim(5, 1))).await;
        for _ in 0..3 {
            let (status, body) = get(&client, format!("{}/metrics", server.base_url())).await;
            assert_eq!(status, 500, "{body}");
        }
        server.stop().await;
    })
    .await;
}

/// crash_after 5: five requests answered, then the server goes away. The
/// run still ends with a report: five ok, the rest failed, exit code 4.
///
/// The sixth request crashes the server and gets a response whose body
/// fails at once, so hyper drops the connection before the head goes out:
/// the client sees `connect`, as it does for every later request (nothing
/// listens any more). Should the head ever get out first, that one request
/// would be a `stream_error` (a body cut mid-stream), hence the tolerance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_run_is_measured_and_still_reported() {
    bounded(async {
        let faults = Faults {
            crash_after: Some(5),
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(5, 1))).await;
        let plan = format!(
            "thresholds = ['error_rate < 1%']\n{}",
            constant(20, "1s", true, "5s", 4)
        );
        let (result, _dir) = run_holding(&held, &plan, Some(&server.base_url())).await;
        let s = &result.report.overall;
        assert_eq!((s.requests, s.ok), (20, 5), "{:?}", s.errors);
        assert_accounted(s);
        let connect = errors(s, "connect");
        assert_eq!(connect + errors(s, "stream_error"), 15, "{:?}", s.errors);
        assert!(connect >= 14, "{:?}", s.errors);
        assert_eq!(result.exit_code, infercheck::exit::THRESHOLDS_FAILED);
        for file in ["report.json", "report.md", "report.html", "intervals.jsonl"] {
            assert!(result.dir.join(file).is_file(), "{file} written");
        }
        let stats = server.stats();
        assert_eq!((stats.completed, stats.requests), (5, 6));
        drop(held);
        server.stop().await;
    })
    .await;
}

/// cold_start 500 ms: one user's first request waits for the weights, the
/// next ones answer in ~15 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_delays_only_the_first_request() {
    bounded(async {
        let client = infercheck::tls::client();
        let cold = 500.0;
        let faults = Faults {
            cold_start: Duration::from_millis(cold as u64),
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(10, 2))).await;
        let s = run_on(&held, &one_user("1s", 4), &server).await;
        assert_eq!(s.ok, s.requests);
        assert!(s.requests >= 10, "{} requests", s.requests);
        let latency = s.quantiles(Distribution::Latency).unwrap();
        assert!(latency.max >= cold, "max {}ms", latency.max);
        assert!(latency.p50 < cold / 10.0, "p50 {}ms", latency.p50);
        let text = metrics(&client, &server).await;
        let starts = sample(&text, "infercheck_sim_cold_starts_total", &[]);
        assert_eq!(starts, 1.0);
        drop(held);
        server.stop().await;
    })
    .await;
}

/// Faults set at run time through `POST /admin/faults`: the next run sees
/// them, `GET` reflects them, and invalid patches are refused naming the
/// field (leaving the faults as they were).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_set_at_run_time_are_measured() {
    bounded(async {
        let client = infercheck::tls::client();
        let (held, server) = locked_sim(exact_sim(5, 1)).await;
        let admin = format!("{}/admin/faults", server.base_url());
        let plan = constant(20, "500ms", true, "5s", 4);

        let s = run_on(&held, &plan, &server).await;
        assert_eq!((s.requests, s.ok), (10, 10));

        let (status, set) = post(
            &client,
            admin.clone(),
            &json!({"error_rate": 1, "error_status": 503}),
        )
        .await;
        assert_eq!(status, 200, "{set}");
        let (status, text) = get(&client, admin.clone()).await;
        let now: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(status, 200);
        assert_eq!(now, set, "POST answers what GET then reads");
        assert_eq!(
            (now["error_rate"].as_f64(), now["error_status"].as_u64()),
            (Some(1.0), Some(503))
        );
        assert_eq!(now["truncate_rate"], 0.0, "fields not named stay");

        let s = run_on(&held, &plan, &server).await;
        assert_eq!(s.requests, 10);
        assert_eq!(s.errors, [("http_5xx".to_string(), 10)].into());

        for (body, field) in [
            (json!({"error_rate": 1.5}), "error_rate"),
            (json!({"metrics_error_rate": -0.1}), "metrics_error_rate"),
            (json!({"error_status": 200}), "error_status"),
            (json!({"cold_start": "soon"}), "cold_start"),
            (
                json!({"stall": {"after": "1s", "length": "x"}}),
                "stall.length",
            ),
            (
                json!({"latency_spike": {"length": "1s", "factor": -2}}),
                "latency_spike.factor",
            ),
            (json!({"nope": 1}), "nope"),
            (json!({"error_rate": "high"}), "error_rate"),
        ] {
            let (status, answer) = post(&client, admin.clone(), &body).await;
            assert_eq!(status, 400, "{body}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(field), "{body}: {message}");
        }
        let (_, text) = get(&client, admin.clone()).await;
        let after: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(after, now, "refused patches change nothing");

        let (status, _) = post(&client, admin, &json!({"error_rate": 0})).await;
        assert_eq!(status, 200);
        let s = run_on(&held, &plan, &server).await;
        assert_eq!((s.requests, s.ok), (10, 10));
        drop(held);
        server.stop().await;
    })
    .await;
}

/// `POST /model/unload`: completions answer 503 (measured as http_5xx);
/// `/model/load`: served again, the first request paying a new cold start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloading_and_loading_the_model_is_measured() {
    bounded(async {
        let client = infercheck::tls::client();
        let cold = 200.0;
        let faults = Faults {
            cold_start: Duration::from_millis(cold as u64),
            ..Faults::default()
        };
        let (held, server) = locked_sim(with(faults, exact_sim(5, 1))).await;
        let base = server.base_url();
        let cold_starts = |text: &str| sample(text, "infercheck_sim_cold_starts_total", &[]);
        let completion = json!({"prompt": "x", "max_tokens": 2});

        // The first request ever pays the initial load.
        let (status, _) = post(&client, format!("{base}/v1/completions"), &completion).await;
        assert_eq!(status, 200);
        assert_eq!(cold_starts(&metrics(&client, &server).await), 1.0);

        let (status, answer) = post(&client, format!("{base}/model/unload"), &json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(
            answer,
            json!({"model": "sim-llama-8b", "loaded": false, "changed": true})
        );
        let (_, models) = get(&client, format!("{base}/v1/models")).await;
        let models: Value = serde_json::from_str(&models).unwrap();
        assert_eq!(models["data"], json!([]), "an unloaded model is not listed");
        let s = run_on(&held, &constant(20, "500ms", false, "5s", 2), &server).await;
        assert_eq!(s.requests, 10);
        assert_eq!(s.errors, [("http_5xx".to_string(), 10)].into());

        let (status, answer) = post(&client, format!("{base}/model/load"), &json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(answer["changed"], true);
        let (_, answer) = post(&client, format!("{base}/model/load"), &json!({})).await;
        assert_eq!(answer["changed"], false, "already loaded");
        let s = run_on(&held, &one_user("600ms", 2), &server).await;
        assert_eq!(s.ok, s.requests);
        let latency = s.quantiles(Distribution::Latency).unwrap();
        assert!(latency.max >= cold, "max {}ms", latency.max);
        assert!(latency.p50 < cold / 10.0, "p50 {}ms", latency.p50);
        assert_eq!(cold_starts(&metrics(&client, &server).await), 2.0);

        let (status, _) = post(
            &client,
            format!("{base}/model/unload"),
            &json!({"model": "other"}),
        )
        .await;
        assert_eq!(status, 404);
        drop(held);
        server.stop().await;
    })
    .await;
}

/// A `template` plan against the native `POST /generate`, counting output
/// tokens through `tokens_pointer`; and the shapes of the other native
/// endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_endpoints_serve_template_plans() {
    bounded(async {
        let client = infercheck::tls::client();
        let (held, server) = locked_sim(exact_sim(5, 1)).await;
        let base = server.base_url();
        let plan = "name = 'native'\n[target]\napi = 'template'\ntimeout = '5s'\n\
            [target.template]\npath = '/generate'\n\
            body = '{\"prompt\": \"{{prompt}}\", \"max_tokens\": {{max_tokens}}}'\n\
            tokens_pointer = '/num_generated'\n\
            [workload]\nmax_tokens = 7\n\
            [[phases]]\nname = 'p'\nduration = '500ms'\nload = { type = 'constant', rate = 20 }\n";
        let s = run_on(&held, plan, &server).await;
        assert_eq!((s.requests, s.ok), (10, 10), "{:?}", s.errors);
        assert_eq!(s.output_tokens, 70);
        assert_eq!(s.tokens_counted_from_chunks, 0);
        assert_eq!(server.stats().completed, 10);

        let (status, g) = post(
            &client,
            format!("{base}/generate"),
            &json!({"prompt": "one two three", "max_tokens": 5, "strategy": "greedy"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(g["num_generated"], 5);
        assert_eq!(g["model"], "sim-llama-8b");
        assert_eq!(g["token_ids"].as_array().unwrap().len(), 5);
        assert_eq!(g["text"].as_str().unwrap().split_whitespace().count(), 5);

        let (status, t) = post(
            &client,
            format!("{base}/tokenize"),
            &json!({"text": "Hello world hello"}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(t["num_tokens"], 3);
        let ids = t["token_ids"].as_array().unwrap();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|id| id.as_u64().unwrap() < 32_000));

        let (status, b) = post(
            &client,
            format!("{base}/batch/tokenize"),
            &json!({"texts": ["a b", "c", ""]}),
        )
        .await;
        assert_eq!(status, 200);
        let counts: Vec<u64> = b["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["num_tokens"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [2, 1, 0]);
        assert_eq!(b["results"][0]["token_ids"].as_array().unwrap().len(), 2);

        let (status, b) = post(
            &client,
            format!("{base}/batch/generate"),
            &json!({"prompts": ["one two", "three"], "max_tokens": 4}),
        )
        .await;
        assert_eq!(status, 200);
        let results = b["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        for r in results {
            assert_eq!(r["num_generated"], 4);
            assert_eq!(r["token_ids"].as_array().unwrap().len(), 4);
            assert_eq!(r["model"], "sim-llama-8b");
        }

        let (status, e) = post(&client, format!("{base}/generate"), &json!({"text": "x"})).await;
        assert_eq!(status, 400, "{e}");
        let (status, _) = post(
            &client,
            format!("{base}/generate"),
            &json!({"prompt": "x", "max_tokens": 0}),
        )
        .await;
        assert_eq!(status, 400);
        drop(held);
        server.stop().await;
    })
    .await;
}

/// Polls for a value: reads `url` at most [`POLLS`] times, [`POLL_WAIT`]
/// apart, until the value `read` takes from the answer satisfies `done`.
/// Returns the last value read (the caller asserts on it).
async fn poll_value(
    client: &reqwest::Client,
    url: &str,
    read: impl Fn(&str) -> f64,
    done: impl Fn(f64) -> bool,
) -> f64 {
    let mut value = f64::NAN;
    for _ in 0..POLLS {
        let (status, text) = get(client, url.to_string()).await;
        assert_eq!(status, 200, "{url}: {text}");
        value = read(&text);
        if done(value) {
            break;
        }
        tokio::time::sleep(POLL_WAIT).await;
    }
    value
}

const POLLS: usize = 250;
const POLL_WAIT: Duration = Duration::from_millis(20);
const KV_USAGE: &str = "vllm:kv_cache_usage_perc";
const FB_USED: &str = "DCGM_FI_DEV_FB_USED";
const FB_FREE: &str = "DCGM_FI_DEV_FB_FREE";

/// POSTs a faults patch that must be taken; returns the answer.
async fn patch_faults(client: &reqwest::Client, base: &str, body: Value) -> Value {
    let (status, answer) = post(client, format!("{base}/admin/faults"), &body).await;
    assert_eq!(status, 200, "{body}: {answer}");
    answer
}

/// POSTs a faults patch that must be refused with a message naming `field`.
async fn refused(client: &reqwest::Client, base: &str, body: Value, field: &str) {
    let (status, answer) = post(client, format!("{base}/admin/faults"), &body).await;
    assert_eq!(status, 400, "{body}: {answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(field), "{body}: {message}");
}

/// kv_squeeze 0.97 set at run time: with no request in flight the KV gauge
/// reads at least 0.97 (the squeezed blocks count as used, against the
/// whole cache), a request still fits in what is left, and clearing the
/// squeeze gives the blocks back. Shares outside [0, 1) are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kv_squeeze_fills_the_kv_gauge_until_cleared() {
    bounded(async {
        let client = infercheck::tls::client();
        let server = sim(exact_sim(5, 1)).await;
        let base = server.base_url();
        let url = format!("{base}/metrics");
        let kv = |text: &str| sample(text, KV_USAGE, &[]);
        assert_eq!(poll_value(&client, &url, kv, |v| v == 0.0).await, 0.0);

        let set = patch_faults(&client, &base, json!({"kv_squeeze": 0.97})).await;
        assert_eq!(set["kv_squeeze"], 0.97, "{set}");
        let (_, text) = get(&client, format!("{base}/admin/faults")).await;
        let now: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(now, set, "GET shows what POST set");
        let squeezed = poll_value(&client, &url, kv, |v| v >= 0.97).await;
        assert!((0.97..0.98).contains(&squeezed), "{squeezed}");

        let (status, answer) = post(
            &client,
            format!("{base}/v1/completions"),
            &json!({"prompt": "one two three", "max_tokens": 4}),
        )
        .await;
        assert_eq!(status, 200, "72 blocks are left: {answer}");
        assert!(kv(&metrics(&client, &server).await) >= 0.97);

        refused(&client, &base, json!({"kv_squeeze": 1}), "kv_squeeze").await;
        refused(&client, &base, json!({"kv_squeeze": -0.5}), "kv_squeeze").await;
        patch_faults(&client, &base, json!({"kv_squeeze": 0})).await;
        let cleared = poll_value(&client, &url, kv, |v| v == 0.0).await;
        assert_eq!(cleared, 0.0, "the blocks are given back");
        server.stop().await;
    })
    .await;
}

/// gpu_memory_climb_mib_per_s sent to one engine behind a router: that
/// engine's GPU shows more framebuffer used at every read (FB_FREE less by
/// as much) while the other engine's stays put; 0 releases the extra.
/// Negative rates are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_memory_climb_grows_fb_used_of_that_engine_until_cleared() {
    bounded(async {
        let client = infercheck::tls::client();
        let config = SimConfig {
            dcgm_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..exact_sim(5, 1)
        };
        let cluster = SimCluster::start("127.0.0.1:0".parse().unwrap(), config, 2)
            .await
            .expect("the cluster starts");
        let dcgm = cluster.dcgm_url().unwrap();
        let engine = cluster.backends()[0].base_url();
        let on = |pod: &'static str| move |text: &str| sample(text, FB_USED, &[("pod", pod)]);
        let (_, text) = get(&client, dcgm.clone()).await;
        let (base, other) = (on("engine-0")(&text), on("engine-1")(&text));
        let total = base + sample(&text, FB_FREE, &[("pod", "engine-0")]);
        assert!(base > 0.0 && base < total, "{text}");

        refused(
            &client,
            &engine,
            json!({"gpu_memory_climb_mib_per_s": -1}),
            "gpu_memory_climb_mib_per_s",
        )
        .await;
        let set = patch_faults(
            &client,
            &engine,
            json!({"gpu_memory_climb_mib_per_s": 1000}),
        )
        .await;
        assert_eq!(set["gpu_memory_climb_mib_per_s"], 1000.0, "{set}");
        let first = poll_value(&client, &dcgm, on("engine-0"), |v| v > base).await;
        assert!(first > base, "{first} after {base}");
        let second = poll_value(&client, &dcgm, on("engine-0"), |v| v > first).await;
        assert!(second > first && second <= total, "{second} after {first}");
        let (_, text) = get(&client, dcgm.clone()).await;
        let free = sample(&text, FB_FREE, &[("pod", "engine-0")]);
        assert_eq!(on("engine-0")(&text) + free, total, "FB_FREE falls as much");
        assert_eq!(on("engine-1")(&text), other, "the other engine's GPU stays");

        patch_faults(&client, &engine, json!({"gpu_memory_climb_mib_per_s": 0})).await;
        let released = poll_value(&client, &dcgm, on("engine-0"), |v| v == base).await;
        assert_eq!(released, base, "the extra memory is released");
        cluster.stop().await;
    })
    .await;
}
