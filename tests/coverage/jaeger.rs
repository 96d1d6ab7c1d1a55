//! A Jaeger-shaped (or Tempo-shaped) query server on 127.0.0.1:0 whose
//! answers are built from the real fixture files in
//! ../shared/fixtures/jaeger/ (read at run time, never copied): the
//! fixture traces by their ids, 404 for unknown ids, 503 for a failing id,
//! a slow id, a flaky one, and optionally synthesised traces for any id
//! (the look-up benchmark). It counts requests and the most in flight.
//! Shared by tests/coverage.rs and benches/trace_lookups.rs.

#![allow(dead_code)] // each user calls part of it

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use infercheck::trace_id::parse_trace_id;
use serde_json::{Value, json};

/// Answers 503, always.
pub const FAILING: u128 = 0x5000;
/// Answers after [`SLOW_ANSWER`].
pub const SLOW: u128 = 0x5001;
/// Answers 503 the first time, then the trace.
pub const FLAKY: u128 = 0x5002;
pub const SLOW_ANSWER: Duration = Duration::from_secs(5);

/// The fixture traces' ids.
pub const TRACE_ONE: u128 = 1;
pub const MULTI: u128 = 0xc620759e5d60fafb8ee0922b30e06bc6;
pub const OTLP2JAEGER: u128 = 0x83a9efd15c1c98a977e0711cc93ee28b;
pub const LEADING_ZEROS: u128 = 0x11;

/// Which API the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Jaeger 2: API v3 and v1.
    JaegerV3,
    /// An older Jaeger: v1 only; /api/v3/* is an unknown route.
    JaegerV1Only,
    /// Tempo: OTLP JSON batches on /api/traces/{id}.
    Tempo,
}

#[derive(Clone, Copy, Debug)]
pub struct Behaviour {
    pub flavor: Flavor,
    /// Added to every answer.
    pub latency: Duration,
    /// Unknown ids get a synthesised answer by id % 10: 0 → 404, 1 → 503,
    /// else a one-span trace (v3-GetTrace.json with the id put in).
    pub synthesise: bool,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    flaky_seen: AtomicU64,
}

struct Shared {
    behaviour: Behaviour,
    /// id → (v3 body, v1 body).
    traces: HashMap<u128, (Option<String>, Option<String>)>,
    services_v3: String,
    get_trace_v3: String,
    stats: Arc<Stats>,
}

pub struct JaegerServer {
    pub url: String,
    pub stats: Arc<Stats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JaegerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// ../shared/fixtures/jaeger/<name>.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/fixtures/jaeger")
        .join(name)
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name))
        .unwrap_or_else(|e| panic!("{}: {e}", fixture_path(name).display()))
}

fn wrap_result(otlp: &str) -> String {
    let value: Value = serde_json::from_str(otlp).unwrap();
    json!({ "result": value }).to_string()
}

fn fixture_traces() -> HashMap<u128, (Option<String>, Option<String>)> {
    let v1_one =
        json!({ "data": [serde_json::from_str::<Value>(&fixture("v1-ui_01.json")).unwrap()] });
    HashMap::from([
        (
            TRACE_ONE,
            (Some(fixture("v3-GetTrace.json")), Some(v1_one.to_string())),
        ),
        (
            MULTI,
            (
                Some(wrap_result(&fixture("otlp-multi-in-combined.json"))),
                Some(fixture("v1-multi-out.json")),
            ),
        ),
        (
            OTLP2JAEGER,
            (
                Some(wrap_result(&fixture("otlp2jaeger-in.json"))),
                Some(fixture("v1-otlp2jaeger-out.json")),
            ),
        ),
        (
            LEADING_ZEROS,
            (Some(wrap_result(&fixture("otlp-example_trace.json"))), None),
        ),
    ])
}

impl JaegerServer {
    pub async fn start(behaviour: Behaviour) -> JaegerServer {
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            behaviour,
            traces: fixture_traces(),
            services_v3: fixture("v3-GetServices.json"),
            get_trace_v3: fixture("v3-GetTrace.json"),
            stats: stats.clone(),
        });
        let app = Router::new()
            .route("/api/v3/services", get(services_v3))
            .route("/api/services", get(services_v1))
            .route("/api/v3/traces/{id}", get(trace_v3))
            .route("/api/traces/{id}", get(trace_v1_or_tempo))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        JaegerServer { url, stats, task }
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Stats>);

