//! Integration tests: a real Prometheus (util::prometheus) scrapes the
//! simulated DCGM exporter and the simulator, and what it computes must
//! agree with what the test set (GPU readings) or what infercheck's clients
//! measured (token rate, median TTFT). Each test holds `util::exclusive`
//! from Prometheus's start to its last query, so no other load test shares
//! the machine while it measures; waits poll Prometheus with deadlines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use infercheck::report::Report;
use infercheck::sim::{
    DcgmExporter, GpuIdentity, GpuReading, GpuSample, GpuSource, SimConfig, SimServer,
};
use infercheck::stats::Distribution;
use serde_json::Value;

use crate::util::prometheus::{Labels, Prometheus};
use crate::util::{exact_sim, exclusive, run_holding, sim};

/// NVIDIA's dashboard for dcgm-exporter (fixtures/SOURCES.md).
const DCGM_DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/grafana/dcgm-exporter-dashboard.json"
);

/// How long a value may take to show up: a scrape interval or two, after
/// Prometheus's first target discovery (up to ~6 s).
const SCRAPED_WITHIN: Duration = Duration::from_secs(20);

const UUID: &str = "GPU-5d1c0e7a-3b2f-4c1d-9e8f-0a1b2c3d4e5f";

/// An L4 (23034 MiB) at `util_percent`, with fixed memory and power.
fn l4(util_percent: f64) -> GpuSample {
    GpuSample {
        identity: GpuIdentity {
            index: 0,
            uuid: UUID.into(),
            name: "NVIDIA L4".into(),
            device: "nvidia0".into(),
            pci_bus_id: "00000000:00:03.0".into(),
            fb_total_mib: 23034,
            served_model: "sim-llama-8b".into(),
            pod: None,
        },
        reading: GpuReading {
            util_percent,
            mem_copy_util_percent: util_percent / 2.0,
            fb_used_mib: 20512,
            fb_free_mib: 2088,
            fb_reserved_mib: 434,
            power_watts: 61.25,
            energy_mj: 1_000_000,
            gpu_temp_c: 55.0,
            memory_temp_c: 0.0,
            sm_clock_mhz: 2040,
            mem_clock_mhz: 6250,
            ..GpuReading::default()
        },
    }
}

/// The exporter's values reach Prometheus as set, under the labels
/// dcgm-exporter uses, and the dashboard's panel queries find them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_the_dcgm_exporters_gpu_readings() {
    let _held = exclusive().await;
    let util = Arc::new(Mutex::new(10.0));
    let source: GpuSource = {
        let util = util.clone();
        Arc::new(move || vec![l4(*util.lock().unwrap())])
    };
    let listen = "127.0.0.1:0".parse().unwrap();
    let exporter = DcgmExporter::start(listen, source, "sim-node")
        .await
        .expect("the exporter starts");
    let prometheus = Prometheus::start(&[("dcgm", exporter.addr())]).await;

    for step in [10.0, 50.0, 90.0, 20.0] {
        *util.lock().unwrap() = step;
        let query = "DCGM_FI_DEV_GPU_UTIL";
        prometheus
            .wait_for_value(query, SCRAPED_WITHIN, |v| v == Some(step))
            .await
            .unwrap_or_else(|last| panic!("util set to {step}, Prometheus has {last:?}"));
    }
    let peak = prometheus
        .query_scalar("max_over_time(DCGM_FI_DEV_GPU_UTIL[1m])")
        .await;
    assert_eq!(peak, Some(90.0));
    let low = prometheus
        .query_scalar("min_over_time(DCGM_FI_DEV_GPU_UTIL[1m])")
        .await;
    assert_eq!(low, Some(10.0));

    let instance = exporter.addr().to_string();
    assert_memory_and_power(&prometheus, &instance).await;
    assert_dashboard_queries_find_the_gpu(&prometheus).await;
    exporter.stop().await;
}

async fn assert_memory_and_power(prometheus: &Prometheus, instance: &str) {
    let used = prometheus.query("DCGM_FI_DEV_FB_USED").await;
    assert_eq!(used.len(), 1, "one GPU: {used:?}");
    let (labels, used_mib) = &used[0];
    assert_eq!(*used_mib, 20512.0);
    assert_exporter_labels(labels, instance);
    let free = prometheus.query_scalar("DCGM_FI_DEV_FB_FREE").await;
    assert_eq!(free, Some(2088.0));
    let total = "DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE + DCGM_FI_DEV_FB_RESERVED";
    assert_eq!(prometheus.query_scalar(total).await, Some(23034.0));
    let power = prometheus.query_scalar("DCGM_FI_DEV_POWER_USAGE").await;
    assert_eq!(power, Some(61.25));
}

