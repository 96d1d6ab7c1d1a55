//! A real Prometheus for tests: [`Prometheus::start`] writes a config that
//! scrapes the given targets every second, starts the `prometheus` binary
//! on a free loopback port with its storage in a temp folder, and waits
//! until it is ready; dropping it kills the process. Queries go through the
//! HTTP API (`/api/v1/query`), and [`Prometheus::wait_for_scrapes`] waits
//! on the scrapes themselves, never on a fixed sleep.
//!
//! Prometheus 2.42 comes from Debian (`apt-get install -y prometheus`);
//! `.ci/run` installs it. Its scrape manager picks up new targets on a 5 s
//! tick, so the first scrape comes up to about 6 s after start.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// A series' labels, `__name__` included when the query keeps it.
pub type Labels = BTreeMap<String, String>;

/// Scrape cadence of every job: fast enough that a 10 s run has ten points.
const SCRAPE_INTERVAL: &str = "1s";
const SCRAPE_TIMEOUT: &str = "900ms";
/// Bounds of the polling loops.
const READY_DEADLINE: Duration = Duration::from_secs(30);
const POLL_PERIOD: Duration = Duration::from_millis(100);
/// Tries at a free port (another process may take it between our probe
/// and Prometheus's bind).
const BIND_TRIES: usize = 4;

/// A running Prometheus, killed on drop. When the test panics, its log is
/// printed.
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    base_url: String,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts a Prometheus scraping each `(job, address)` at `/metrics`
    /// every second, and returns once it answers `/-/ready`.
    pub async fn start(targets: &[(&str, SocketAddr)]) -> Prometheus {
        Prometheus::start_with_rules(targets, None).await
    }

    /// Like [`start`](Self::start), also evaluating `rules` (a rule-file
    /// YAML) every second.
    pub async fn start_with_rules(
        targets: &[(&str, SocketAddr)],
        rules: Option<&str>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir for prometheus");
        let mut yaml = config(targets);
        if let Some(rules) = rules {
            std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
            yaml = yaml.replacen(
                "scrape_configs:",
                &format!(
                    "  evaluation_interval: 1s\nrule_files: ['{}']\nscrape_configs:",
                    dir.path().join("rules.yml").display()
                ),
                1,
            );
        }
        std::fs::write(dir.path().join("prometheus.yml"), yaml).unwrap();
        let client = infercheck::tls::client_builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        for _ in 0..BIND_TRIES {
            let port = free_port();
            let base_url = format!("http://127.0.0.1:{port}");
            let mut child = spawn(dir.path(), port, &[]);
            match wait_ready(&client, &base_url, &mut child).await {
                Ok(()) => {
                    return Prometheus {
                        child,
                        dir,
                        base_url,
                        client,
                    };
                }
                Err(why) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = read_log(dir.path());
                    if !log.contains("address already in use") {
                        panic!("prometheus did not start ({why}):\n{log}");
                    }
                }
            }
        }
        panic!("prometheus found no free port in {BIND_TRIES} tries");
    }

    /// Evaluates `promql` now; one `(labels, value)` per series (a scalar
    /// result is one entry with no labels).
    pub async fn query(&self, promql: &str) -> Vec<(Labels, f64)> {
        self.query_params(&[("query", promql.to_owned())]).await
    }

    /// Evaluates `promql` at `unix_time` (seconds since the epoch).
    pub async fn query_at(&self, promql: &str, unix_time: f64) -> Vec<(Labels, f64)> {
        let time = format!("{unix_time:.3}");
        self.query_params(&[("query", promql.to_owned()), ("time", time)])
            .await
    }

    /// The one value `promql` gives now; `None` when it gives no series.
    pub async fn query_scalar(&self, promql: &str) -> Option<f64> {
        single(promql, self.query(promql).await)
    }

    /// The one value `promql` gives at `unix_time`; `None` when no series.
    pub async fn query_scalar_at(&self, promql: &str, unix_time: f64) -> Option<f64> {
        single(promql, self.query_at(promql, unix_time).await)
    }

    /// Waits until every target of `job` has been scraped successfully at
    /// least `n` times (counting `up == 1` samples). Panics with the
    /// targets' state after a deadline long enough for target discovery
    /// plus `n` scrape intervals.
    pub async fn wait_for_scrapes(&self, job: &str, n: u32) {
        let promql = format!("sum_over_time(up{{job=\"{job}\"}}[1h])");
        let deadline = Instant::now() + Duration::from_secs(15 + 2 * u64::from(n));
        loop {
            let counts = self.query(&promql).await;
            if !counts.is_empty() && counts.iter().all(|(_, c)| *c >= f64::from(n)) {
                return;
            }
            if Instant::now() > deadline {
                let targets = self.get_json("/api/v1/targets", &[]).await;
                panic!("job {job} not scraped {n} times: {counts:?}\ntargets: {targets}");
            }
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }

    /// Polls `promql` until `done` holds for its one value (`None` when it
    /// gives no series) and returns that value; `Err` with the last value
    /// when `within` passes first.
    pub async fn wait_for_value(
        &self,
        promql: &str,
        within: Duration,
        done: impl Fn(Option<f64>) -> bool,
    ) -> Result<Option<f64>, Option<f64>> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.query_scalar(promql).await;
            if done(value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(value);
            }
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }

    async fn query_params(&self, params: &[(&str, String)]) -> Vec<(Labels, f64)> {
        let body = self.get_json("/api/v1/query", params).await;
        let query = &params[0].1;
        assert_eq!(body["status"], "success", "{query}: {body}");
        parse_result(&body["data"]).unwrap_or_else(|| panic!("{query}: unexpected {body}"))
    }

    async fn get_json(&self, path: &str, params: &[(&str, String)]) -> Value {
        let base = format!("{}{path}", self.base_url);
        let pairs = params.iter().map(|(k, v)| (*k, v.as_str()));
        let url = url::Url::parse_with_params(&base, pairs).unwrap();
        let response = self.client.get(url.clone()).send().await;
        let response = response.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let bytes = response.bytes().await;
        let bytes = bytes.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// What Prometheus wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        read_log(self.dir.path())
    }

    /// The server's base URL, as infercheck's `--prometheus` takes it.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// Stops the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- prometheus log ---\n{}", self.log());
        }
    }
}

