//! One HTTP exchange, timed: send, status, SSE chunks (TTFT, every gap for
//! ITL, last token), usage, and the error kind when it fails. Connections
//! are reused through reqwest's pool. Nothing here allocates per token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::pin::Pin;

use super::request::Prepared;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use tokio_util::sync::WaitForCancellationFutureOwned;

use super::checks::TaskChecks;
use super::sse::{self, Chunk};
use crate::clock::Clock;
use crate::outcome::ErrorKind;
use crate::plan::{Api, Plan};
use crate::stats::Histogram;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid target URL `{url}`: {message}")]
    Url { url: String, message: String },
    /// Names the header, never its value (it may be a credential).
    #[error("invalid request header: {0}")]
    Header(String),
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// What an exchange measured, on the run clock.
#[derive(Clone, Debug, Default)]
pub struct Timing {
    pub sent: Duration,
    pub first_token: Option<Duration>,
    pub last_token: Option<Duration>,
    pub end: Duration,
    pub output_tokens: u32,
    pub tokens_from_usage: bool,
    /// The server's `usage.prompt_tokens`, when it sent usage.
    pub prompt_tokens: Option<u32>,
    /// The server sent usage on every token chunk (`continuous_usage_stats`),
    /// so each read's gap was split by the tokens it carried, not its chunks.
    pub itl_from_usage: bool,
    pub status: u16,
    pub error: Option<ErrorKind>,
    /// The response named another model than the request asked for.
    pub other_model: bool,
    /// The task's body checks judged on the body (bit i failed: check
    /// i); `None` when no body was read or no check reads one.
    pub body_checks_failed: Option<u32>,
    /// The first failed body check and what it found.
    pub check_sample: Option<(u8, Box<str>)>,
}

/// Where one task's requests go and how their answers are read.
struct Endpoint {
    method: reqwest::Method,
    url: reqwest::Url,
    /// Origin-form request target (path and query), for the direct transport.
    origin: http::Uri,
    api: Api,
    stream: bool,
    tokens_pointer: Option<String>,
    /// The task's checks; the body ones run here.
    checks: TaskChecks,
    /// Some check reads the body (as JSON, for `body_json`).
    body_checks: bool,
    body_json: bool,
}

/// How requests reach the target. Plain `http://` targets get one hyper
/// HTTP/1.1 connection per worker (no pool lock, no per-request URL
/// parsing: oha's fast path, measured at ~2× reqwest on loopback, see
/// benches/README.md); `https://` goes through reqwest's pool and TLS.
#[derive(Clone)]
enum Transport {
    Direct(Arc<Direct>),
    Pooled(reqwest::Client),
}

struct Direct {
    /// host:port to connect to.
    authority: String,
    headers: HeaderMap,
}

/// A worker's own connection for the direct transport; reconnects when the
/// server closes it. Unused with the pooled transport.
#[derive(Default)]
pub struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// A cheap-to-clone HTTP client aimed at one target: one endpoint per
/// task of the plan.
#[derive(Clone)]
pub struct Client {
    transport: Transport,
    endpoints: Arc<[Endpoint]>,
    timeout: Duration,
    /// Bytes of one response body read at most (`too_large` beyond).
    max_response_bytes: u64,
}

impl Client {
    pub fn new(plan: &Plan, base_url: &str, pool_size: usize) -> Result<Client, ClientError> {
        let target = &plan.target;
        let endpoints = plan
            .tasks
            .iter()
            .map(|task| endpoint(task, base_url))
            .collect::<Result<Vec<_>, _>>()?;
        let first = &endpoints[0].url;
        let url_error = |message: String| ClientError::Url {
            url: base_url.to_owned(),
            message,
        };
        let headers = default_headers(plan)?;
        let transport = if first.scheme() == "http" {
            // `host_str` already brackets an IPv6 address ("[::1]").
            let host = first
                .host_str()
                .ok_or_else(|| url_error("no host".into()))?;
            let port = first.port_or_known_default().unwrap_or(80);
            let authority = format!("{host}:{port}");
            let mut headers = headers;
            let host_value =
                HeaderValue::from_str(&authority).map_err(|e| url_error(e.to_string()))?;
            headers.insert(reqwest::header::HOST, host_value);
            Transport::Direct(Arc::new(Direct { authority, headers }))
        } else {
            let redirects = if target.follow_redirects {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            };
            Transport::Pooled(
                target
                    .access
                    .tls(crate::tls::client_builder())
                    .redirect(redirects)
                    .no_proxy() // load must go where the plan says, never through a proxy
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(pool_size)
                    .connect_timeout(target.timeout.min(Duration::from_secs(10)))
                    .default_headers(headers)
                    .build()?,
            )
        };
        Ok(Client {
            transport,
            endpoints: endpoints.into(),
            timeout: target.timeout,
            max_response_bytes: target.max_response_bytes,
        })
    }

