//! One HTTP exchange, timed: send, status, SSE chunks (TTFT, every gap for
//! ITL, last token), usage, and the error kind when it fails. Connections
//! are reused through reqwest's pool. Nothing here allocates per token.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::sse::{self, Chunk};
use super::{Clock, ErrorKind};
use crate::plan::{Api, Plan};
use crate::stats::Histogram;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid target URL `{url}`: {message}")]
    Url { url: String, message: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// What an exchange measured, on the run clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timing {
    pub sent: Duration,
    pub first_token: Option<Duration>,
    pub last_token: Option<Duration>,
    pub end: Duration,
    pub output_tokens: u32,
    pub tokens_from_usage: bool,
    pub status: u16,
    pub error: Option<ErrorKind>,
}

struct Endpoint {
    method: reqwest::Method,
    url: reqwest::Url,
    api: Api,
    stream: bool,
    timeout: Duration,
    tokens_pointer: Option<String>,
}

/// A cheap-to-clone HTTP client aimed at one endpoint.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Arc<Endpoint>,
}

impl Client {
    pub fn new(plan: &Plan, base_url: &str, pool_size: usize) -> Result<Client, ClientError> {
        let target = &plan.target;
        let (method, path) = match (&target.api, &target.template) {
            (Api::OpenaiChat, _) => (reqwest::Method::POST, "/v1/chat/completions"),
            (Api::OpenaiCompletions, _) => (reqwest::Method::POST, "/v1/completions"),
            (Api::Template, Some(t)) => (t.method.parse().unwrap_or(reqwest::Method::POST), t.path.as_str()),
            (Api::Template, None) => (reqwest::Method::GET, "/"),
        };
        let full = format!("{base_url}{path}");
        let url = reqwest::Url::parse(&full).map_err(|e| ClientError::Url { url: full.clone(), message: e.to_string() })?;
        let http = reqwest::Client::builder()
            .no_proxy() // load must go where the plan says, never through a proxy
            .tcp_nodelay(true)
            .pool_max_idle_per_host(pool_size)
            .connect_timeout(target.timeout.min(Duration::from_secs(10)))
            .default_headers(default_headers(plan)?)
            .user_agent(concat!("infercheck/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let endpoint = Endpoint {
            method,
            url,
            api: target.api,
            stream: target.stream,
            timeout: target.timeout,
            tokens_pointer: target.template.as_ref().and_then(|t| t.tokens_pointer.clone()),
        };
        Ok(Client { http, endpoint: Arc::new(endpoint) })
    }

    /// Sends `body` and times the exchange. Gaps between content chunks go
    /// into `itl`. Never fails: failures are an `error` in the timing.
    pub async fn send(
        &self,
        body: Bytes,
        clock: &Clock,
        cancel: &CancellationToken,
        parser: &mut sse::Parser,
        itl: &mut Histogram,
    ) -> Timing {
        let mut timing = Timing { sent: clock.now(), ..Timing::default() };
        let exchange = tokio::time::timeout(self.endpoint.timeout, self.exchange(body, clock, &mut timing, parser, itl));
        let result = tokio::select! {
            result = exchange => result.unwrap_or(Err(ErrorKind::Timeout)),
            () = cancel.cancelled() => Err(ErrorKind::Cancelled),
        };
        timing.end = clock.now();
        timing.error = result.err();
        timing
    }

    async fn exchange(
        &self,
        body: Bytes,
        clock: &Clock,
        timing: &mut Timing,
        parser: &mut sse::Parser,
        itl: &mut Histogram,
    ) -> Result<(), ErrorKind> {
        let endpoint = &*self.endpoint;
        let mut request = self.http.request(endpoint.method.clone(), endpoint.url.clone());
        if !body.is_empty() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        }
        let response = request.send().await.map_err(|e| if e.is_timeout() { ErrorKind::Timeout } else { ErrorKind::Connect })?;
        timing.status = response.status().as_u16();
        if !response.status().is_success() {
            // Drain so the connection can be reused; the body is not needed.
            let _ = response.bytes().await;
            return Err(ErrorKind::from_status(timing.status));
        }
        if endpoint.stream {
            read_stream(response, clock, timing, parser, itl).await
        } else {
            let bytes = response.bytes().await.map_err(|_| ErrorKind::StreamError)?;
            count_tokens(endpoint, &bytes, timing)
        }
    }
}

fn default_headers(plan: &Plan) -> Result<HeaderMap, ClientError> {
    let mut headers = HeaderMap::new();
    let invalid = |what: &str| ClientError::Url { url: String::new(), message: format!("invalid header {what}") };
    for (name, value) in &plan.target.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name))?;
        headers.insert(name, HeaderValue::from_str(value).map_err(|_| invalid("value"))?);
    }
    if let Some(key) = &plan.target.api_key {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", key.0)).map_err(|_| invalid("api key"))?;
        value.set_sensitive(true); // never printed by reqwest's Debug
        headers.insert(AUTHORIZATION, value);
    }
    Ok(headers)
}

#[derive(Default)]
struct StreamState {
    done: bool,
    content_chunks: u32,
    usage: Option<u32>,
    error: Option<ErrorKind>,
}

async fn read_stream(
    response: reqwest::Response,
    clock: &Clock,
    timing: &mut Timing,
    parser: &mut sse::Parser,
    itl: &mut Histogram,
) -> Result<(), ErrorKind> {
    parser.reset();
    let mut state = StreamState::default();
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        let Ok(piece) = piece else {
            state.error = Some(ErrorKind::StreamError); // connection cut mid-stream
            break;
        };
        let now = clock.now();
        parser.feed(&piece, |event| on_event(&sse::classify(&event), now, timing, &mut state, itl));
        if state.error.is_some() || state.done {
            break;
        }
    }
    timing.output_tokens = state.usage.unwrap_or(state.content_chunks);
    timing.tokens_from_usage = state.usage.is_some();
    match state.error {
        Some(kind) => Err(kind),
        None if !state.done => Err(ErrorKind::StreamError), // ended without [DONE]
        None => Ok(()),
    }
}

fn on_event(chunk: &Chunk, now: Duration, timing: &mut Timing, state: &mut StreamState, itl: &mut Histogram) {
    match chunk {
        Chunk::Done => state.done = true,
        Chunk::Malformed => state.error = state.error.or(Some(ErrorKind::Decode)),
        Chunk::Data(info) => {
            if info.is_error {
                state.error = state.error.or(Some(ErrorKind::StreamError));
            }
            if info.has_token {
                match timing.last_token {
                    Some(last) => itl.record_duration(now.saturating_sub(last)),
                    None => timing.first_token = Some(now),
                }
                timing.last_token = Some(now);
                state.content_chunks += 1;
            }
            if let Some(tokens) = info.usage_completion_tokens {
                state.usage = Some(tokens);
            }
        }
    }
}

/// Output tokens of a non-streaming response: OpenAI `usage`, or the
/// template's JSON pointer. A template without a pointer is not parsed.
fn count_tokens(endpoint: &Endpoint, bytes: &[u8], timing: &mut Timing) -> Result<(), ErrorKind> {
    let pointer = match (endpoint.api, &endpoint.tokens_pointer) {
        (Api::Template, None) => return Ok(()),
        (Api::Template, Some(p)) => p.as_str(),
        _ => "/usage/completion_tokens",
    };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|_| ErrorKind::Decode)?;
    if let Some(tokens) = value.pointer(pointer).and_then(serde_json::Value::as_u64) {
        timing.output_tokens = u32::try_from(tokens).unwrap_or(u32::MAX);
        timing.tokens_from_usage = true;
    }
    Ok(())
}
