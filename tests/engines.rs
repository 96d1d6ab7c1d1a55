//! Integration tests for engine profiles and the drain window (issue 10):
//! the simulator exporting SGLang's names fills the resource and queue
//! rows as vLLM's names do, found by probing /metrics; an overload whose
//! clients time out reports orphaned tasks and drain time agreeing with
//! the simulator's own counts, and none when the server aborts what its
//! clients abandon.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use infercheck::report::{BackendStatus, Report, ThresholdStatus};
use infercheck::sim::{Faults, SimConfig};

use crate::util;

/// Queues on purpose: 4 requests run at once, 30/s arrive.
fn queueing_plan(naming: &str) -> String {
    format!(
        "name = 'naming'\n\
         [workload]\nmax_tokens = 16\nprompts = [{{ tokens = 16 }}]\n\
         [[phases]]\nname = 'load'\nduration = '4s'\nload = {{ type = 'constant', rate = 30 }}\n\
         [simulator]\nmax_num_seqs = 4\nttft = '20ms'\nper_token = '10ms'\nslowdown = 0.0\n\
         metric_naming = '{naming}'\n"
    )
}

/// The server values that have samples.
fn sampled(report: &Report) -> Vec<String> {
    let observed = report.observed.as_ref().expect("sampled");
    let mut names: Vec<String> = observed
        .values
        .iter()
        .filter(|v| v.stats.samples > 0)
        .map(|v| v.name.clone())
        .collect();
    names.sort();
    names
}