impl InFlight {
    fn enter(stats: &Arc<Stats>) -> InFlight {
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(stats.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

/// What an unknown route answers on a Go server.
fn no_route() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found\n").into_response()
}

async fn services_v3(State(shared): State<Arc<Shared>>) -> Response {
    match shared.behaviour.flavor {
        Flavor::JaegerV3 => json_response(StatusCode::OK, shared.services_v3.clone()),
        _ => no_route(),
    }
}

async fn services_v1(State(shared): State<Arc<Shared>>) -> Response {
    match shared.behaviour.flavor {
        Flavor::Tempo => no_route(),
        _ => json_response(
            StatusCode::OK,
            r#"{"data":["foo"],"total":1,"limit":0,"offset":0,"errors":null}"#.into(),
        ),
    }
}

/// The answer for `id` before its shape: the v3 (OTLP) body, the v1 body,
/// or a status.
enum Answer {
    Trace {
        otlp: Option<String>,
        v1: Option<String>,
    },
    Status(StatusCode),
}

async fn answer(shared: &Shared, id: &str) -> Answer {
    tokio::time::sleep(shared.behaviour.latency).await;
    let Some(id) = parse_trace_id(id) else {
        return Answer::Status(StatusCode::BAD_REQUEST);
    };
    match id {
        FAILING => return Answer::Status(StatusCode::SERVICE_UNAVAILABLE),
        SLOW => tokio::time::sleep(SLOW_ANSWER).await,
        FLAKY if shared.stats.flaky_seen.fetch_add(1, Ordering::SeqCst) == 0 => {
            return Answer::Status(StatusCode::SERVICE_UNAVAILABLE);
        }
        _ => {}
    }
    if let Some((otlp, v1)) = shared.traces.get(&id) {
        return Answer::Trace {
            otlp: otlp.clone(),
            v1: v1.clone(),
        };
    }
    match (
        shared.behaviour.synthesise || id == SLOW || id == FLAKY,
        id % 10,
    ) {
        (false, _) | (true, 0) => Answer::Status(StatusCode::NOT_FOUND),
        (true, 1) if id != SLOW && id != FLAKY => Answer::Status(StatusCode::SERVICE_UNAVAILABLE),
        (true, _) => {
            let otlp = shared
                .get_trace_v3
                .replace("00000000000000000000000000000001", &format!("{id:032x}"));
            Answer::Trace {
                otlp: Some(otlp),
                v1: None,
            }
        }
    }
}

async fn trace_v3(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let _guard = InFlight::enter(&shared.stats);
    if shared.behaviour.flavor != Flavor::JaegerV3 {
        return no_route();
    }
    match answer(&shared, &id).await {
        Answer::Trace {
            otlp: Some(body), ..
        } => json_response(StatusCode::OK, body),
        Answer::Trace { otlp: None, .. } | Answer::Status(StatusCode::NOT_FOUND) => json_response(
            StatusCode::NOT_FOUND,
            r#"{"error":{"httpCode":404,"message":"trace not found"}}"#.into(),
        ),
        Answer::Status(status) => (status, "backend unavailable").into_response(),
    }
}

async fn trace_v1_or_tempo(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let _guard = InFlight::enter(&shared.stats);
    let tempo = shared.behaviour.flavor == Flavor::Tempo;
    let body = match answer(&shared, &id).await {
        Answer::Trace {
            otlp: Some(otlp), ..
        } if tempo => Some(tempo_body(&otlp)),
        Answer::Trace { v1: Some(v1), .. } if !tempo => Some(v1),
        Answer::Trace { .. } | Answer::Status(StatusCode::NOT_FOUND) => None,
        Answer::Status(status) => return (status, "backend unavailable").into_response(),
    };
    match (body, tempo) {
        (Some(body), _) => json_response(StatusCode::OK, body),
        (None, true) => (StatusCode::NOT_FOUND, "trace not found").into_response(),
        (None, false) => json_response(
            StatusCode::NOT_FOUND,
            r#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#.into(),
        ),
    }
}

/// Tempo's v1 trace-by-id shape: `{"batches": [resourceSpans…]}`.
fn tempo_body(v3: &str) -> String {
    let value: Value = serde_json::from_str(v3).unwrap();
    json!({ "batches": value["result"]["resourceSpans"] }).to_string()
}