fn assert_exporter_labels(labels: &Labels, instance: &str) {
    let want = [
        ("__name__", "DCGM_FI_DEV_FB_USED"),
        ("gpu", "0"),
        ("UUID", UUID),
        ("pci_bus_id", "00000000:00:03.0"),
        ("device", "nvidia0"),
        ("modelName", "NVIDIA L4"),
        ("Hostname", "sim-node"),
        ("job", "dcgm"),
        ("instance", instance),
    ];
    for (name, value) in want {
        assert_eq!(labels.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert!(labels.contains_key("DCGM_FI_DRIVER_VERSION"), "{labels:?}");
}

/// Every panel query of NVIDIA's dashboard over the fields we export
/// (all but the profiling `DCGM_FI_PROF_*` ones) returns a series.
async fn assert_dashboard_queries_find_the_gpu(prometheus: &Prometheus) {
    let text = std::fs::read_to_string(DCGM_DASHBOARD).expect("read the DCGM dashboard");
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    let exported: Vec<&String> = exprs
        .iter()
        .filter(|e| !e.contains("DCGM_FI_PROF_"))
        .collect();
    assert!(exported.len() >= 5, "{exprs:?}");
    for expr in exported {
        let promql = expr.replace("$instance", ".+").replace("$gpu", ".+");
        let series = prometheus.query(&promql).await;
        assert!(!series.is_empty(), "dashboard query {promql} found nothing");
    }
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                out.push(expr.clone());
            }
            map.values().for_each(|v| collect_exprs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// A streaming constant-rate plan.
fn constant_plan(rate: u32, duration_s: u32, max_tokens: u32) -> String {
    format!(
        "name = 'scraped'\n[target]\nstream = true\ntimeout = '10s'\n\
         [workload]\nmax_tokens = {max_tokens}\n\
         [[phases]]\nname = 'steady'\nduration = '{duration_s}s'\n\
         load = {{ type = 'constant', rate = {rate} }}\n"
    )
}

/// A run that a Prometheus scraped from before its first request until
/// after its last.
struct ScrapedRun {
    prometheus: Prometheus,
    report: Report,
    /// When the load started, in seconds since the epoch.
    started_unix: f64,
    server: SimServer,
}

/// Starts a simulator and a Prometheus scraping it, waits for a baseline
/// scrape, runs `plan`, and waits until Prometheus holds every token the
/// clients counted. The caller holds `util::exclusive`.
async fn scraped_run(
    held: &tokio::sync::MutexGuard<'static, ()>,
    config: SimConfig,
    plan: &str,
) -> ScrapedRun {
    let server = sim(config).await;
    let prometheus = Prometheus::start(&[("sim", server.addr())]).await;
    prometheus.wait_for_scrapes("sim", 2).await;
    let (result, _dir) = run_holding(held, plan, Some(&server.base_url())).await;
    let report = result.report;
    let started = chrono::DateTime::parse_from_rfc3339(&report.started_at).unwrap();
    let tokens = report.overall.output_tokens as f64;
    assert!(tokens > 0.0, "the run produced tokens");
    // Exact agreement of the totals, once the last scrape is in.
    let total = "sum(vllm:generation_tokens_total)";
    prometheus
        .wait_for_value(total, SCRAPED_WITHIN, |v| v == Some(tokens))
        .await
        .unwrap_or_else(|last| panic!("the clients counted {tokens} tokens, Prometheus {last:?}"));
    ScrapedRun {
        prometheus,
        report,
        started_unix: started.timestamp_millis() as f64 / 1000.0,
        server,
    }
}

/// `rate(vllm:generation_tokens_total)` over the steady part of a run
/// agrees with the output tokens/s the clients measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_token_rate_agrees_with_the_clients() {
    let held = exclusive().await;
    // 20 req/s × 20 tokens: 400 tokens/s; each request takes 30 + 19×5 ms.
    let run = scraped_run(&held, exact_sim(30, 5), &constant_plan(20, 12, 20)).await;
    let client_rate = run.report.overall.output_tokens_per_s;
    // The window [2 s, 10 s] of the 12 s run: past the first responses,
    // before the last.
    let promql = "sum(rate(vllm:generation_tokens_total[8s]))";
    let server_rate = run
        .prometheus
        .query_scalar_at(promql, run.started_unix + 10.0)
        .await
        .expect("a rate inside the run");
    assert!(
        (server_rate - client_rate).abs() / client_rate < 0.10,
        "Prometheus {server_rate:.1} tokens/s vs clients {client_rate:.1} tokens/s"
    );
    run.server.stop().await;
}

/// vLLM's `time_to_first_token_seconds` buckets, in seconds.
const VLLM_TTFT_BUCKETS_S: [f64; 22] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];

/// Width of the bucket holding `seconds`.
fn ttft_bucket_width(seconds: f64) -> f64 {
    let mut lower = 0.0;
    for upper in VLLM_TTFT_BUCKETS_S {
        if seconds <= upper {
            return upper - lower;
        }
        lower = upper;
    }
    panic!("{seconds}s is beyond the last TTFT bucket");
}

/// The median TTFT Prometheus derives from the simulator's histogram
/// agrees with the clients' median within one bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_median_ttft_agrees_with_the_clients() {
    let held = exclusive().await;
    // TTFT 30 ms: the middle of the (20 ms, 40 ms] bucket.
    let run = scraped_run(&held, exact_sim(30, 5), &constant_plan(20, 10, 8)).await;
    let client_s = run
        .report
        .overall
        .quantiles(Distribution::Ttft)
        .expect("streamed TTFT")
        .p50
        / 1000.0;
    let promql = "histogram_quantile(0.5, sum by (le) \
                  (rate(vllm:time_to_first_token_seconds_bucket[1m])))";
    let server_s = run
        .prometheus
        .query_scalar(promql)
        .await
        .expect("vllm:time_to_first_token_seconds is scraped");
    let width = ttft_bucket_width(client_s);
    assert!(
        (server_s - client_s).abs() <= width,
        "Prometheus median TTFT {server_s}s vs clients {client_s}s (bucket width {width}s)"
    );
    run.server.stop().await;
}

