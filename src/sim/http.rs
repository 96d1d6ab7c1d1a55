//! The simulator's HTTP surface (axum): OpenAI completion endpoints, the
//! native endpoints (`native.rs`), the fault admin (`admin.rs`), health,
//! model list and Prometheus metrics. Handlers translate between HTTP and
//! the engines; they keep no state of their own.

use std::io;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use super::engine::slot::{SeqSlot, SlotGuard};
use super::faults::error_status;
use super::openai::{self, Endpoint, Job, JobContext, Request};
use super::state::{Served, Shared, bump};
use super::stream::{collect, sse_body};
use super::{admin, native};
use crate::trace_id::TraceParent;

/// Request bodies up to this size are accepted (long prompts are the point
/// of some tests; axum's default of 2 MB is too small for them).
const BODY_LIMIT: usize = 64 << 20;

/// Prometheus text exposition format, version 0.0.4.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/version", get(version))
        .route("/metrics", get(prometheus))
        .route(
            "/admin/faults",
            get(admin::get_faults).post(admin::set_faults),
        )
        .merge(native::routes())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    completion(shared, Endpoint::Chat, &headers, body).await
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    completion(shared, Endpoint::Completion, &headers, body).await
}

/// One completion request: count, parse, route to its model's engine,
/// inject an error or answer.
async fn completion(
    shared: Arc<Shared>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(crashed) = count_request(&shared) {
        return crashed;
    }
    let request = match openai::parse(endpoint, &body, shared.config.block_size) {
        Ok(request) => request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let served = match serving(&shared, request.model.as_deref()) {
        Ok(served) => served,
        Err(response) => return response,
    };
    let job = new_job(&shared, served, endpoint, &request);
    if job.faults.error {
        return injected_error(&shared, served).await;
    }
    let Some(slot) = submit(
        &shared,
        served,
        &job,
        traceparent(headers),
        request.block_hashes,
    ) else {
        return unavailable();
    };
    if job.stream {
        return sse_response(shared, job, slot);
    }
    match collect(&shared, &job, &slot).await {
        Some((text, tokens)) => {
            let body = openai::completion_body(&job, &text, u64::from(tokens));
            json_response(StatusCode::OK, body)
        }
        None => aborted(&shared),
    }
}

/// Counts a completion request; with the crash fault, the one after the
/// limit brings the server down (and gets a cut connection).
pub(crate) fn count_request(shared: &Shared) -> Option<Response> {
    let n = shared
        .counters
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match shared.faults().faults.crash_after {
        Some(limit) if n >= limit => {
            shared.crash();
            Some(cut_connection())
        }
        _ => None,
    }
}

// The error is the answer itself; it is built once per failed request.
#[allow(clippy::result_large_err)]
/// The engine of `model`, or the 404 vLLM gives for a model it does not
/// serve (503 while unloaded).
pub(crate) fn serving<'a>(shared: &'a Shared, model: Option<&str>) -> Result<&'a Served, Response> {
    let Some(served) = shared.served(model) else {
        let name = model.unwrap_or_default();
        let message = format!("The model `{name}` does not exist.");
        return Err(error_response(StatusCode::NOT_FOUND, &message));
    };
    if !served.engine.is_loaded() {
        let message = format!("The model `{}` is not loaded.", served.engine.model);
        return Err(error_response(StatusCode::SERVICE_UNAVAILABLE, &message));
    }
    if let Some(limit) = shared.faults().faults.shed_when_waiting
        && served.metrics.waiting.get() as u64 >= limit
    {
        bump(&shared.counters.errors_injected, 1);
        served.metrics.fault_shed.inc();
        let message = format!("Overloaded: {limit} requests already wait; try again later.");
        return Err(error_response(StatusCode::SERVICE_UNAVAILABLE, &message));
    }
    Ok(served)
}

/// Numbers the request and draws its faults.
pub(crate) fn new_job(
    shared: &Shared,
    served: &Served,
    endpoint: Endpoint,
    request: &Request,
) -> Job {
    let faults = shared.faults();
    let ctx = JobContext {
        seed: shared.config.seed,
        seq: shared.next_seq(),
        model: &served.engine.model,
        default_max_tokens: shared.config.default_max_tokens,
        faults: &faults.faults,
    };
    Job::new(ctx, endpoint, request)
}

/// Queues the job in its engine; `None` when the server is stopping.
pub(crate) fn submit(
    shared: &Shared,
    served: &Served,
    job: &Job,
    traceparent: Option<TraceParent>,
    block_hashes: Vec<u64>,
) -> Option<SlotGuard> {
    if shared.is_stopping() {
        return None;
    }
    let prompt = u32::try_from(job.prompt_tokens).unwrap_or(u32::MAX);
    let slot = Arc::new(SeqSlot::new(job.seq, prompt, job.max_tokens, traceparent));
    served
        .engine
        .submit(slot.clone(), block_hashes)
        .then_some(SlotGuard(slot))
}

/// The caller's `traceparent`, when valid.
pub(crate) fn traceparent(headers: &HeaderMap) -> Option<TraceParent> {
    let value = headers.get("traceparent")?.to_str().ok()?;
    TraceParent::parse(value)
}

/// The `error_rate` fault: answered before the engine, like a router or
/// front end rejecting the request, but not during a stall.
pub(crate) async fn injected_error(shared: &Shared, served: &Served) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    bump(&shared.counters.errors_injected, 1);
    served.metrics.fault_error.inc();
    let faults = shared.faults();
    error_response(error_status(&faults.faults), "simulated error")
}

fn sse_response(shared: Arc<Shared>, job: Job, slot: SlotGuard) -> Response {
    let mut response = Response::new(sse_body(shared, job, slot));
    let headers = response.headers_mut();
    let event_stream = HeaderValue::from_static("text/event-stream");
    headers.insert(header::CONTENT_TYPE, event_stream);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

/// The simulator's version, where vLLM's `GET /version` tells its own.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-infercheck-sim");

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        serde_json::json!({ "version": VERSION })
            .to_string()
            .into_bytes(),
    )
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    let loaded = shared.models.iter().filter(|m| m.engine.is_loaded());
    json_response(
        StatusCode::OK,
        openai::models_body(loaded.map(|m| m.engine.model.as_str())),
    )
}

/// Answers even during a stall: the point of a stall is to see whether the
/// observability side notices it, so the metrics must stay readable unless
/// the metrics faults say otherwise.
async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    let faults = shared.faults();
    let delay = faults.faults.metrics_delay;
    if !delay.is_zero()
        && !shared
            .sleep_or_stop(tokio::time::Instant::now() + delay)
            .await
    {
        return unavailable();
    }
    if shared.scrape_rng().next_f64() < faults.faults.metrics_error_rate {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "simulated metrics failure",
        );
    }
    let text = shared.families.render();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

pub(crate) fn unavailable() -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
}

/// A request the engine dropped: stopping (503) or crashing (cut).
pub(crate) fn aborted(shared: &Shared) -> Response {
    if shared.is_crashed() {
        cut_connection()
    } else {
        unavailable()
    }
}

/// A response whose body fails at once: hyper drops the connection.
fn cut_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::other("simulated crash"))
    });
    Response::new(Body::from_stream(failing))
}

/// An OpenAI-style error: `{"error":{"message","type","code"}}`.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = match status {
        StatusCode::NOT_FOUND => "NotFoundError",
        s if s.is_client_error() => "invalid_request_error",
        _ => "server_error",
    };
    json_response(status, openai::error_body(message, kind, status.as_u16()))
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}
