//! Integration tests for server-side sampling (issue 4): a real Prometheus
//! (Debian's package) scraping the simulator, its simulated DCGM exporter
//! and infercheck's own /metrics while infercheck runs a plan with
//! `[observe] prometheus = ...`; the report's values must agree with what
//! the simulator itself showed. Also: Prometheus killed mid-run, alerts
//! read back, NVML through the fake library, and no NVML at all.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use infercheck::cli::RunArgs;
use infercheck::report::{Report, ThresholdStatus};
use infercheck::runner::run_plan;
use infercheck::sim::SimConfig;

use crate::nvml::FakeNvml;
use crate::util::prometheus::Prometheus;
use crate::util::{exact_sim, exclusive, run_holding, sim, write_plan};

/// A loopback port free a moment ago (Prometheus must know infercheck's
/// metrics address before the run starts).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The first sample of `name` in an exposition text (0 when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The highest values the simulator itself showed while the test ran.
#[derive(Clone, Copy, Debug, Default)]
struct Truth {
    waiting: f64,
    kv: f64,
    gpu_util: f64,
    fb_used_mib: f64,
}

/// Polls the simulator's /metrics and DCGM exporter every 100 ms.
fn watch(metrics: String, dcgm: String) -> (Arc<Mutex<Truth>>, tokio::task::JoinHandle<()>) {
    let truth = Arc::new(Mutex::new(Truth::default()));
    let seen = truth.clone();
    let task = tokio::spawn(async move {
        let client = infercheck::tls::client();
        loop {
            let (Some(m), Some(d)) = (text(&client, &metrics).await, text(&client, &dcgm).await)
            else {
                return;
            };
            update(&seen, &m, &d);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (truth, task)
}

fn update(truth: &Mutex<Truth>, metrics: &str, dcgm: &str) {
    let mut t = truth.lock().unwrap();
    t.waiting = t.waiting.max(sample(metrics, "vllm:num_requests_waiting"));
    t.kv = t.kv.max(sample(metrics, "vllm:kv_cache_usage_perc"));
    t.gpu_util = t.gpu_util.max(sample(dcgm, "DCGM_FI_DEV_GPU_UTIL"));
    t.fb_used_mib = t.fb_used_mib.max(sample(dcgm, "DCGM_FI_DEV_FB_USED"));
}

async fn text(client: &reqwest::Client, url: &str) -> Option<String> {
    client.get(url).send().await.ok()?.text().await.ok()
}

const BACKLOG_RULE: &str = "groups:\n- name: infercheck-test\n  rules:\n  - alert: QueueBacklog\n    \
     expr: sum(vllm:num_requests_waiting) > 2\n    labels:\n      severity: warning\n";

fn value(report: &Report, name: &str) -> infercheck::report::SampledSummary {
    let observed = report.observed.as_ref().expect("an observed section");
    observed
        .value(name)
        .unwrap_or_else(|| panic!("no {name} in {:#?}", observed.values))
        .clone()
}

/// With a real Prometheus scraping the simulator, the report's queue depth,
/// KV usage, token rate, GPU utilisation and VRAM agree with what the
/// simulator showed; an alert that fired during the run is read back; and
/// infercheck's own /metrics reaches Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_run_reports_what_the_simulator_showed() {
    let held = exclusive().await;
    // 4 slots, 12 users: 8 requests wait all along; 30 tokens at 20 ms.
    let server = sim(SimConfig {
        max_num_seqs: 4,
        dcgm_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..exact_sim(10, 20)
    })
    .await;
    let dcgm_url = server.dcgm_url().unwrap();
    let dcgm: SocketAddr = dcgm_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .parse()
        .unwrap();
    let own = free_addr();
    let targets = [("vllm", server.addr()), ("dcgm", dcgm), ("infercheck", own)];
    let prometheus = Prometheus::start_with_rules(&targets, Some(BACKLOG_RULE)).await;
    prometheus.wait_for_scrapes("vllm", 2).await;
    let (truth, watcher) = watch(format!("{}/metrics", server.base_url()), dcgm_url);
    let plan = format!(
        "name = 'observed'\nthresholds = ['max(queue_depth) < 100', 'alerts_fired == 0', 'p95(prom_query_latency) < 500ms']\n\
         [target]\nstream = true\n[workload]\nmax_tokens = 30\n\
         [observe]\nprometheus = '{}'\nmetrics_listen = '{own}'\n\
         [[phases]]\nname = 'backlog'\nduration = '8s'\nload = {{ type = 'concurrency', concurrency = 12 }}\n",
        prometheus.url()
    );
    let (result, _dir) = run_holding(&held, &plan, Some(&server.base_url())).await;
    watcher.abort();
    let truth = *truth.lock().unwrap();
    let report = &result.report;
    eprintln!("truth {truth:?}");

    let queue = value(report, "queue_depth");
    assert_eq!(queue.source, "prometheus");
    assert!(
        (queue.stats.max.unwrap() - truth.waiting).abs() <= 1.0,
        "{queue:?} vs {truth:?}"
    );
    let kv = value(report, "kv_usage");
    assert!(
        (kv.stats.max.unwrap() - truth.kv).abs() <= 0.1 * truth.kv,
        "{kv:?} vs {truth:?}"
    );
    let util = value(report, "gpu_util");
    assert!(
        (util.stats.max.unwrap() - truth.gpu_util / 100.0).abs() <= 0.1,
        "{util:?} vs {truth:?}"
    );
    let vram = value(report, "vram_used");
    let truth_bytes = truth.fb_used_mib * 1_048_576.0;
    assert!(
        (vram.stats.max.unwrap() - truth_bytes).abs() <= 0.02 * truth_bytes,
        "{vram:?} vs {truth:?}"
    );
    // The token rate Prometheus computed matches the clients' (over the
    // steady middle of the run, where the 4 s rate window is full).
    let client_rate = report.overall.output_tokens_per_s;
    let rate = value(report, "gen_tokens_rate");
    let steady = rate.stats.p95.unwrap();
    assert!(
        (steady - client_rate).abs() <= 0.2 * client_rate,
        "{rate:?} vs client {client_rate}"
    );

    let observed = report.observed.as_ref().unwrap();
    assert!(
        observed.queries > 50 && observed.query_latency_ms.is_some(),
        "{observed:?}"
    );
    let alerts = observed.alerts.as_ref().expect("alerts were read");
    assert!(
        alerts
            .fired
            .iter()
            .any(|a| a.name == "QueueBacklog" && a.began_during_run),
        "{alerts:?}"
    );
    let status = |expr: &str| {
        report
            .thresholds
            .iter()
            .find(|t| t.expression == expr)
            .unwrap()
            .status
    };
    assert_eq!(status("max(queue_depth) < 100"), ThresholdStatus::Pass);
    assert_eq!(status("alerts_fired == 0"), ThresholdStatus::Fail);
    assert_eq!(
        status("p95(prom_query_latency) < 500ms"),
        ThresholdStatus::Pass
    );
    // infercheck's own /metrics was scraped while it ran.
    let scraped = prometheus
        .query_scalar("sum(max_over_time(infercheck_requests_total[1m]))")
        .await;
    assert!(scraped.is_some_and(|n| n > 0.0), "{scraped:?}");
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    for line in [
        "### System Resource Utilization",
        "| Queue Depth |",
        "QueueBacklog",
        "Prometheus query latency",
    ] {
        assert!(md.contains(line), "{line} missing from\n{md}");
    }
    server.stop().await;
}

/// Prometheus killed mid-run: the run completes, later intervals show the
/// gap, the report counts it, and a threshold over data that never came is
/// NO DATA (a failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_killed_mid_run_leaves_gaps_not_a_crash() {
    let held = exclusive().await;
    let server = sim(exact_sim(5, 5)).await;
    let mut prometheus = Prometheus::start(&[("vllm", server.addr())]).await;
    prometheus.wait_for_scrapes("vllm", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = format!(
        "name = 'killed'\nthresholds = ['max(queue_depth) < 100', 'avg(node_cpu_load) < 100']\n\
         [observe]\nprometheus = '{}'\n\
         [[phases]]\nname = 'steady'\nduration = '5s'\nload = {{ type = 'constant', rate = 20 }}\n",
        prometheus.url()
    );
    let path = write_plan(dir.path(), &plan);
    let mut args = RunArgs::new(path.to_str().unwrap(), dir.path().join("results"));
    args.target = Some(server.base_url());
    // Kill it once two seconds were recorded.
    let results = dir.path().join("results");
    let killer = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let lines = crate::util::run_folder(&results)
                .and_then(|d| std::fs::read_to_string(d.join("intervals.jsonl")).ok())
                .map_or(0, |t| t.lines().count());
            if lines >= 2 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the run never wrote two intervals"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        prometheus.kill();
    };
    let (result, ()) = tokio::join!(run_plan(args), killer);
    let result = result.unwrap_or_else(|f| panic!("{}", f.message));
    drop(held);
    let intervals = std::fs::read_to_string(result.dir.join("intervals.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(intervals.lines().last().unwrap()).unwrap();
    assert!(last["sampled"]["queue_depth"].is_null(), "{last}");
    let queue = value(&result.report, "queue_depth");
    assert!(queue.stats.samples >= 1 && queue.gaps >= 2, "{queue:?}");
    let observed = result.report.observed.as_ref().unwrap();
    assert!(observed.failed_queries > 0);
    let status = |expr: &str| {
        result
            .report
            .thresholds
            .iter()
            .find(|t| t.expression == expr)
            .unwrap()
            .status
    };
    assert_eq!(status("max(queue_depth) < 100"), ThresholdStatus::Pass);
    assert_eq!(status("avg(node_cpu_load) < 100"), ThresholdStatus::NoData);
    assert_eq!(result.exit_code, infercheck::exit::THRESHOLDS_FAILED);
    server.stop().await;
}

/// A scripted 10 → 90 % utilisation ramp in the fake NVML shows in the
/// report's series and peak (NVML replaces the simulated DCGM values).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_nvml_ramp_shows_in_the_series_and_the_peak() {
    let fake = FakeNvml::new(
        "name 0 NVIDIA Fake L4\nuuid 0 GPU-00000000-1111-2222-3333-444444444444\ntotal_mib 0 23034\n\
         row 0 util=10 used_mib=1000 power_mw=50000 temp=40\n\
         row 0 util=50 used_mib=5000 power_mw=60000 temp=50\n\
         row 0 util=90 used_mib=9000 power_mw=70000 temp=60\n",
    );
    let plan = format!(
        "name = 'nvml'\nthresholds = ['max(gpu_util) < 80%', 'max(vram_used) < 20GiB']\n\
         [observe]\nnvml_lib = '{}'\ninterval = '200ms'\n\
         [[phases]]\nname = 'steady'\nduration = '2s'\nload = {{ type = 'constant', rate = 5 }}\n",
        fake.lib().display()
    );
    let (result, _dir) = crate::util::run(&plan, None).await;
    let util = value(&result.report, "gpu_util");
    assert_eq!(util.source, "nvml");
    assert_eq!(util.stats.max, Some(0.9), "{util:?}");
    let series = result
        .report
        .series
        .iter()
        .find(|s| s.name == "gpu_util")
        .unwrap();
    // NVML starts before the run clock and reads at once: that first
    // reading (10 %) is not part of the run. The ramp follows in order.
    let first: Vec<f64> = series.samples.iter().take(2).map(|s| s.value).collect();
    assert_eq!(first, vec![0.5, 0.9]);
    assert!(
        series
            .samples
            .iter()
            .all(|s| s.t >= 0.0 && s.t <= result.report.duration_s + 0.5)
    );
    let observed = result.report.observed.as_ref().unwrap();
    assert!(
        observed.gpu.as_deref().unwrap().contains("NVIDIA Fake L4"),
        "{observed:?}"
    );
    let status = |expr: &str| {
        result
            .report
            .thresholds
            .iter()
            .find(|t| t.expression == expr)
            .unwrap()
            .status
    };
    assert_eq!(status("max(gpu_util) < 80%"), ThresholdStatus::Fail);
    assert_eq!(status("max(vram_used) < 20GiB"), ThresholdStatus::Pass);
    // The observed section is documented: the strict schema accepts it.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.dir.join("report.json")).unwrap())
            .unwrap();
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

/// No NVML library: one clear line in the report, and the run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nvml_the_report_says_so_in_one_line() {
    let plan = "name = 'no-gpu'\n[observe]\nnvml_lib = '/nonexistent/libnvidia-ml.so.1'\n\
         [[phases]]\nname = 'steady'\nduration = '1s'\nload = { type = 'constant', rate = 5 }\n";
    let (result, _dir) = crate::util::run(plan, None).await;
    assert_eq!(result.exit_code, 0);
    let observed = result.report.observed.as_ref().unwrap();
    assert_eq!(
        observed.gpu.as_deref(),
        Some("GPU: not available (/nonexistent/libnvidia-ml.so.1 not found)")
    );
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(
        md.contains("- **GPU**: not available (/nonexistent/libnvidia-ml.so.1 not found)"),
        "{md}"
    );
    // The simulated DCGM exporter still gave GPU values through the scrape.
    assert_eq!(value(&result.report, "gpu_util").source, "scrape");
}

/// A threshold naming a value nothing samples is a plan error, before any
/// request is sent.
#[test]
fn a_threshold_on_an_unknown_sampled_value_is_a_plan_error() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "thresholds = ['max(gpu_utl) < 80%']\n[[phases]]\nname = 'p'\nduration = '1s'\nload = { type = 'constant', rate = 1 }\n",
    );
    let error = infercheck::plan::load(plan.to_str().unwrap(), &Default::default()).unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("gpu_utl") && text.contains("gpu_util"),
        "{text}"
    );
}

