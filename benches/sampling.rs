//! What sampling costs infercheck: 20 PromQL queries every second against
//! a real Prometheus (Debian's package, started here on a free loopback
//! port, scraping itself), through the same `Samplers` a run uses, measured
//! as this process's CPU time (/proc/self/stat) over the window. The bar:
//! under 2 % of one core.
//!
//! `cargo bench --bench sampling` (SECONDS=30 by default). Needs
//! `prometheus` on the PATH (`apt-get install -y prometheus`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use infercheck::sample::queries::parse_set;
use infercheck::sample::{Samplers, SamplingPlan};

/// Twenty queries over Prometheus's own metrics, so each one returns data
/// (rates, quantiles, aggregations) like a real query set does.
const QUERIES: &[&str] = &[
    "sum(up)",
    "sum(rate(prometheus_http_requests_total[4s]))",
    "sum by (handler) (rate(prometheus_http_requests_total[4s]))",
    "histogram_quantile(0.95, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[4s])))",
    "histogram_quantile(0.5, sum by (le) (rate(prometheus_http_request_duration_seconds_bucket[4s])))",
    "sum(rate(process_cpu_seconds_total[4s]))",
    "max(process_resident_memory_bytes)",
    "sum(go_goroutines)",
    "sum(rate(go_gc_duration_seconds_count[4s]))",
    "max(go_memstats_heap_inuse_bytes)",
    "sum(prometheus_tsdb_head_series)",
    "sum(rate(prometheus_tsdb_head_samples_appended_total[4s]))",
    "max(scrape_duration_seconds)",
    "sum(scrape_samples_scraped)",
    "avg(scrape_samples_post_metric_relabeling)",
    "sum(rate(prometheus_engine_query_duration_seconds_count[4s]))",
    "max(prometheus_engine_query_duration_seconds{quantile=\"0.9\"})",
    "sum(prometheus_sd_discovered_targets)",
    "count(count by (__name__) ({job=\"self\"}))",
    "max(process_open_fds) / max(process_max_fds)",
];

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

fn main() {
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let mut child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus on the PATH (apt-get install -y prometheus)");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let toml: String = QUERIES
        .iter()
        .enumerate()
        .map(|(i, q)| format!("[[query]]\nname = \"q{i}\"\npromql = {q:?}\nunit = \"count\"\naggregate = \"max\"\n"))
        .collect();
    let queries = parse_set(&toml, "bench").unwrap();
    let result = runtime.block_on(async {
        let client = infercheck::tls::client();
        let ready = format!("{url}/-/ready");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !client
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            assert!(Instant::now() < deadline, "prometheus did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let a few scrapes land so rates have data.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let plan = SamplingPlan {
            interval: Duration::from_secs(1),
            prometheus: Some(url.clone()),
            queries,
            ..SamplingPlan::default()
        };
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let mut samplers = Samplers::start(&plan, tokio::time::Instant::now());
        assert!(samplers.errors().is_empty(), "{:?}", samplers.errors());
        let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(100)).await;
            samplers.drain();
        }
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        let now = chrono::Utc::now().timestamp();
        let (observed, _) = samplers.finish((now - seconds as i64, now)).await;
        (cpu, wall, observed)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (cpu, wall, observed) = result;
    let (queries, failed) = (observed.queries, observed.failed_queries);
    let latency = observed.query_latency_ms.unwrap();
    println!(
        "{} queries every 1s for {wall:.1}s: {queries} queries ({failed} failed), \
         CPU {cpu:.3}s = {:.2}% of one core; query latency p50 {:.2}ms p95 {:.2}ms max {:.2}ms",
        QUERIES.len(),
        cpu / wall * 100.0,
        latency.p50,
        latency.p95,
        latency.max
    );
}