    /// The checks of task `task`, judged here on bodies and by the worker
    /// on outcomes.
    pub fn checks(&self, task: u16) -> &TaskChecks {
        &self.endpoints[usize::from(task)].checks
    }

    /// Sends `body` (with a `traceparent` header when given) and times the
    /// exchange. Gaps between content chunks go into `itl`. `cancelled` is
    /// the worker's one cancellation future, polled here so no waiter is
    /// registered per request. Never fails: failures are an `error` in the
    /// timing.
    #[allow(clippy::too_many_arguments)] // per-worker state, passed not shared
    pub async fn send(
        &self,
        request: &Prepared,
        traceparent: Option<&HeaderValue>,
        clock: &Clock,
        cancelled: Pin<&mut WaitForCancellationFutureOwned>,
        connection: &mut Connection,
        parser: &mut sse::Parser,
        itl: &mut Histogram,
    ) -> Timing {
        let mut timing = Timing {
            sent: clock.now(),
            ..Timing::default()
        };
        let exchange = tokio::time::timeout(
            self.timeout,
            self.exchange(
                request,
                traceparent,
                clock,
                &mut timing,
                connection,
                parser,
                itl,
            ),
        );
        let result = tokio::select! {
            result = exchange => result.unwrap_or(Err(ErrorKind::Timeout)),
            () = cancelled => Err(ErrorKind::Cancelled),
        };
        timing.end = clock.now();
        timing.error = result.err();
        if timing.error.is_some() {
            // A half-read response leaves the connection unusable.
            connection.sender = None;
        }
        timing
    }

    #[allow(clippy::too_many_arguments)] // per-worker state, passed not shared
    async fn exchange(
        &self,
        request: &Prepared,
        traceparent: Option<&HeaderValue>,
        clock: &Clock,
        timing: &mut Timing,
        connection: &mut Connection,
        parser: &mut sse::Parser,
        itl: &mut Histogram,
    ) -> Result<(), ErrorKind> {
        let body = request.body.clone();
        let asked = request.asked_model.as_deref();
        let endpoint = &self.endpoints[usize::from(request.task)];
        let mut response = match &self.transport {
            Transport::Direct(direct) => {
                self.send_direct(endpoint, direct, body, traceparent, connection)
                    .await?
            }
            Transport::Pooled(http) => self.send_pooled(endpoint, http, body, traceparent).await?,
        };
        timing.status = response.status();
        if !(200..300).contains(&timing.status) {
            // Drain so the connection can be reused; the body is not needed.
            while let Some(Ok(_)) = response.chunk().await {}
            return Err(ErrorKind::from_status(timing.status));
        }
        let cap = self.max_response_bytes;
        if endpoint.stream {
            if !response.is_event_stream() {
                return Err(ErrorKind::Decode); // e.g. an HTML error page with 200
            }
            read_stream(&mut response, clock, timing, parser, itl, asked, cap).await
        } else {
            let mut bytes = Vec::new();
            while let Some(chunk) = response.chunk().await {
                bytes.extend_from_slice(&chunk.map_err(|()| ErrorKind::StreamError)?);
                if bytes.len() as u64 > cap {
                    return Err(ErrorKind::TooLarge);
                }
            }
            read_body(endpoint, &bytes, timing, asked)
        }
    }