fn table_labels(md: &str, heading: &str) -> Vec<String> {
    let section = md.split(heading).nth(1).unwrap_or_default();
    section
        .lines()
        .skip(3) // blank, header row, separator
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('|').nth(1).unwrap_or_default().trim().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_names_fill_the_resource_and_queue_rows_as_vllm_names_do() {
    let (vllm, _a) = util::run(&queueing_plan("vllm"), None).await;
    let (sglang, _b) = util::run(&queueing_plan("sglang"), None).await;
    let engine = |r: &Report| r.observed.as_ref().and_then(|o| o.engine.clone()).unwrap();
    assert_eq!(engine(&vllm.report).name, "vllm");
    let found = engine(&sglang.report);
    assert_eq!(found.label, "SGLang");
    assert!(found.chosen.starts_with("detected at"), "{found:?}");
    for name in ["running", "queue_depth", "kv_usage", "gen_tokens_rate"] {
        assert!(sampled(&sglang.report).contains(&name.to_owned()), "{name}");
    }
    let queue_max = |r: &Report| {
        r.observed
            .as_ref()
            .unwrap()
            .value("queue_depth")
            .unwrap()
            .stats
            .max
            .unwrap()
    };
    assert!(queue_max(&vllm.report) > 0.0 && queue_max(&sglang.report) > 0.0);
    let md = |dir: &std::path::Path| std::fs::read_to_string(dir.join("report.md")).unwrap();
    let (md_vllm, md_sglang) = (md(&vllm.dir), md(&sglang.dir));
    for heading in [
        "## Queue and Task Metrics",
        "## System Resource Utilization",
    ] {
        assert_eq!(
            table_labels(&md_vllm, heading),
            table_labels(&md_sglang, heading),
            "{heading}"
        );
    }
    assert!(table_labels(&md_sglang, "## Queue and Task Metrics").contains(&"Queue Depth".into()));
    assert!(
        md_sglang.contains("- **Engine**: SGLang (detected at"),
        "{md_sglang}"
    );
}

/// 20 requests in 2 s at a server that finishes 2 at a time in ~330 ms,
/// each given up by its client after 200 ms.
const OVERLOAD: &str = "name = 'overload'\nthresholds = ['orphaned_tasks == 0', 'drain_time < 30s']\n\
    [target]\ntimeout = '200ms'\n\
    [workload]\nmax_tokens = 30\nprompts = [{ tokens = 16 }]\n\
    [[phases]]\nname = 'overload'\nduration = '2s'\nload = { type = 'constant', rate = 10 }\n";

fn overload_sim(orphan_on_disconnect: bool) -> SimConfig {
    SimConfig {
        max_num_seqs: 2,
        faults: Faults {
            orphan_on_disconnect,
            ..Faults::default()
        },
        ..util::exact_sim(30, 10)
    }
}

fn status(report: &Report, expression: &str) -> ThresholdStatus {
    report
        .thresholds
        .iter()
        .find(|t| t.expression == expression)
        .unwrap_or_else(|| panic!("{expression} judged"))
        .status
}

/// Polls the simulator until `done`: the wall-clock instant it last held
/// a request (running or waiting), having held one.
async fn last_held(server: &infercheck::sim::SimServer, done: &AtomicBool) -> Option<SystemTime> {
    let mut last = None;
    for _ in 0..5_000 {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let s = server.stats();
        if s.running + s.waiting > 0 {
            last = Some(SystemTime::now());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_work_and_drain_time_agree_with_the_simulators_counts() {
    let held = util::exclusive().await;
    let server = util::sim(overload_sim(true)).await;
    let done = AtomicBool::new(false);
    let run = async {
        let ran = util::run_holding(&held, OVERLOAD, Some(&server.base_url())).await;
        done.store(true, Ordering::Relaxed);
        ran
    };
    let ((result, _dir), emptied) = tokio::join!(run, last_held(&server, &done));
    let truth = server.stats();
    let report = &result.report;
    assert!(
        truth.orphaned_total >= 10,
        "the overload orphaned work: {truth:?}"
    );
    assert_eq!((truth.running, truth.waiting), (0, 0), "drained: {truth:?}");
    let orphans = report.server.orphans.as_ref().expect("orphans measured");
    assert_eq!(
        orphans.count, truth.orphaned_total as f64,
        "{orphans:?} vs {truth:?}"
    );
    assert_eq!(orphans.held_at_drain_end, Some(0.0));
    // The drain ends at the first sample (every 1 s) that finds nothing
    // held: at most one interval after the simulator emptied.
    let drain = report.observed.as_ref().unwrap().drain.as_ref().unwrap();
    let started: SystemTime = chrono::DateTime::parse_from_rfc3339(&report.started_at)
        .unwrap()
        .into();
    let drained_at =
        started + Duration::from_secs_f64(drain.load_end_s + drain.drain_time_s.unwrap());
    let emptied = emptied.expect("the simulator held requests");
    let late = drained_at.duration_since(emptied).map(|d| d.as_secs_f64());
    let late = late.unwrap_or_else(|e| -e.duration().as_secs_f64());
    assert!(
        (-0.05..=1.1).contains(&late),
        "drain seen {late:.3}s after the simulator emptied: {drain:?}"
    );
    // And its lower bound, the last sample that found work held, came
    // before the simulator emptied.
    let held_until = started + Duration::from_secs_f64(drain.load_end_s + drain.held_until_s);
    assert!(
        held_until <= emptied + Duration::from_millis(50),
        "held until {held_until:?}, emptied {emptied:?}: {drain:?}"
    );
    assert!(
        drain.held_until_s > 0.0,
        "work was held after the load: {drain:?}"
    );
    assert_eq!(status(report, "orphaned_tasks == 0"), ThresholdStatus::Fail);
    assert_eq!(status(report, "drain_time < 30s"), ThresholdStatus::Pass);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_aborts_abandoned_requests_has_no_orphans() {
    let held = util::exclusive().await;
    let server = util::sim(overload_sim(false)).await;
    let (result, _dir) = util::run_holding(&held, OVERLOAD, Some(&server.base_url())).await;
    let truth = server.stats();
    assert_eq!(truth.orphaned_total, 0);
    assert!(truth.aborted >= 10, "the server aborted: {truth:?}");
    let orphans = result
        .report
        .server
        .orphans
        .as_ref()
        .expect("orphans measured");
    assert_eq!(orphans.count, 0.0, "{orphans:?}");
    assert_eq!(orphans.server_aborted, Some(truth.aborted as f64));
    assert_eq!(
        status(&result.report, "orphaned_tasks == 0"),
        ThresholdStatus::Pass
    );
    server.stop().await;
}

/// A steady run the simulator serves without queueing.
const STEADY: &str = "name = 'agreement'\nthresholds = ['observability_agreement >= 100%']\n\
    [workload]\nmax_tokens = 24\nprompts = [{ tokens = 32 }]\n\
    [[phases]]\nname = 'steady'\nduration = '4s'\nload = { type = 'constant', rate = 20 }\n";

fn agreement_rows(report: &Report) -> Vec<(&str, bool, &str)> {
    report
        .server
        .agreement
        .iter()
        .map(|c| (c.check.as_str(), c.pass, c.detail.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulators_metrics_agree_with_the_client_on_every_cross_check() {
    let held = util::exclusive().await;
    let server = util::sim(util::exact_sim(20, 10)).await;
    let (result, dir) = util::run_holding(&held, STEADY, Some(&server.base_url())).await;
    let rows = agreement_rows(&result.report);
    let names: Vec<&str> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        names,
        [
            "Requests completed",
            "Output tokens",
            "Prompt tokens",
            "TTFT p50",
            "TTFT p95",
            "E2E latency p50",
            "E2E latency p95",
            "Little's law (in system)",
            "Little's law (waiting)",
            "Queue-time share",
            "Prefix-cache hit rate: lookups vs prompt tokens",
            "Requests ended abnormally",
        ],
        "{:?}",
        result.report.server.not_checked
    );
    assert!(rows.iter().all(|r| r.1), "{rows:#?}");
    let truth = server.stats();
    let tokens = &result.report.server.agreement[1];
    assert_eq!(tokens.server_low, truth.output_tokens as f64);
    assert_eq!(tokens.client, truth.output_tokens as f64);
    assert_eq!(
        status(&result.report, "observability_agreement >= 100%"),
        ThresholdStatus::Pass
    );
    let md = std::fs::read_to_string(
        crate::util::run_folder(&dir.path().join("results"))
            .unwrap()
            .join("report.md"),
    )
    .unwrap();
    assert!(md.contains("### Client ↔ Server Agreement"), "{md}");
    // The engine section shows the server's TTFT p95 as its bucket.
    assert!(md.contains("- **Server TTFT p95**: ("), "{md}");
    assert!(!md.contains("Server TTFT p95 (peak)"), "{md}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_that_under_report_tokens_by_ten_percent_fail_the_token_check() {
    let held = util::exclusive().await;
    let config = SimConfig {
        faults: Faults {
            token_underreport: 0.1,
            ..Faults::default()
        },
        ..util::exact_sim(20, 10)
    };
    let server = util::sim(config).await;
    let (result, _dir) = util::run_holding(&held, STEADY, Some(&server.base_url())).await;
    let rows = agreement_rows(&result.report);
    let tokens = rows.iter().find(|r| r.0 == "Output tokens").unwrap();
    assert!(!tokens.1, "{tokens:?}");
    assert!(
        tokens.2.contains("(-10.0%)") && tokens.2.contains("under-reporting"),
        "{tokens:?}"
    );
    assert!(
        rows.iter().filter(|r| r.0 != "Output tokens").all(|r| r.1),
        "{rows:#?}"
    );
    assert_eq!(
        status(&result.report, "observability_agreement >= 100%"),
        ThresholdStatus::Fail
    );
    server.stop().await;
}

/// Two engines behind the router, one per model.
async fn two_model_stack(
    misroute: Option<infercheck::sim::Misroute>,
) -> (
    infercheck::sim::RouterServer,
    Vec<infercheck::sim::SimServer>,
) {
    let mut engines = Vec::new();
    for model in ["model-a", "model-b"] {
        let config = util::exact_sim(20, 5).serving(&[model.to_owned()]);
        engines.push(util::sim(config).await);
    }
    let urls = engines.iter().map(|e| e.base_url()).collect();
    let tracing = std::sync::Arc::new(infercheck::sim::Tracing::default());
    let router = infercheck::sim::RouterServer::start_misrouting(
        "127.0.0.1:0".parse().unwrap(),
        urls,
        tracing,
        misroute,
    )
    .await
    .unwrap();
    (router, engines)
}

const TWO_MODELS: &str = "name = 'routing'\n\
    [[models]]\nname = 'model-a'\nweight = 50\n[[models]]\nname = 'model-b'\nweight = 50\n\
    [workload]\nmax_tokens = 8\nprompts = [{ tokens = 8 }]\n\
    [[phases]]\nname = 'mixed'\nduration = '3s'\nload = { type = 'constant', rate = 20 }\n";

fn model_rows(report: &Report) -> Vec<(String, bool, f64, f64, String)> {
    report
        .server
        .agreement
        .iter()
        .filter(|c| c.check.starts_with("Requests for "))
        .map(|c| {
            (
                c.check.clone(),
                c.pass,
                c.client,
                c.server_low,
                c.detail.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_only_the_router_the_engines_behind_it_are_found_and_sampled() {
    let held = util::exclusive().await;
    let (router, engines) = two_model_stack(None).await;
    let (result, _dir) = util::run_holding(&held, TWO_MODELS, Some(&router.base_url())).await;
    let observed = result.report.observed.as_ref().unwrap();
    let mut urls: Vec<String> = engines.iter().map(|e| e.base_url()).collect();
    let mut found = observed.backends.clone();
    urls.sort();
    found.sort();
    assert_eq!(found, urls);
    assert!(
        observed
            .backends_from
            .as_deref()
            .unwrap()
            .contains("router_backend_in_flight")
    );
    let engine = observed.engine.as_ref().unwrap();
    assert_eq!(engine.name, "vllm");
    // Not on the simulator's /metrics: read from its GET /version.
    let version = format!("{}-infercheck-sim", env!("CARGO_PKG_VERSION"));
    assert_eq!(engine.version.as_deref(), Some(version.as_str()));
    for name in [
        "running",
        "kv_usage",
        "gen_tokens_rate",
        "requests_completed",
    ] {
        let v = observed.value(name).unwrap_or_else(|| panic!("{name}"));
        assert!(v.stats.samples > 0, "{name} sampled from the engines");
    }
    let truth: u64 = engines.iter().map(|e| e.stats().completed).sum();
    let finished = observed.value("requests_completed").unwrap().value.unwrap();
    assert_eq!(finished, truth as f64, "summed over both engines");
    let rows = model_rows(&result.report);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.1 && r.2 == r.3 && r.2 > 0.0),
        "{rows:#?}"
    );
    assert_eq!(rows.iter().map(|r| r.3).sum::<f64>(), truth as f64);
    // Each engine's own row: what it finished, exactly, and its gauges.
    let routing = &result.report.routing;
    assert_eq!(routing.backends.len(), 2);
    for engine in &engines {
        let row = routing
            .backends
            .iter()
            .find(|r| r.url == format!("{}/metrics", engine.base_url()))
            .unwrap_or_else(|| panic!("{:?}", routing.backends));
        assert_eq!(row.requests, Some(engine.stats().completed as f64));
        assert_eq!(row.status, BackendStatus::Ok, "{row:?}");
        assert_eq!(row.models.len(), 1, "one model per engine: {row:?}");
        assert!(row.running_max.is_some_and(|r| r >= 1.0), "{row:?}");
        assert!(row.kv_usage_max.is_some() && row.tokens_per_s_avg.is_some());
    }
    let split = routing.model_split.as_ref().expect("a split check");
    assert!(split.pass, "{}", split.detail);
    let echo = routing.response_model.as_ref().unwrap();
    assert!(echo.pass && echo.other == 0 && echo.checked == result.report.overall.ok);
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(md.contains("### Backends\n"), "the per-backend table");
    router.stop().await;
    for e in engines {
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_sending_model_b_to_model_as_engine_is_caught_as_a_routing_error() {
    let held = util::exclusive().await;
    let misroute = infercheck::sim::Misroute {
        from: "model-b".into(),
        to: "model-a".into(),
        rewrite: false,
    };
    let (router, engines) = two_model_stack(Some(misroute)).await;
    let (result, _dir) = util::run_holding(&held, TWO_MODELS, Some(&router.base_url())).await;
    // The client saw model-b's requests refused (model-a's engine does not
    // serve it): 4xx errors, not yet a cause.
    let b_stats = &result
        .report
        .models
        .iter()
        .find(|m| m.model == "model-b")
        .unwrap()
        .stats;
    assert!(b_stats.ok == 0 && b_stats.requests > 0, "{b_stats:?}");
    let rows = model_rows(&result.report);
    let b = rows.iter().find(|r| r.0 == "Requests for model-b").unwrap();
    assert!(!b.1 && b.3 == 0.0, "{b:?}");
    assert!(b.4.contains("a routing error"), "{b:?}");
    let a = rows.iter().find(|r| r.0 == "Requests for model-a").unwrap();
    assert!(a.1, "model-a's own requests were served right: {a:?}");
    router.stop().await;
    for e in engines {
        e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_answering_model_b_with_model_as_engine_fails_the_response_model_check() {
    let held = util::exclusive().await;
    let misroute = infercheck::sim::Misroute {
        from: "model-b".into(),
        to: "model-a".into(),
        rewrite: true,
    };
    let (router, engines) = two_model_stack(Some(misroute)).await;
    let (result, _dir) = util::run_holding(&held, TWO_MODELS, Some(&router.base_url())).await;
    let report = &result.report;
    let b_stats = &report
        .models
        .iter()
        .find(|m| m.model == "model-b")
        .unwrap()
        .stats;
    // Every model-b request succeeded — under model-a's name.
    assert!(
        b_stats.ok > 0 && b_stats.other_model == b_stats.ok,
        "{b_stats:?}"
    );
    let echo = report.routing.response_model.as_ref().unwrap();
    assert!(!echo.pass && echo.routing_error, "{echo:?}");
    assert_eq!(echo.other, b_stats.ok);
    assert!(echo.detail.contains(&format!(
        "{} of {} answers for model-b",
        b_stats.ok, b_stats.ok
    )));
    // model-b's engine finished nothing; the split says so.
    let idle = report
        .routing
        .backends
        .iter()
        .find(|r| r.url == format!("{}/metrics", engines[1].base_url()))
        .unwrap();
    assert_eq!(
        (idle.requests, idle.status),
        (Some(0.0), BackendStatus::NoTraffic)
    );
    let split = report.routing.model_split.as_ref().unwrap();
    assert!(!split.pass, "{}", split.detail);
    assert!(
        split.detail.contains("model-b 0.0 % (weight 50.0 %)"),
        "{}",
        split.detail
    );
    router.stop().await;
    for e in engines {
        e.stop().await;
    }
}

/// A router over two engines of one model, with a DCGM exporter that
/// attributes each engine's GPU to its pod, as dcgm-exporter does on
/// Kubernetes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_router_each_engine_gets_its_own_gpus_and_share() {
    let held = util::exclusive().await;
    let config = SimConfig {
        dcgm_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..util::exact_sim(20, 5)
    };
    let cluster = infercheck::sim::SimCluster::start("127.0.0.1:0".parse().unwrap(), config, 2)
        .await
        .unwrap();
    let dcgm = cluster.dcgm_url().unwrap();
    let plan = format!(
        "name = 'pods'\n[observe]\nscrape = ['{dcgm}']\n\
         [workload]\nmax_tokens = 8\nprompts = [{{ tokens = 8 }}]\n\
         [[phases]]\nname = 'steady'\nduration = '3s'\nload = {{ type = 'constant', rate = 40 }}\n"
    );
    let (result, _dir) = util::run_holding(&held, &plan, Some(&cluster.base_url())).await;
    let report = &result.report;
    let rows = &report.routing.backends;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let mut gpus: Vec<&String> = Vec::new();
    for (i, engine) in cluster.backends().iter().enumerate() {
        let url = format!("{}/metrics", engine.base_url());
        let row = rows
            .iter()
            .find(|r| r.url == url)
            .expect("a row per engine");
        assert_eq!(row.requests, Some(engine.stats().completed as f64));
        assert_eq!(row.gpus.len(), 1, "one GPU per engine: {row:?}");
        // The cluster numbers GPUs in engine order, engine i in pod engine-i.
        assert!(row.gpus[0].starts_with(&format!("GPU {i} ")), "{row:?}");
        assert!(
            row.gpu_util_max.is_some() && row.vram_used_max_bytes.is_some(),
            "{row:?}"
        );
        gpus.extend(&row.gpus);
    }
    assert_ne!(gpus[0], gpus[1], "each engine its own GPU");
    // The run's gpu_util is the busiest GPU's: the larger of the two.
    let overall = report.observed.as_ref().unwrap().value("gpu_util").unwrap();
    let per_backend = rows
        .iter()
        .filter_map(|r| r.gpu_util_max)
        .fold(0.0, f64::max);
    assert_eq!(overall.stats.max, Some(per_backend));
    // Two engines of one model, least-outstanding routing: an even split.
    let balance = &report.routing.balance;
    assert_eq!(balance.len(), 1);
    assert!(balance[0].pass, "{}", balance[0].detail);
    cluster.stop().await;
}

/// `[simulator] backends = 3`: the embedded simulator in router mode;
/// with nothing else given, the engines behind its router are found,
/// sampled and given their GPUs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_simulator_in_router_mode_fills_a_row_per_engine() {
    let plan = "name = 'routed'\n[simulator]\nbackends = 3\n\
        [workload]\nmax_tokens = 8\nprompts = [{ tokens = 8 }]\n\
        [[phases]]\nname = 'steady'\nduration = '3s'\nload = { type = 'constant', rate = 30 }\n";
    let (result, _dir) = util::run(plan, None).await;
    let routing = &result.report.routing;
    assert_eq!(routing.backends.len(), 3, "{:?}", routing.backends);
    let requests: f64 = routing.backends.iter().filter_map(|r| r.requests).sum();
    assert_eq!(requests, result.report.overall.ok as f64);
    let mut gpus: Vec<&String> = routing.backends.iter().flat_map(|r| &r.gpus).collect();
    gpus.sort();
    gpus.dedup();
    assert_eq!(
        gpus.len(),
        3,
        "one GPU each, none shared: {:?}",
        routing.backends
    );
    assert!(routing.backends.iter().all(|r| r.gpu_util_max.is_some()));
    assert!(routing.balance[0].pass, "{}", routing.balance[0].detail);
}

const ONE_MODEL: &str = "name = 'cold'\n\
    [workload]\nmax_tokens = 8\nprompts = [{ tokens = 8 }]\n\
    [[phases]]\nname = 'steady'\nduration = '3s'\nload = { type = 'constant', rate = 10 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_request_that_waits_for_the_model_to_load_is_a_cold_start() {
    let held = util::exclusive().await;
    let config = SimConfig {
        faults: Faults {
            cold_start: Duration::from_millis(1500),
            ..Faults::default()
        },
        ..util::exact_sim(20, 5)
    };
    let server = util::sim(config).await;
    let (result, dir) = util::run_holding(&held, ONE_MODEL, Some(&server.base_url())).await;
    let starts = &result.report.server.cold_starts;
    assert_eq!(starts.len(), 1, "{starts:?}");
    assert!(starts[0].cold, "{starts:?}");
    assert!(starts[0].first_request_ms >= 1500.0, "{starts:?}");
    let md = util::run_folder(&dir.path().join("results")).unwrap();
    let md = std::fs::read_to_string(md.join("report.md")).unwrap();
    assert!(
        md.contains("- **Cold Starts**: default: first request"),
        "{md}"
    );
    assert!(md.contains("the engine counted 1 model loads"), "{md}");
    server.stop().await;

    let warm = util::sim(util::exact_sim(20, 5)).await;
    let (result, _dir) = util::run_holding(&held, ONE_MODEL, Some(&warm.base_url())).await;
    let starts = &result.report.server.cold_starts;
    assert!(starts.len() == 1 && !starts[0].cold, "{starts:?}");
    warm.stop().await;
}

/// Every built-in plan, shrunk to a few seconds against the embedded
/// simulator: no report shows a 0 ms best-case ITL (chunks that arrived in
/// one read are one gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_built_in_plan_reports_a_zero_inter_token_latency() {
    let held = util::exclusive().await;
    for builtin in infercheck::plan::BUILTIN {
        let plan = infercheck::plan::load(builtin.name, &Default::default()).unwrap();
        let total = plan.total_duration().as_secs_f64();
        let dir = tempfile::tempdir().unwrap();
        let mut args = infercheck::cli::RunArgs::new(builtin.name, dir.path().join("results"));
        args.duration_scale = (4.0 / total).min(1.0);
        args.quiet = true;
        let result = infercheck::runner::run_plan(args)
            .await
            .unwrap_or_else(|f| panic!("{}: {}", builtin.name, f.message));
        if let Some(itl) = result
            .report
            .overall
            .quantiles(infercheck::stats::Distribution::Itl)
        {
            assert!(itl.min > 0.0, "{}: ITL min {}", builtin.name, itl.min);
        }
    }
    drop(held);
}
