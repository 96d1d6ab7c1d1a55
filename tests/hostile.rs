//! Hostile targets (issue 14): a small loopback server that misbehaves on
//! purpose — streams that never end, bodies far larger than the cap, one
//! byte per second, invalid UTF-8 and JSON, chunked encoding cut
//! mid-chunk, a reset after the headers, an HTML page with 200, 429 with
//! Retry-After, redirects, a server that accepts and never answers — and
//! IPv6 loopback. Each case is a real run through the load engine; each is
//! counted under one named error kind for every request sent, finishes
//! within its request timeout (no hang), and the huge bodies leave the
//! process's RSS within a stated bound.
//!
//! The server speaks just enough HTTP/1.1 by hand to break it in exactly
//! the way each case needs: it reads a request head (and its body, by
//! Content-Length), answers `404` on every path but the completions
//! endpoint, and hands the completions request's connection to the case.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use infercheck::report::StatsBlock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::MutexGuard;
use tokio::time::Instant;

use crate::util::{exclusive, run_holding};

/// What the server does with a completions request's connection.
#[derive(Clone, Copy, Debug)]
pub enum Misbehaviour {
    /// 200 `text/event-stream`, a token chunk every 20 ms, never `[DONE]`.
    EndlessStream,
    /// 200 `application/json` announcing and sending this many bytes.
    HugeBody(u64),
    /// 200 `text/event-stream`: one `data:` line this long, no newline.
    GiantSseLine(u64),
    /// 200 `text/event-stream`, then one byte of a chunk every second.
    Drip,
    /// These bytes as the whole answer, then the connection closed.
    Raw(&'static [u8]),
    /// A 200 event-stream head and one chunk, then a TCP reset.
    ResetAfterHeaders,
    /// The request read, then nothing: the connection held open, silent.
    Silent,
}

/// The misbehaving server on 127.0.0.1 (or `[::1]`) at a free port.
pub struct Hostile {
    pub base_url: String,
    /// POSTs to the completions endpoint read.
    completions: Arc<AtomicU64>,
    /// Requests for any other path (the preflight's `/health`, a redirect's
    /// `Location`, ...), as "METHOD path".
    others: Arc<std::sync::Mutex<Vec<String>>>,
    /// Every request read, head and body, as received.
    raw: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

/// The connection's shared records.
#[derive(Clone)]
struct Records {
    completions: Arc<AtomicU64>,
    others: Arc<std::sync::Mutex<Vec<String>>>,
    raw: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

const COMPLETIONS: &str = "/v1/chat/completions";

impl Hostile {
    pub async fn start(behaviour: Misbehaviour) -> Hostile {
        Self::start_on("127.0.0.1:0", Some(behaviour)).await
    }

    /// `None`: accept every connection and never read or answer.
    async fn start_on(bind: &str, behaviour: Option<Misbehaviour>) -> Hostile {
        let listener = TcpListener::bind(bind).await.expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let records = Records {
            completions: Arc::new(AtomicU64::new(0)),
            others: Arc::default(),
            raw: Arc::default(),
        };
        let kept = records.clone();
        tokio::spawn(async move {
            let mut silent = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                let Some(behaviour) = behaviour else {
                    silent.push(stream); // held open, never read
                    continue;
                };
                tokio::spawn(serve(stream, behaviour, kept.clone()));
            }
        });
        Hostile {
            base_url: format!("http://{addr}"),
            completions: records.completions,
            others: records.others,
            raw: records.raw,
        }
    }

    fn completions(&self) -> u64 {
        self.completions.load(Ordering::SeqCst)
    }

    fn others(&self) -> Vec<String> {
        self.others.lock().unwrap().clone()
    }