    async fn send_pooled(
        &self,
        endpoint: &Endpoint,
        http: &reqwest::Client,
        body: Bytes,
        traceparent: Option<&HeaderValue>,
    ) -> Result<Response, ErrorKind> {
        let mut request = http.request(endpoint.method.clone(), endpoint.url.clone());
        if let Some(value) = traceparent {
            request = request.header(TRACEPARENT, value.clone());
        }
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Connect
            }
        })?;
        Ok(Response::Pooled(response))
    }

    async fn send_direct(
        &self,
        endpoint: &Endpoint,
        direct: &Direct,
        body: Bytes,
        traceparent: Option<&HeaderValue>,
        connection: &mut Connection,
    ) -> Result<Response, ErrorKind> {
        // A kept-alive connection the server closed meanwhile fails at once;
        // that is not the target refusing work, so retry once on a fresh one.
        let reused = connection.sender.is_some();
        match self
            .try_direct(endpoint, direct, body.clone(), traceparent, connection)
            .await
        {
            Err(ErrorKind::Connect) if reused => {
                self.try_direct(endpoint, direct, body, traceparent, connection)
                    .await
            }
            other => other,
        }
    }

    async fn try_direct(
        &self,
        endpoint: &Endpoint,
        direct: &Direct,
        body: Bytes,
        traceparent: Option<&HeaderValue>,
        connection: &mut Connection,
    ) -> Result<Response, ErrorKind> {
        let sender = connection.ready(&direct.authority).await?;
        let mut request = http::Request::new(Full::new(body.clone()));
        *request.method_mut() = endpoint.method.clone();
        *request.uri_mut() = endpoint.origin.clone();
        let headers = request.headers_mut();
        headers.clone_from(&direct.headers);
        if !body.is_empty() {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if let Some(value) = traceparent {
            headers.insert(TRACEPARENT, value.clone());
        }
        match sender.send_request(request).await {
            Ok(response) => Ok(Response::Direct(response)),
            Err(_) => {
                connection.sender = None;
                Err(ErrorKind::Connect)
            }
        }
    }
}

impl Connection {
    /// The connection, opened (again) if needed and ready for a request.
    async fn ready(&mut self, authority: &str) -> Result<&mut SendRequest<Full<Bytes>>, ErrorKind> {
        if let Some(sender) = &mut self.sender
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = tokio::net::TcpStream::connect(authority)
                .await
                .map_err(|_| ErrorKind::Connect)?;
            let _ = stream.set_nodelay(true);
            let (sender, connection) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|_| ErrorKind::Connect)?;
            tokio::spawn(async move {
                // Ends when the worker drops its sender or the server closes.
                let _ = connection.await;
            });
            self.sender = Some(sender);
        }
        Ok(self.sender.as_mut().expect("a connection was just opened"))
    }
}

/// The endpoint of one task: its URL on the target and how to read it.
fn endpoint(task: &crate::plan::Task, base_url: &str) -> Result<Endpoint, ClientError> {
    let (method, path) = task.endpoint();
    let full = format!("{base_url}{path}");
    let url_error = |message: String| ClientError::Url {
        url: full.clone(),
        message,
    };
    let url = reqwest::Url::parse(&full).map_err(|e| url_error(e.to_string()))?;
    let origin = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let origin = origin
        .parse()
        .map_err(|e: http::uri::InvalidUri| url_error(e.to_string()))?;
    let checks = TaskChecks {
        checks: task.checks.clone(),
        stream: task.stream,
    };
    Ok(Endpoint {
        method: method.parse().unwrap_or(reqwest::Method::POST),
        url,
        origin,
        api: task.api,
        stream: task.stream,
        tokens_pointer: task
            .template
            .as_ref()
            .and_then(|t| t.tokens_pointer.clone()),
        body_checks: checks.reads_body(),
        body_json: checks.needs_json(),
        checks,
    })
}

/// A response from either transport, read chunk by chunk.
enum Response {
    Direct(http::Response<Incoming>),
    Pooled(reqwest::Response),
}

