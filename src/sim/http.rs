//! The simulator's HTTP surface (axum): OpenAI completion endpoints, health,
//! model list and Prometheus metrics. Handlers translate between HTTP and
//! the model in `decode.rs`/`stream.rs`; they keep no state of their own.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;

use super::decode::Decode;
use super::faults::error_status;
use super::metrics;
use super::openai::{self, Endpoint, Job};
use super::state::{Shared, bump};
use super::stream::sse_body;

/// Request bodies up to this size are accepted (long prompts are the point
/// of some tests; axum's default of 2 MB is too small for them).
const BODY_LIMIT: usize = 64 << 20;

/// Prometheus text exposition format, version 0.0.4.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/metrics", get(prometheus))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    completion(shared, Endpoint::Chat, body).await
}

async fn completions(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    completion(shared, Endpoint::Completion, body).await
}

/// One completion request: parse, number, inject an error or answer.
async fn completion(shared: Arc<Shared>, endpoint: Endpoint, body: Bytes) -> Response {
    bump(&shared.counters.requests, 1);
    let request = match openai::parse(endpoint, &body) {
        Ok(request) => request,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let job = Job::new(&shared, endpoint, request);
    if job.faults.error {
        return injected_error(&shared).await;
    }
    if job.stream {
        return sse_response(shared, job);
    }
    non_streaming(shared, job).await
}

/// The `error_rate` fault: answered before admission, like a router or
/// front end rejecting the request, but not during a stall.
async fn injected_error(shared: &Shared) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    bump(&shared.counters.errors_injected, 1);
    error_response(error_status(&shared.config.faults), "simulated error")
}

fn sse_response(shared: Arc<Shared>, job: Job) -> Response {
    let mut response = Response::new(sse_body(shared, job));
    let headers = response.headers_mut();
    let event_stream = HeaderValue::from_static("text/event-stream");
    headers.insert(header::CONTENT_TYPE, event_stream);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Decodes every token on schedule, then answers in one piece.
async fn non_streaming(shared: Arc<Shared>, job: Job) -> Response {
    let Some(mut decode) = Decode::admit(shared.clone(), &job).await else {
        return unavailable();
    };
    // Capped: max_tokens comes from the client.
    let mut text = String::with_capacity(job.max_tokens.min(4096) as usize * 8);
    while decode.emitted() < job.max_tokens {
        let Some(word) = decode.next_token().await else {
            return unavailable();
        };
        text.push_str(word);
    }
    // Free the slot before serialising, as the engine would.
    drop(decode);
    bump(&shared.counters.completed, 1);
    json_response(StatusCode::OK, openai::completion_body(&job, &text))
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    json_response(StatusCode::OK, br#"{"status":"ok"}"#.to_vec())
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    if !shared.wait_out_stall().await {
        return unavailable();
    }
    json_response(StatusCode::OK, openai::models_body(&shared.config.model))
}

/// Answers even during a stall: the point of a stall is to see whether the
/// observability side notices it, so the metrics must stay readable.
async fn prometheus(State(shared): State<Arc<Shared>>) -> Response {
    let text = metrics::render(&shared.config.model, &shared.counters.snapshot());
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

fn unavailable() -> Response {
    error_response(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down")
}

/// An OpenAI-style error: `{"error":{"message","type","code"}}`.
fn error_response(status: StatusCode, message: &str) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "server_error"
    };
    json_response(status, openai::error_body(message, kind, status.as_u16()))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}