    /// Every request read so far, head and body.
    pub fn raw_requests(&self) -> Vec<Vec<u8>> {
        self.raw.lock().unwrap().clone()
    }
}

/// Reads requests off one connection: 404 to each until the completions
/// request, whose connection then belongs to the misbehaviour.
async fn serve(mut stream: TcpStream, behaviour: Misbehaviour, records: Records) {
    while let Some((request, raw)) = read_request(&mut stream).await {
        records.raw.lock().unwrap().push(raw);
        if request == format!("POST {COMPLETIONS}") {
            records.completions.fetch_add(1, Ordering::SeqCst);
            misbehave(stream, behaviour).await;
            return;
        }
        records.others.lock().unwrap().push(request);
        let answer = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        if stream.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// "METHOD path" of the next request and the request as read (head and
/// body); `None` when the client closed the connection.
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let mut raw = head.clone();
    let head = String::from_utf8_lossy(&head).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    raw.extend_from_slice(&body);
    let mut words = head.split_whitespace();
    Some((format!("{} {}", words.next()?, words.next()?), raw))
}

const STREAM_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";

const TOKEN_EVENT: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\
    \"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok\"}}]}\n\n";

/// One HTTP/1.1 chunk holding `data`.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

/// Writes `total` bytes of `fill` in 64 KiB pieces (never held at once).
async fn write_filler(stream: &mut TcpStream, total: u64, fill: u8) -> std::io::Result<()> {
    let piece = vec![fill; 64 * 1024];
    let mut left = total;
    while left > 0 {
        let n = left.min(piece.len() as u64) as usize;
        stream.write_all(&piece[..n]).await?;
        left -= n as u64;
    }
    Ok(())
}

/// Each arm ends when the client gives up (a write fails) or the case is
/// over; nothing here loops without a write that can fail.
async fn misbehave(mut stream: TcpStream, behaviour: Misbehaviour) {
    let _ = match behaviour {
        Misbehaviour::EndlessStream => endless(&mut stream).await,
        Misbehaviour::HugeBody(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\n\r\n"
            );
            match stream.write_all(head.as_bytes()).await {
                Ok(()) => write_filler(&mut stream, bytes, b' ').await,
                Err(e) => Err(e),
            }
        }
        Misbehaviour::GiantSseLine(bytes) => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\ndata: ";
            match stream.write_all(head.as_bytes()).await {
                Ok(()) => write_filler(&mut stream, bytes, b'a').await,
                Err(e) => Err(e),
            }
        }
        Misbehaviour::Drip => drip(&mut stream).await,
        Misbehaviour::Raw(bytes) => stream.write_all(bytes).await,
        Misbehaviour::ResetAfterHeaders => {
            let mut answer = STREAM_HEAD.to_vec();
            answer.extend(chunk(TOKEN_EVENT.as_bytes()));
            let written = stream.write_all(&answer).await;
            // Linger 0: close sends RST instead of FIN.
            let _ = stream.set_zero_linger();
            written
        }
        Misbehaviour::Silent => {
            // Holds the connection until the client closes it.
            let mut sink = [0u8; 1024];
            while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            Ok(())
        }
    };
    let _ = stream.shutdown().await;
}

async fn endless(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(STREAM_HEAD).await?;
    let event = chunk(TOKEN_EVENT.as_bytes());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tick.tick().await;
        stream.write_all(&event).await?;
    }
}

async fn drip(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.write_all(STREAM_HEAD).await?;
    let event = TOKEN_EVENT.as_bytes();
    stream
        .write_all(format!("{:x}\r\n", event.len()).as_bytes())
        .await?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for byte in event.iter().cycle() {
        tick.tick().await;
        stream.write_all(&[*byte]).await?;
    }
    Ok(())
}

/// `requests` requests at 10 req/s (streaming or not), with this request
/// timeout, no drain window (the server has no metrics to drain) and
/// `extra` lines in `[target]`.
fn plan(requests: u32, stream: bool, timeout: &str, extra: &str) -> String {
    let duration_ms = requests * 100;
    format!(
        "name = 'hostile'\n[target]\nstream = {stream}\ntimeout = '{timeout}'\n{extra}\n\
         [workload]\nmax_tokens = 4\n\
         [observe]\ndrain_timeout = '0s'\n\
         [[phases]]\nname = 'p'\nduration = '{duration_ms}ms'\nload = {{ type = 'constant', rate = 10 }}\n"
    )
}

/// The run's overall stats, the run bounded by `bound` of wall time.
async fn run_against(
    held: &MutexGuard<'static, ()>,
    plan: &str,
    server: &Hostile,
    bound: Duration,
) -> StatsBlock {
    let started = Instant::now();
    let (result, _dir) =
        tokio::time::timeout(bound, run_holding(held, plan, Some(&server.base_url)))
            .await
            .unwrap_or_else(|_| panic!("the run hung past {bound:?}"));
    eprintln!("run took {:?}", started.elapsed());
    result.report.overall
}