impl Response {
    /// False only when the response names a content type other than
    /// `text/event-stream` (a missing header is given the benefit of doubt).
    fn is_event_stream(&self) -> bool {
        let headers = match self {
            Response::Direct(r) => r.headers(),
            Response::Pooled(r) => r.headers(),
        };
        headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            })
    }

    fn status(&self) -> u16 {
        match self {
            Response::Direct(r) => r.status().as_u16(),
            Response::Pooled(r) => r.status().as_u16(),
        }
    }

    /// The next piece of the body as it came off the network; `Err` when
    /// the connection broke mid-body.
    async fn chunk(&mut self) -> Option<Result<Bytes, ()>> {
        match self {
            Response::Pooled(r) => r.chunk().await.map_err(|_| ()).transpose(),
            Response::Direct(r) => loop {
                match r.body_mut().frame().await? {
                    Ok(frame) => match frame.into_data() {
                        Ok(data) => return Some(Ok(data)),
                        Err(_) => continue, // trailers carry no tokens
                    },
                    Err(_) => return Some(Err(())),
                }
            },
        }
    }
}

/// W3C Trace Context's header (see `traces::id`).
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

fn default_headers(plan: &Plan) -> Result<HeaderMap, ClientError> {
    let mut headers = HeaderMap::new();
    let invalid = |what: &str| ClientError::Header(what.to_owned());
    for (name, value) in &plan.target.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name))?;
        headers.insert(
            name,
            HeaderValue::from_str(value).map_err(|_| invalid("value"))?,
        );
    }
    if let Some(auth) = &plan.target.access.auth {
        // Sensitive: never printed by reqwest's or hyper's Debug.
        let (name, value) = plan
            .target
            .access
            .header()
            .ok_or_else(|| invalid(&auth.header))?;
        headers.insert(name, value);
    }
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("infercheck/", env!("CARGO_PKG_VERSION"))),
    );
    Ok(headers)
}

/// What one stream has shown so far. Inter-token gaps are measured per
/// socket read, not per chunk: chunks that arrived in one read share one
/// gap (they were not 0 ms apart; the transport merged them), split evenly
/// over the tokens the read carried — counted from the server's per-chunk
/// usage when it sends one (`continuous_usage_stats`), else from content
/// chunks.
#[derive(Default)]
struct StreamState {
    done: bool,
    content_chunks: u32,
    usage: Option<u32>,
    error: Option<ErrorKind>,
    /// Content chunks of the read being fed.
    read_chunks: u32,
    /// A chunk with choices also carried usage: usage is per chunk.
    continuous_usage: bool,
    /// Cumulative completion tokens when the last token-carrying read ended.
    usage_at_last_read: u32,
    /// When the last token-carrying read arrived.
    last_token_read: Option<Duration>,
}

impl StreamState {
    /// Tokens the read just fed carried.
    fn read_tokens(&self) -> u32 {
        match (self.continuous_usage, self.usage) {
            (true, Some(total)) => total.saturating_sub(self.usage_at_last_read),
            _ => self.read_chunks,
        }
    }

    /// Closes one socket read that arrived at `now`: its gap since the last
    /// token-carrying read, split over its tokens, goes into `itl`.
    fn end_read(&mut self, now: Duration, itl: &mut Histogram) {
        let tokens = self.read_tokens();
        self.read_chunks = 0;
        if tokens == 0 {
            return;
        }
        if let Some(last) = self.last_token_read {
            let gap = now.saturating_sub(last);
            if !gap.is_zero() {
                let per_token = gap / tokens;
                for _ in 0..tokens {
                    itl.record_duration(per_token);
                }
            }
        }
        if self.usage.is_some() {
            self.usage_at_last_read = self.usage.unwrap_or(0);
        }
        self.last_token_read = Some(now);
    }
}

#[allow(clippy::too_many_arguments)] // per-worker state, passed not shared
async fn read_stream(
    response: &mut Response,
    clock: &Clock,
    timing: &mut Timing,
    parser: &mut sse::Parser,
    itl: &mut Histogram,
    asked: Option<&str>,
    cap: u64,
) -> Result<(), ErrorKind> {
    parser.reset();
    parser.set_limit(usize::try_from(cap).unwrap_or(usize::MAX));
    let mut state = StreamState::default();
    let mut read = 0u64;
    while let Some(piece) = response.chunk().await {
        let Ok(piece) = piece else {
            state.error = Some(ErrorKind::StreamError); // connection cut mid-stream
            break;
        };
        read += piece.len() as u64;
        if read > cap {
            state.error = Some(ErrorKind::TooLarge);
            break;
        }
        let now = clock.now();
        parser.feed(&piece, |event| {
            on_event(&sse::classify(&event, asked), now, timing, &mut state)
        });
        state.end_read(now, itl);
        if parser.overflowed() {
            state.error = state.error.or(Some(ErrorKind::TooLarge));
        }
        if state.error.is_some() || state.done {
            break;
        }
    }
    timing.output_tokens = state.usage.unwrap_or(state.content_chunks);
    timing.tokens_from_usage = state.usage.is_some();
    timing.itl_from_usage = state.continuous_usage;
    match state.error {
        Some(kind) => Err(kind),
        None if !state.done => Err(ErrorKind::StreamError), // ended without [DONE]
        None => Ok(()),
    }
}