/// Polls `/-/ready` until it answers 200; `Err` when the process exits or
/// the deadline passes first.
async fn wait_ready(
    client: &reqwest::Client,
    base_url: &str,
    child: &mut Child,
) -> Result<(), String> {
    let url = format!("{base_url}/-/ready");
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}"));
        }
        let ready = client.get(&url).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not ready after {READY_DEADLINE:?}"));
        }
        tokio::time::sleep(POLL_PERIOD).await;
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
}

/// The scrape config: one job per job name, with its targets in order.
fn config(targets: &[(&str, SocketAddr)]) -> String {
    let mut yaml = format!(
        "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_TIMEOUT}\n\
         scrape_configs:\n"
    );
    let mut jobs: Vec<(&str, Vec<String>)> = Vec::new();
    for (job, addr) in targets {
        match jobs.iter_mut().find(|(name, _)| name == job) {
            Some((_, addrs)) => addrs.push(format!("'{addr}'")),
            None => jobs.push((job, vec![format!("'{addr}'")])),
        }
    }
    for (job, addrs) in jobs {
        yaml.push_str(&format!(
            "  - job_name: '{job}'\n    static_configs:\n      - targets: [{}]\n",
            addrs.join(", ")
        ));
    }
    yaml
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `prometheus` with its config, storage and log in `dir`, and
/// `extra` flags (e.g. `--web.enable-remote-write-receiver`).
pub fn spawn(dir: &Path, port: u16, extra: &[&str]) -> Child {
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let spawned = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // A test's data lives minutes; nothing to compact or keep.
        .arg("--storage.tsdb.retention.time=1h")
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn();
    match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => panic!(
            "the `prometheus` binary is not on PATH: install it with \
             `apt-get install -y prometheus` (Prometheus 2.42; .ci/run does this in CI)"
        ),
        Err(e) => panic!("cannot run prometheus: {e}"),
    }
}

/// `data` of a query answer as `(labels, value)` pairs: a vector's series,
/// or a scalar as one unlabelled entry.
fn parse_result(data: &Value) -> Option<Vec<(Labels, f64)>> {
    match data["resultType"].as_str()? {
        "vector" => data["result"]
            .as_array()?
            .iter()
            .map(|series| Some((labels(&series["metric"])?, sample_value(&series["value"])?)))
            .collect(),
        "scalar" => Some(vec![(Labels::new(), sample_value(&data["result"])?)]),
        _ => None,
    }
}

fn labels(metric: &Value) -> Option<Labels> {
    metric
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// `[unix_time, "value"]` → value (Prometheus sends values as strings so
/// that NaN and ±Inf survive JSON).
fn sample_value(pair: &Value) -> Option<f64> {
    pair.get(1)?.as_str()?.parse().ok()
}

fn single(promql: &str, mut series: Vec<(Labels, f64)>) -> Option<f64> {
    assert!(series.len() <= 1, "{promql}: several series {series:?}");
    series.pop().map(|(_, value)| value)
}