/// Every one of `requests` requests failed, all as `kind`.
fn assert_all(s: &StatsBlock, requests: u64, kind: &str) {
    assert_eq!(s.requests, requests, "{:?}", s.errors);
    assert_eq!(s.ok, 0, "{:?}", s.errors);
    assert_eq!(
        s.errors.get(kind).copied(),
        Some(requests),
        "every request is {kind}: {:?}",
        s.errors
    );
    assert_eq!(s.errors.len(), 1, "one kind only: {:?}", s.errors);
}

/// Runs `requests` requests against `behaviour` and checks every one is
/// counted as `kind` within `bound`. Returns the server for further checks.
async fn expect_kind(
    behaviour: Misbehaviour,
    stream: bool,
    timeout: &str,
    requests: u32,
    kind: &str,
    bound: Duration,
) -> Hostile {
    let held = exclusive().await;
    let server = Hostile::start(behaviour).await;
    let s = run_against(&held, &plan(requests, stream, timeout, ""), &server, bound).await;
    assert_all(&s, requests.into(), kind);
    assert_eq!(server.completions(), u64::from(requests), "never retried");
    server
}

// A run of N requests at 10 req/s lasts N/10 s of load plus the last
// request's timeout plus report writing; each bound below is that with a
// few seconds to spare on a loaded 2-core machine.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_never_ends_is_a_timeout() {
    let bound = Duration::from_secs(15);
    expect_kind(Misbehaviour::EndlessStream, true, "1s", 5, "timeout", bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_byte_a_second_is_a_timeout() {
    let bound = Duration::from_secs(15);
    expect_kind(Misbehaviour::Drip, true, "2500ms", 3, "timeout", bound).await;
}

/// Answers its health check, then never answers a completion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_never_answers_is_a_timeout() {
    let bound = Duration::from_secs(15);
    expect_kind(Misbehaviour::Silent, true, "1s", 5, "timeout", bound).await;
}

/// Silent from the first byte, health check included: the preflight
/// gives up after its 10 s per probe and the run ends "could not run"
/// (exit 3) naming what was asked, before any load is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_silent_from_the_start_fails_the_preflight_with_exit_3() {
    let server = Hostile::start_on("127.0.0.1:0", None).await;
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::util::write_plan(dir.path(), &plan(5, true, "1s", ""));
    let mut args = infercheck::cli::RunArgs::new(plan.to_str().unwrap(), dir.path().join("out"));
    args.target = Some(server.base_url.clone());
    let run = infercheck::runner::run_plan(args);
    let failure = match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(Err(failure)) => failure,
        Ok(Ok(result)) => panic!("ran against a silent server: {:?}", result.report.verdict),
        Err(_) => panic!("the preflight hung"),
    };
    assert_eq!(failure.code, 3, "{}", failure.message);
    assert!(
        failure.message.contains("did not answer")
            && failure
                .message
                .contains("GET /health: no answer within 10s"),
        "{}",
        failure.message
    );
    assert_eq!(server.completions(), 0);
}

/// A whole, well-framed stream whose one event is `payload`.
macro_rules! stream_of {
    ($payload:literal) => {
        concat!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            $payload,
            "data: [DONE]\n\n"
        )
        .as_bytes()
    };
}