fn on_event(chunk: &Chunk, now: Duration, timing: &mut Timing, state: &mut StreamState) {
    match chunk {
        Chunk::Done => state.done = true,
        Chunk::Malformed => state.error = state.error.or(Some(ErrorKind::Decode)),
        Chunk::Data(info) => {
            if info.is_error {
                state.error = state.error.or(Some(ErrorKind::StreamError));
            }
            timing.other_model |= info.other_model;
            if info.has_token {
                if timing.first_token.is_none() {
                    timing.first_token = Some(now);
                }
                timing.last_token = Some(now);
                state.content_chunks += 1;
                state.read_chunks += 1;
            }
            if info.usage_prompt_tokens.is_some() {
                timing.prompt_tokens = info.usage_prompt_tokens;
            }
            if let Some(tokens) = info.usage_completion_tokens {
                state.usage = Some(tokens);
                state.continuous_usage |= info.has_choices;
            }
        }
    }
}

/// A non-streamed body read whole: the task's body checks judged on it,
/// then its tokens counted.
fn read_body(
    endpoint: &Endpoint,
    bytes: &[u8],
    timing: &mut Timing,
    asked: Option<&str>,
) -> Result<(), ErrorKind> {
    let counted = endpoint.api != Api::Template || endpoint.tokens_pointer.is_some();
    let json: Option<serde_json::Value> = (counted || endpoint.body_json)
        .then(|| serde_json::from_slice(bytes).ok())
        .flatten();
    if endpoint.body_checks {
        let (failed, sample) = endpoint.checks.judge_body(bytes, json.as_ref());
        timing.body_checks_failed = Some(failed);
        timing.check_sample = sample;
    }
    if !counted {
        return Ok(());
    }
    let value = json.ok_or(ErrorKind::Decode)?;
    count_tokens(endpoint, &value, timing, asked);
    Ok(())
}

