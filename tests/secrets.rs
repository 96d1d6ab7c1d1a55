//! Secrets never leak (issue 14): plans carrying an API key (the target's
//! bearer token), basic-auth credentials (Prometheus) and a bearer token
//! (Jaeger) run through a success, a failure and a Ctrl-C, and every
//! output is searched for the credentials' values: the run folder's every
//! file (report.json/md/html, intervals.jsonl, run.log, raw data
//! decompressed, the history database, JUnit), the terminal (stdout and
//! stderr), infercheck's own /metrics and the client spans it exported.
//!
//! The search is proved able to fail: the plan's ordinary `x-tenant`
//! header value, which report.json records by design, must be found by
//! the same search — so a renderer that printed a credential header the
//! way it prints that one would fail this test. And the target must have
//! received the API key, so the credentials were really in use.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::hostile::{Hostile, Misbehaviour, NORMAL_STREAM, answer};
use crate::util::{binary, dead_address, exclusive, run_folder, write_plan};

/// Values no output may hold; unique enough never to occur by chance.
const API_KEY: &str = "sk-canary-3f9d1c7be42a4410";
const PROM_USER: &str = "ci-canary-user-7a61";
const PROM_PASSWORD: &str = "pw-canary-c0ffee9e1f2d";
const JAEGER_TOKEN: &str = "jt-canary-51b7e2d94c08";
const SECRETS: [&str; 4] = [API_KEY, PROM_USER, PROM_PASSWORD, JAEGER_TOKEN];

/// Recorded in report.json by design: the search must find it.
const TENANT: &str = "tenant-visible-88d2";

fn plan(target: &str, collector: &str, dead: &str) -> String {
    format!(
        "name = 'secrets'\n\
         thresholds = ['error_rate < 50%']\n\
         [target]\nbase_url = '{target}'\nstream = true\ntimeout = '2s'\n\
         headers = {{ 'x-tenant' = '{TENANT}' }}\n\
         auth = {{ bearer_env = 'CANARY_API_KEY' }}\n\
         [workload]\nmax_tokens = 4\n\
         [observe]\nprometheus = 'http://{dead}'\ndrain_timeout = '0s'\n\
         auth = {{ basic_user_env = 'CANARY_PROM_USER', basic_password_env = 'CANARY_PROM_PASSWORD' }}\n\
         [traces]\nbackend = 'jaeger'\nurl = 'http://{dead}'\ngrace = '0s'\nlookup_timeout = '1s'\n\
         client_spans = true\nclient_spans_endpoint = '{collector}'\n\
         auth = {{ bearer_env = 'CANARY_JAEGER_TOKEN' }}\n\
         [[phases]]\nname = 'p'\nduration = '3s'\nload = {{ type = 'constant', rate = 10 }}\n"
    )
}