/// `infercheck run` of `plan` against `server` as a child process (so no
/// other test's memory is counted): its report and its peak resident set
/// (VmHWM, read every 10 ms while it runs; the peak only rises, so the
/// last read is within 10 ms of the end).
async fn peak_rss_of_run(plan: &str, server: &Hostile) -> (serde_json::Value, u64) {
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::util::write_plan(dir.path(), plan);
    let out = dir.path().join("results");
    let mut child = tokio::process::Command::from(crate::util::binary())
        .arg("run")
        .arg(&plan)
        .args(["--target", &server.base_url, "--quiet", "--out"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("infercheck starts");
    let status_file = format!("/proc/{}/status", child.id().unwrap());
    let mut peak = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        tokio::select! {
            status = child.wait() => break status.unwrap(),
            _ = tick.tick() => {
                assert!(Instant::now() < deadline, "the run hung");
                let status = std::fs::read_to_string(&status_file).unwrap_or_default();
                peak = peak.max(vm_hwm_kib(&status).unwrap_or(0) * 1024);
            }
        }
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
    let folder = crate::util::run_folder(&out).expect("a run folder");
    let report = std::fs::read(folder.join("report.json")).unwrap();
    (serde_json::from_slice(&report).unwrap(), peak)
}

fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

const MIB: u64 = 1 << 20;

/// The peak RSS of `plan` against `behaviour`, less that of the same plan
/// against a server answering each request at once with `normal`; every
/// request of the first is `too_large`, every one of the second ok.
async fn too_large_peak_over_normal(
    behaviour: Misbehaviour,
    normal: &'static [u8],
    plan: &str,
    requests: u64,
) -> u64 {
    let _held = exclusive().await;
    let hostile = Hostile::start(behaviour).await;
    let (report, hostile_peak) = peak_rss_of_run(plan, &hostile).await;
    let overall = &report["overall"];
    assert_eq!(overall["requests"], requests, "{overall}");
    assert_eq!(overall["errors"]["too_large"], requests, "{overall}");
    let fine = Hostile::start(Misbehaviour::Raw(normal)).await;
    let (report, normal_peak) = peak_rss_of_run(plan, &fine).await;
    assert_eq!(report["overall"]["ok"], requests, "{}", report["overall"]);
    eprintln!(
        "peak RSS {:.1} MiB against {:.1} MiB for normal answers",
        hostile_peak as f64 / MIB as f64,
        normal_peak as f64 / MIB as f64
    );
    hostile_peak.saturating_sub(normal_peak)
}

/// A whole chat completion with usage, as `NORMAL_BODY`'s answer.
const COMPLETION: &str = "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"ok\"}}],\
    \"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}";

/// A whole stream of one token.
pub const NORMAL_STREAM: &[u8] =
    stream_of!("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n");

/// Ten 32 MiB bodies against a 1 MiB cap: each is `too_large` after at
/// most 1 MiB and one read. Above a run of normal answers the peak RSS may
/// hold, per worker thread (2 here), one capped body's buffer — 2 MiB once
/// it doubled past 1 MiB, plus the 1 MiB it grew from, which the allocator
/// keeps in that thread's arena — and hyper's read buffers: under 10 MiB,
/// against the 320 MiB offered (measured: 6.4 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_too_large_at_the_cap_and_memory_stays_bounded() {
    let plan = plan(10, false, "10s", &format!("max_response_bytes = {MIB}"));
    let behaviour = Misbehaviour::HugeBody(32 * MIB);
    let normal = answer("200 OK", "application/json", COMPLETION);
    let growth = too_large_peak_over_normal(behaviour, normal, &plan, 10).await;
    assert!(growth < 10 * MIB, "peak RSS {growth} bytes above normal");
}

/// Five 64 MiB SSE lines with the body cap at its default (64 MiB): the
/// event buffer's own limit (1 MiB) stops each, with the same bound
/// (measured: 3.4 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_giant_sse_line_is_too_large_at_the_event_limit_and_memory_stays_bounded() {
    let plan = plan(5, true, "10s", "");
    let behaviour = Misbehaviour::GiantSseLine(64 * MIB);
    let growth = too_large_peak_over_normal(behaviour, NORMAL_STREAM, &plan, 5).await;
    assert!(growth < 10 * MIB, "peak RSS {growth} bytes above normal");
}