/// Output tokens of a non-streaming response: OpenAI `usage`, or the
/// template's JSON pointer.
fn count_tokens(
    endpoint: &Endpoint,
    value: &serde_json::Value,
    timing: &mut Timing,
    asked: Option<&str>,
) {
    let pointer = endpoint
        .tokens_pointer
        .as_deref()
        .filter(|_| endpoint.api == Api::Template)
        .unwrap_or("/usage/completion_tokens");
    if let Some(tokens) = value.pointer(pointer).and_then(serde_json::Value::as_u64) {
        timing.output_tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
        timing.tokens_from_usage = true;
    }
    if endpoint.api != Api::Template {
        let answered = value.get("model").and_then(serde_json::Value::as_str);
        timing.other_model = sse::differs(answered, asked);
        timing.prompt_tokens = value
            .pointer("/usage/prompt_tokens")
            .and_then(serde_json::Value::as_u64)
            .map(|t| u32::try_from(t).unwrap_or(u32::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::sse::ChunkInfo;

    fn token(usage: Option<u32>) -> Chunk {
        Chunk::Data(ChunkInfo {
            has_token: true,
            usage_completion_tokens: usage,
            usage_prompt_tokens: None,
            has_choices: true,
            is_error: false,
            other_model: false,
        })
    }

    /// Feeds reads of `chunks` arriving at `ms`; the ITL values recorded
    /// as (count, min ms, max ms).
    fn gaps(reads: &[(u64, Vec<Chunk>)]) -> ((u64, u64, u64), StreamState, Timing) {
        let (mut state, mut timing) = (StreamState::default(), Timing::default());
        let mut itl = Histogram::new();
        for (ms, chunks) in reads {
            let now = Duration::from_millis(*ms);
            for c in chunks {
                on_event(c, now, &mut timing, &mut state);
            }
            state.end_read(now, &mut itl);
        }
        let to_ms = |us: Option<u64>| (us.unwrap_or(0) as f64 / 1000.0).round() as u64;
        (
            (itl.len(), to_ms(itl.min()), to_ms(itl.max())),
            state,
            timing,
        )
    }

    #[test]
    fn chunks_of_one_read_share_its_gap_and_are_never_zero() {
        let (itl, _, timing) = gaps(&[
            (100, vec![token(None)]),
            (130, vec![token(None), token(None), token(None)]),
            (140, vec![token(None)]),
        ]);
        assert_eq!(itl, (4, 10, 10));
        assert_eq!(timing.first_token, Some(Duration::from_millis(100)));
        assert_eq!(timing.last_token, Some(Duration::from_millis(140)));
    }

    #[test]
    fn per_chunk_usage_counts_tokens_a_chunk_carried() {
        // One chunk carrying three tokens (usage 1 → 4), then one more.
        let (itl, state, _) = gaps(&[
            (100, vec![token(Some(1))]),
            (160, vec![token(Some(4))]),
            (180, vec![token(Some(5))]),
        ]);
        assert_eq!(itl, (4, 20, 20));
        assert!(state.continuous_usage);
    }

    #[test]
    fn a_final_usage_chunk_alone_is_not_per_chunk_usage() {
        let usage_only = Chunk::Data(ChunkInfo {
            usage_completion_tokens: Some(3),
            ..ChunkInfo::default()
        });
        let (itl, state, _) = gaps(&[
            (100, vec![token(None)]),
            (110, vec![token(None)]),
            (125, vec![token(None), usage_only]),
        ]);
        assert_eq!(itl, (2, 10, 15));
        assert!(!state.continuous_usage);
    }

    /// The real vLLM 0.32 stream (shared/fixtures/sse): role chunk with
    /// empty content, two empty-content token chunks, 16 tokens by usage.
    fn vllm_stream() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/sse/vllm-v1-chat-stream.txt"
        );
        std::fs::read(path).expect("the vLLM SSE capture")
    }

    /// Feeds `bytes` cut into reads at `cuts`, read i arriving at 10·i ms.
    fn feed_reads(bytes: &[u8], cuts: &[usize]) -> (u64, StreamState, Timing) {
        let (mut state, mut timing) = (StreamState::default(), Timing::default());
        let (mut parser, mut itl) = (sse::Parser::default(), Histogram::new());
        let mut start = 0;
        for (i, end) in cuts.iter().copied().chain([bytes.len()]).enumerate() {
            let now = Duration::from_millis(10 * (i as u64 + 1));
            parser.feed(&bytes[start..end], |e| {
                on_event(&sse::classify(&e, None), now, &mut timing, &mut state)
            });
            state.end_read(now, &mut itl);
            start = end;
        }
        (itl.len(), state, timing)
    }

    #[test]
    fn the_real_vllm_stream_read_at_once_has_no_gap_and_usage_tokens() {
        let bytes = vllm_stream();
        let (gaps, state, timing) = feed_reads(&bytes, &[]);
        assert_eq!(gaps, 0, "one read is no gap, not sixteen 0 ms ones");
        assert_eq!(state.usage, Some(16));
        assert!(state.done && !state.continuous_usage);
        assert_eq!(timing.first_token, Some(Duration::from_millis(10)));
    }

    #[test]
    fn the_real_vllm_stream_event_by_event_gives_a_gap_per_content_chunk() {
        let bytes = vllm_stream();
        let cuts: Vec<usize> = bytes
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"\n\n")
            .map(|(i, _)| i + 2)
            .filter(|&i| i < bytes.len())
            .collect();
        let (gaps, state, _) = feed_reads(&bytes, &cuts);
        // Content-carrying chunks: 16 tokens less the two held-back bytes;
        // the first has no gap before it.
        assert_eq!(u64::from(state.content_chunks), 14);
        assert_eq!(gaps, 13);
    }
}