/// `infercheck run` of the plan in `dir`, the credentials in its
/// environment, JUnit and its own /metrics on.
fn command(dir: &Path) -> Command {
    let mut command = binary();
    command
        .arg("run")
        .arg(dir.join("plan.toml"))
        .arg("--out")
        .arg(dir.join("results"))
        .arg("--junit")
        .arg(dir.join("results/junit.xml"))
        .args(["--metrics-listen", "127.0.0.1:0"])
        .env("CANARY_API_KEY", API_KEY)
        .env("CANARY_PROM_USER", PROM_USER)
        .env("CANARY_PROM_PASSWORD", PROM_PASSWORD)
        .env("CANARY_JAEGER_TOKEN", JAEGER_TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Every file under `root`, gzip bodies decompressed.
fn files_under(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            if bytes.starts_with(&[0x1f, 0x8b]) {
                let mut plain = Vec::new();
                flate2::read::MultiGzDecoder::new(&bytes[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                bytes = plain;
            }
            out.push((path, bytes));
        }
    }
    out
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every output of one run, by name.
struct Outputs(Vec<(String, Vec<u8>)>);

impl Outputs {
    fn gather(
        dir: &Path,
        output: &Output,
        own_metrics: Option<Vec<u8>>,
        collector: &Hostile,
    ) -> Self {
        let mut all: Vec<(String, Vec<u8>)> = files_under(&dir.join("results"))
            .into_iter()
            .map(|(path, bytes)| (path.display().to_string(), bytes))
            .collect();
        assert!(
            all.iter().any(|(p, _)| p.ends_with("report.json"))
                && all.iter().any(|(p, _)| p.ends_with("junit.xml")),
            "the run wrote its reports: {:?}",
            all.iter().map(|(p, _)| p).collect::<Vec<_>>()
        );
        all.push(("stdout".into(), output.stdout.clone()));
        all.push(("stderr".into(), output.stderr.clone()));
        if let Some(metrics) = own_metrics {
            all.push(("own /metrics".into(), metrics));
        }
        for (i, request) in collector.raw_requests().into_iter().enumerate() {
            all.push((format!("exported span request {i}"), request));
        }
        Outputs(all)
    }

    /// The outputs holding `needle`.
    fn holding(&self, needle: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(_, bytes)| holds(bytes, needle))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    fn assert_no_secret(&self, path: &str) {
        for secret in SECRETS {
            let found = self.holding(secret);
            assert!(found.is_empty(), "{path}: {secret} leaked into {found:?}");
        }
        let tenant = self.holding(TENANT);
        assert!(
            tenant.iter().any(|name| name.ends_with("report.json")),
            "{path}: the search must find the header value report.json records: {tenant:?}"
        );
    }
}

/// The address of infercheck's own /metrics, from its announcement.
fn metrics_url(stderr: &str) -> Option<String> {
    let at = stderr.find("serving its own metrics on ")?;
    let rest = &stderr[at + "serving its own metrics on ".len()..];
    Some(rest.split_whitespace().next()?.to_owned())
}

/// Starts the run, reads its own /metrics once a few requests are done,
/// then (`interrupt`) sends SIGINT or lets it finish.
fn run_and_scrape(dir: &Path, interrupt: bool) -> (Output, Option<Vec<u8>>) {
    let mut child: Child = command(dir).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.extend_from_slice(&buf[..n]);
            let _ = tx.send(text.clone());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut url = None;
    while url.is_none() && Instant::now() < deadline {
        if let Ok(text) = rx.recv_timeout(Duration::from_millis(100)) {
            seen = text;
            url = metrics_url(&String::from_utf8_lossy(&seen));
        }
    }
    let url =
        url.unwrap_or_else(|| panic!("no metrics address: {}", String::from_utf8_lossy(&seen)));
    let metrics = scrape_after_requests(&url);
    if interrupt {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    let status = child.wait().unwrap();
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    while let Ok(text) = rx.recv_timeout(Duration::from_millis(500)) {
        seen = text;
    }
    let output = Output {
        status,
        stdout,
        stderr: seen,
    };
    (output, metrics)
}

/// /metrics once it counts a finished request (polled, bounded).
fn scrape_after_requests(url: &str) -> Option<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(body) = http_get(url)
            && holds(&body, "infercheck_requests_total{")
        {
            return Some(body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// `GET url` (plain http, a loopback address) over a fresh connection;
/// the whole answer, head included.
fn http_get(url: &str) -> Option<Vec<u8>> {
    use std::io::Write;
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = std::net::TcpStream::connect(authority).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET /{path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    Some(answer)
}

/// One path: the target answers with `target`, the run goes through it.
async fn path(name: &str, target: Misbehaviour, interrupt: bool, expected_exit: i32) {
    let _held = exclusive().await;
    let server = Hostile::start(target).await;
    let collector = Hostile::start(Misbehaviour::Raw(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    write_plan(
        dir.path(),
        &plan(&server.base_url, &collector.base_url, &dead_address()),
    );
    let path = dir.path().to_owned();
    let (output, metrics) = tokio::task::spawn_blocking(move || run_and_scrape(&path, interrupt))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(expected_exit),
        "{name}: {stderr}"
    );
    assert!(metrics.is_some(), "{name}: its own /metrics was read");
    let sent_key = server.raw_requests().iter().any(|r| {
        holds(r, &format!("authorization: Bearer {API_KEY}"))
            || holds(r, &format!("Authorization: Bearer {API_KEY}"))
    });
    assert!(sent_key, "{name}: the target received the API key");
    assert!(
        !collector.raw_requests().is_empty(),
        "{name}: client spans were exported"
    );
    let outputs = Outputs::gather(dir.path(), &output, metrics, &collector);
    outputs.assert_no_secret(name);
    assert!(
        run_folder(&dir.path().join("results")).is_some(),
        "{name}: a run folder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output_on_success() {
    path("success", Misbehaviour::Raw(NORMAL_STREAM), false, 0).await;
}

/// Every request 401: the thresholds fail (exit 4).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output_on_failure() {
    let unauthorized = answer(
        "401 Unauthorized",
        "application/json",
        "{\"error\":\"bad key\"}",
    );
    path("failure", Misbehaviour::Raw(unauthorized), false, 4).await;
}

/// SIGINT with streams open: the partial report (exit 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_output_on_ctrl_c() {
    path("ctrl-c", Misbehaviour::EndlessStream, true, 3).await;
}