/// A whole answer with this status, content type and body (its length
/// counted), for the life of the test binary.
pub fn answer(status: &str, content_type: &str, body: &str) -> &'static [u8] {
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    Box::leak(text.into_bytes().into_boxed_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_in_a_stream_is_decode() {
    const BODY: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"\xff\xfe\xc3\"}}]}\n\ndata: [DONE]\n\n";
    let bound = Duration::from_secs(10);
    expect_kind(Misbehaviour::Raw(BODY), true, "5s", 5, "decode", bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_in_a_stream_is_decode() {
    let body = stream_of!("data: {\"choices\":[{\"delta\":{\"content\":\"a\"\n\n");
    let bound = Duration::from_secs(10);
    expect_kind(Misbehaviour::Raw(body), true, "5s", 5, "decode", bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_in_a_whole_body_is_decode() {
    let body = answer("200 OK", "application/json", "{\"usage\":");
    let bound = Duration::from_secs(10);
    expect_kind(Misbehaviour::Raw(body), false, "5s", 5, "decode", bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_encoding_cut_mid_chunk_is_a_stream_error() {
    // A chunk announced as 0x100 bytes, 16 sent, then the connection closed.
    const BODY: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n\
        100\r\ndata: {\"choices\"";
    let bound = Duration::from_secs(10);
    expect_kind(
        Misbehaviour::Raw(BODY),
        true,
        "5s",
        5,
        "stream_error",
        bound,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_after_the_headers_is_a_stream_error() {
    let bound = Duration::from_secs(10);
    let behaviour = Misbehaviour::ResetAfterHeaders;
    expect_kind(behaviour, true, "5s", 5, "stream_error", bound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_with_200_on_a_stream_is_decode() {
    let page = "<html><body>502 Bad Gateway (nginx)</body></html>";
    let body = answer("200 OK", "text/html; charset=utf-8", page);
    let bound = Duration::from_secs(10);
    expect_kind(Misbehaviour::Raw(body), true, "5s", 5, "decode", bound).await;
}

/// Counted, never retried: the server saw exactly the plan's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_is_rate_limited_and_never_retried() {
    const BODY: &[u8] =
        b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 30\r\ncontent-length: 0\r\n\r\n";
    let bound = Duration::from_secs(10);
    expect_kind(
        Misbehaviour::Raw(BODY),
        true,
        "5s",
        10,
        "rate_limited",
        bound,
    )
    .await;
}

/// Not followed: the `Location` is never asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_http_3xx_and_not_followed() {
    const BODY: &[u8] =
        b"HTTP/1.1 302 Found\r\nlocation: /v1/elsewhere\r\ncontent-length: 0\r\n\r\n";
    let bound = Duration::from_secs(10);
    let server = expect_kind(Misbehaviour::Raw(BODY), true, "5s", 5, "http_3xx", bound).await;
    let others = server.others();
    assert!(
        !others.iter().any(|r| r.contains("/v1/elsewhere")),
        "followed: {others:?}"
    );
}

/// The embedded simulator on `[::1]`: a normal run, every request ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_is_a_target_like_any_other() {
    let held = exclusive().await;
    let server =
        infercheck::sim::SimServer::start("[::1]:0".parse().unwrap(), crate::util::exact_sim(5, 1))
            .await
            .expect("the simulator starts on [::1]");
    let base_url = server.base_url();
    assert!(base_url.contains("[::1]"), "{base_url}");
    let (result, _dir) = run_holding(&held, &plan(5, true, "5s", ""), Some(&base_url)).await;
    let s = &result.report.overall;
    assert_eq!((s.requests, s.ok), (5, 5), "{:?}", s.errors);
    server.stop().await;
}

// ------------------------------------------- a results folder that fills up

/// A file size limit (RLIMIT_FSIZE, SIGXFSZ ignored so a write past it
/// fails with EFBIG as on a full disk) for the child about to start.
fn limit_file_size(command: &mut std::process::Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (signal, setrlimit), touching no memory the parent shares.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Every file it writes may hold 8 KiB: intervals.jsonl fills after a few
/// seconds of a 60 s plan. The load stops at once (the run ends far short
/// of its plan), the exit is 3 with the file named, intervals.jsonl holds
/// whole lines only, and the summary still reaches the terminal.
#[test]
fn a_results_folder_that_fills_up_stops_the_load_with_exit_3_and_keeps_whole_lines() {
    let _held = crate::util::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let plan = crate::util::write_plan(
        dir.path(),
        "name = 'full'\n[target]\nstream = true\n[workload]\nmax_tokens = 8\n\
         [[phases]]\nname = 'p'\nduration = '60s'\nload = { type = 'constant', rate = 20 }\n",
    );
    let out = dir.path().join("results");
    let mut command = crate::util::binary();
    command
        .arg("run")
        .arg(&plan)
        .arg("--out")
        .arg(&out)
        .arg("--no-history");
    limit_file_size(&mut command, 8 * 1024);
    let started = std::time::Instant::now();
    let output = command.output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stderr}\n{stdout}");
    assert!(took < Duration::from_secs(40), "the load went on: {took:?}");
    assert!(
        stderr.contains("cannot append to") && stderr.contains("intervals.jsonl"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Requests"),
        "the summary is printed: {stdout}"
    );
    let folder = crate::util::run_folder(&out).expect("the run folder");
    let intervals = std::fs::read(folder.join("intervals.jsonl")).unwrap();
    assert!(!intervals.is_empty() && intervals.ends_with(b"\n"));
    let lines: Vec<&[u8]> = intervals
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    for line in &lines {
        serde_json::from_slice::<serde_json::Value>(line).expect("a whole JSON line");
    }
    eprintln!("{} whole lines kept, {took:?}; {stderr}", lines.len());
}