/// `[observe] backends_job`: with a Prometheus, the engines behind a router
/// are the instances of a job (`up{job}`), and each is also read on its own
/// for the per-backend rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_job_names_the_engines_behind_the_router() {
    let held = exclusive().await;
    let engines = [sim(exact_sim(20, 5)).await, sim(exact_sim(20, 5)).await];
    let urls: Vec<String> = engines.iter().map(SimServer::base_url).collect();
    let tracing = Arc::new(infercheck::sim::Tracing::default());
    let router =
        infercheck::sim::RouterServer::start("127.0.0.1:0".parse().unwrap(), urls.clone(), tracing)
            .await
            .unwrap();
    let prometheus =
        Prometheus::start(&[("vllm", engines[0].addr()), ("vllm", engines[1].addr())]).await;
    prometheus
        .wait_for_value("count(up{job=\"vllm\"} == 1)", SCRAPED_WITHIN, |v| {
            v == Some(2.0)
        })
        .await
        .unwrap_or_else(|last| panic!("both instances up, got {last:?}"));
    let plan = format!(
        "{}[observe]\nprometheus = '{}'\nbackends_job = 'vllm'\n",
        constant_plan(20, 3, 8),
        prometheus.url()
    );
    let (result, _dir) = run_holding(&held, &plan, Some(&router.base_url())).await;
    let observed = result.report.observed.as_ref().unwrap();
    let mut found = observed.backends.clone();
    found.sort();
    let mut expected = urls.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert!(
        observed
            .backends_from
            .as_deref()
            .unwrap()
            .contains("job vllm"),
        "{:?}",
        observed.backends_from
    );
    let rows = &result.report.routing.backends;
    for engine in &engines {
        let url = format!("{}/metrics", engine.base_url());
        let row = rows
            .iter()
            .find(|r| r.url == url)
            .expect("a row per engine");
        assert_eq!(
            row.requests,
            Some(engine.stats().completed as f64),
            "{row:?}"
        );
    }
    let served: u64 = engines.iter().map(|e| e.stats().completed).sum();
    assert_eq!(served, result.report.overall.ok);
    router.stop().await;
    for e in engines {
        e.stop().await;
    }
}