/// A stress sweep against the embedded simulator fills the table's GPU
/// columns (examples/001): average utilisation and peak VRAM per level,
/// from the simulated DCGM exporter, rising with concurrency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_reports_gpu_utilisation_and_memory_per_level() {
    let plan = "name = 'sweep'\n[workload]\nmax_tokens = 32\n\
        [[phases]]\nname = 'sweep'\nload = { type = 'sweep', levels = [1, 16], step_duration = '3s' }\n";
    let (result, _dir) = crate::util::run(plan, None).await;
    let steps = &result.report.phases[0].steps;
    let util: Vec<f64> = steps
        .iter()
        .map(|s| {
            s.sampled("gpu_util")
                .and_then(|w| w.stats.avg)
                .expect("GPU util per level")
        })
        .collect();
    let vram: Vec<f64> = steps
        .iter()
        .map(|s| {
            s.sampled("vram_used")
                .and_then(|w| w.stats.max)
                .expect("VRAM per level")
        })
        .collect();
    assert!(util[1] > util[0] && util[0] > 0.0, "{util:?}");
    assert!(vram[1] >= vram[0], "{vram:?}");
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    let row = md
        .lines()
        .find(|l| l.starts_with("| 16 |"))
        .expect("the c=16 row");
    assert!(!row.contains("—"), "{row}");
}
