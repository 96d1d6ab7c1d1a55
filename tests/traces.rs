//! Traces and router mode, through the public API: simulators behind a
//! `RouterServer`, spans delivered to an embedded `OtlpReceiver`, the
//! `traceparent` the router forwards, and the router's own metrics.
//! (Engine span export from timelines is specified beside the code, in
//! `src/sim/trace/tests.rs`, since timelines are internal to the simulator.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use infercheck::otlp::OtlpReceiver;
use infercheck::sim::{RouterServer, SimConfig, TraceConfig, TraceParent, Tracing};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::util;

const DEADLINE: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(10);

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn router(backends: Vec<String>, tracing: Arc<Tracing>) -> RouterServer {
    RouterServer::start(any_port(), backends, tracing)
        .await
        .expect("the router starts")
}

fn disabled() -> Arc<Tracing> {
    Arc::new(Tracing::disabled(1))
}

fn sim_serving(model: &str) -> SimConfig {
    util::exact_sim(5, 1).serving(&[model.to_string()])
}

fn chat(model: &str, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [{"role": "user", "content": "one two three"}],
        "max_tokens": max_tokens,
        "stream": stream,
    })
}

async fn post_chat(base_url: &str, body: &Value) -> reqwest::Response {
    infercheck::tls::client()
        .post(format!("{base_url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the router answers")
}

/// `name{labels} value` lines of a Prometheus text page.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_string(), value.parse().ok()?)))
        .collect()
}

async fn router_metrics(router: &RouterServer) -> BTreeMap<String, f64> {
    let url = format!("{}/metrics", router.base_url());
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    samples(&text)
}

/// Waits until no exchange is open at any backend: then every finished
/// exchange has been counted and its router span queued for export.
async fn wait_idle(router: &RouterServer) -> BTreeMap<String, f64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let metrics = router_metrics(router).await;
        let busy = metrics
            .iter()
            .any(|(series, value)| series.starts_with("router_backend_in_flight") && *value > 0.0);
        if !busy {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "the router stayed busy: {metrics:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

fn requests(metrics: &BTreeMap<String, f64>, backend: &str, model: &str, status: u16) -> f64 {
    let series = format!(
        r#"router_requests_total{{backend="{backend}",model="{model}",status="{status}"}}"#
    );
    metrics.get(&series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn a_stream_through_the_router_arrives_chunk_by_chunk() {
    let _load = util::exclusive().await;
    // 20 tokens 20 ms apart: the backend decodes for about 400 ms.
    let backend = util::sim(util::exact_sim(10, 20)).await;
    let router = router(vec![backend.base_url()], disabled()).await;

    let mut response = post_chat(
        &router.base_url(),
        &chat(infercheck::sim::DEFAULT_MODEL, 20, true),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let first = response.chunk().await.unwrap().expect("a first chunk");
    // Streamed, not buffered: the first token reached the client while the
    // backend was still decoding the rest.
    assert_eq!(backend.stats().completed, 0);
    let mut text = String::from_utf8(first.to_vec()).unwrap();
    assert!(
        text.starts_with("data: ") && !text.contains("[DONE]"),
        "{text}"
    );
    let mut chunks = 1;
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        chunks += 1;
    }
    assert!(chunks > 1);
    assert!(
        text.matches("data: ").count() >= 21,
        "20 tokens and [DONE]: {text}"
    );
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    router.stop().await;
    backend.stop().await;
}

#[tokio::test]
async fn traffic_splits_across_backends_by_model_and_load() {
    let _load = util::exclusive().await;
    let alpha1 = util::sim(sim_serving("alpha")).await;
    let alpha2 = util::sim(sim_serving("alpha")).await;
    let beta = util::sim(sim_serving("beta")).await;
    let urls = vec![alpha1.base_url(), alpha2.base_url(), beta.base_url()];
    let router = router(urls.clone(), disabled()).await;

    // Each request waits for the previous exchange to close at the router
    // (its bookkeeping runs just after the client has the last byte), so
    // every choice is among idle backends.
    for model in ["alpha", "beta"].repeat(3).into_iter().chain(["alpha"; 3]) {
        let response = post_chat(&router.base_url(), &chat(model, 2, false)).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        wait_idle(&router).await;
    }
    let health = reqwest::get(format!("{}/health", router.base_url()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let metrics = wait_idle(&router).await;
    // Idle backends take turns among those serving the model.
    assert_eq!(
        requests(&metrics, &urls[0], "alpha", 200),
        3.0,
        "{metrics:?}"
    );
    assert_eq!(
        requests(&metrics, &urls[1], "alpha", 200),
        3.0,
        "{metrics:?}"
    );
    assert_eq!(
        requests(&metrics, &urls[2], "beta", 200),
        3.0,
        "{metrics:?}"
    );
    assert_eq!(
        requests(&metrics, &urls[2], "alpha", 200),
        0.0,
        "{metrics:?}"
    );
    let stats: Vec<u64> = [&alpha1, &alpha2, &beta]
        .iter()
        .map(|s| s.stats().requests)
        .collect();
    assert_eq!(stats, [3, 3, 3]);
    let count = format!(
        r#"router_request_duration_seconds_count{{backend="{}"}}"#,
        urls[0]
    );
    assert_eq!(metrics.get(&count), Some(&3.0), "{metrics:?}");
    router.stop().await;
    for server in [alpha1, alpha2, beta] {
        server.stop().await;
    }
}

#[tokio::test]
async fn a_dead_backend_answers_502_and_is_counted() {
    let dead = util::dead_address();
    let router = router(vec![dead.clone()], disabled()).await;

    let response = post_chat(&router.base_url(), &chat("m", 2, true)).await;
    assert_eq!(response.status(), 502);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], 502, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&dead),
        "{body}"
    );

    let metrics = wait_idle(&router).await;
    let errors = format!(r#"router_request_errors_total{{backend="{dead}",reason="unreachable"}}"#);
    assert_eq!(metrics.get(&errors), Some(&1.0), "{metrics:?}");
    assert_eq!(requests(&metrics, &dead, "other", 502), 1.0, "{metrics:?}");
    router.stop().await;
}

/// A backend that records the `traceparent` of every completion request.
async fn recording_backend() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    async fn completion(
        State(seen): State<Arc<Mutex<Vec<Option<String>>>>>,
        headers: HeaderMap,
    ) -> &'static str {
        let traceparent = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        seen.lock().unwrap().push(traceparent);
        r#"{"object":"chat.completion","choices":[]}"#
    }
    let app = Router::new()
        .route("/v1/models", get(|| async { r#"{"data":[{"id":"m"}]}"# }))
        .route("/v1/chat/completions", post(completion))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind(any_port()).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn the_router_span_parents_the_span_id_it_forwards() {
    let receiver = OtlpReceiver::start(any_port()).await.unwrap();
    let tracing = Tracing::new(TraceConfig {
        endpoint: Some(receiver.endpoint()),
        service_name: "router-test".into(),
        seed: 7,
    })
    .unwrap();
    let tracing = Arc::new(tracing);
    let (backend, seen) = recording_backend().await;
    let router = router(vec![backend.clone()], tracing.clone()).await;

    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = infercheck::tls::client()
        .post(format!("{}/v1/chat/completions", router.base_url()))
        .header("traceparent", incoming)
        .header("content-type", "application/json")
        .body(chat("m", 2, false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    let untraced = post_chat(&router.base_url(), &chat("m", 2, false)).await;
    untraced.bytes().await.unwrap();
    wait_idle(&router).await;
    tracing.shutdown().await.unwrap();

    let forwarded: Vec<TraceParent> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|h| TraceParent::parse(h.as_deref().expect("a traceparent was forwarded")).unwrap())
        .collect();
    let incoming = TraceParent::parse(incoming).unwrap();
    // Continued trace: same trace id, the router's own span in between.
    assert_eq!(forwarded[0].trace_id, incoming.trace_id);
    assert_ne!(forwarded[0].parent_span_id, incoming.parent_span_id);
    let spans = receiver
        .trace(incoming.trace_id)
        .expect("the router span arrived");
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span.name, "router");
    assert_eq!(span.span_id, forwarded[0].parent_span_id);
    assert_eq!(span.parent_span_id, Some(incoming.parent_span_id));
    assert_eq!(span.service_name, "router-test");
    assert_eq!(span.attribute("http.response.status_code"), Some("200"));
    assert_eq!(
        span.attribute("infercheck.router.backend"),
        Some(backend.as_str())
    );
    assert!(span.end_unix_nanos >= span.start_unix_nanos);
    // Without an incoming context the router starts a trace of its own.
    let root = receiver
        .trace(forwarded[1].trace_id)
        .expect("a fresh trace");
    assert_eq!(root[0].span_id, forwarded[1].parent_span_id);
    assert_eq!(root[0].parent_span_id, None);
    router.stop().await;
    receiver.stop().await;
}

#[tokio::test]
async fn without_tracing_the_router_passes_the_context_through() {
    let (backend, seen) = recording_backend().await;
    let router = router(vec![backend], disabled()).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = infercheck::tls::client()
        .post(format!("{}/v1/chat/completions", router.base_url()))
        .header("traceparent", incoming)
        .header("content-type", "application/json")
        .body(chat("m", 1, false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    post_chat(&router.base_url(), &chat("m", 1, false)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen, [Some(incoming.to_string()), None]);
    router.stop().await;
}

#[test]
fn traceparent_headers_round_trip_through_the_public_type() {
    let header = "00-0000000000000000000000000000abcd-00000000000000ef-00";
    let parsed = TraceParent::parse(header).unwrap();
    assert_eq!(
        (parsed.trace_id, parsed.parent_span_id, parsed.sampled),
        (0xabcd, 0xef, false)
    );
    assert_eq!(parsed.header(), header);
}

#[tokio::test]
async fn an_endpoint_turns_export_on_at_its_v1_traces_path() {
    let receiver = OtlpReceiver::start(any_port()).await.unwrap();
    let config = TraceConfig {
        endpoint: Some(receiver.endpoint()),
        service_name: "s".into(),
        seed: 1,
    };
    let tracing = Tracing::new(config).unwrap();
    let expected = format!("{}/v1/traces", receiver.endpoint());
    assert_eq!(tracing.traces_url(), Some(expected.as_str()));
    tracing.shutdown().await.unwrap();
    assert!(!Tracing::disabled(1).is_enabled());
    receiver.stop().await;
}

/// Sends `n` streaming requests with fresh trace contexts through `base_url`
/// (a few at a time); returns the trace ids and the span ids sent.
async fn traced_requests(base_url: &str, n: u64) -> Vec<TraceParent> {
    let client = infercheck::tls::client();
    let parents: Vec<TraceParent> = (1..=n)
        .map(|i| TraceParent {
            trace_id: (u128::from(i) << 64) | 0xabcd,
            parent_span_id: 0x1000 + i,
            sampled: true,
        })
        .collect();
    for batch in parents.chunks(20) {
        let sends = batch.iter().map(|p| {
            let client = client.clone();
            let url = format!("{base_url}/v1/chat/completions");
            async move {
                let response = client
                    .post(url)
                    .header("traceparent", p.header())
                    .header("content-type", "application/json")
                    .body(chat(infercheck::sim::DEFAULT_MODEL, 3, true).to_string())
                    .send()
                    .await
                    .expect("the request is answered");
                assert_eq!(response.status(), 200);
                response.bytes().await.expect("the stream ends");
            }
        });
        futures_util::future::join_all(sends).await;
    }
    parents
}

/// Router mode end to end: every trace reads caller → router → engine →
/// queue/prefill/decode, with the caller's trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_chain_router_engine_and_phases_under_the_callers_trace() {
    let _exclusive = util::exclusive().await;
    let receiver = OtlpReceiver::start(any_port()).await.unwrap();
    let config = SimConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        ..util::exact_sim(5, 1)
    };
    let cluster = infercheck::sim::SimCluster::start(any_port(), config, 2)
        .await
        .unwrap();
    let parents = traced_requests(&cluster.base_url(), 20).await;
    cluster.flush_spans().await.unwrap();
    for parent in &parents {
        let spans = receiver.trace(parent.trace_id).expect("the trace arrived");
        let by_name = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
        };
        let router = by_name("router");
        let engine = by_name("engine");
        assert_eq!(router.parent_span_id, Some(parent.parent_span_id));
        assert_eq!(engine.parent_span_id, Some(router.span_id));
        for phase in ["queue", "prefill", "decode"] {
            assert_eq!(
                by_name(phase).parent_span_id,
                Some(engine.span_id),
                "{phase}"
            );
        }
        assert!(router.start_unix_nanos <= engine.start_unix_nanos);
        assert!(engine.end_unix_nanos <= router.end_unix_nanos);
        assert_eq!(engine.service_name, "infercheck-sim");
        assert_eq!(router.service_name, "infercheck-router");
    }
    cluster.stop().await;
    receiver.stop().await;
}

/// With a 10% span drop fraction about 10% of the child spans are missing,
/// while every trace still arrives with its engine span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_percent_span_drop_loses_about_ten_percent_of_spans() {
    let _exclusive = util::exclusive().await;
    let receiver = OtlpReceiver::start(any_port()).await.unwrap();
    let config = SimConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        faults: infercheck::sim::Faults {
            span_drop_rate: 0.1,
            ..Default::default()
        },
        ..util::exact_sim(2, 1)
    };
    let server = util::sim(config).await;
    let parents = traced_requests(&server.base_url(), 400).await;
    server.flush_spans().await.unwrap();
    let mut children = 0;
    for parent in &parents {
        let spans = receiver.trace(parent.trace_id).expect("the trace arrived");
        assert!(spans.iter().any(|s| s.name == "engine"));
        children += spans.iter().filter(|s| s.name != "engine").count();
    }
    let expected = 3 * parents.len();
    let missing = (expected - children) as f64 / expected as f64;
    // 1200 draws at p = 0.1: the standard deviation is under 0.9%.
    assert!((0.07..=0.13).contains(&missing), "missing {missing}");
    server.stop().await;
    receiver.stop().await;
}

/// The modelled timings of one request, from its spans: prefill and
/// decode durations in nanoseconds.
fn modelled(spans: &[infercheck::otlp::ReceivedSpan]) -> (u64, u64) {
    let length = |name: &str| {
        let s = spans.iter().find(|s| s.name == name).expect("span");
        s.end_unix_nanos - s.start_unix_nanos
    };
    (length("prefill"), length("decode"))
}

/// Texts and modelled timings of `n` requests sent one after another to a
/// fresh simulator with `seed` (prompts of growing length).
async fn one_by_one(seed: u64, n: u64) -> Vec<(String, (u64, u64))> {
    let receiver = OtlpReceiver::start(any_port()).await.unwrap();
    let config = SimConfig {
        seed,
        otlp_endpoint: Some(receiver.endpoint()),
        prefill_per_token: Duration::from_micros(100),
        ..util::exact_sim(7, 3)
    };
    let server = util::sim(config).await;
    let client = infercheck::tls::client();
    let mut out = Vec::new();
    for i in 1..=n {
        let parent = TraceParent {
            trace_id: u128::from(i),
            parent_span_id: i,
            sampled: true,
        };
        // Distinct words: no prefix-cache hits between requests.
        let prompt: String = (0..i * 40).map(|k| format!("r{i}w{k} ")).collect();
        let body = json!({"messages": [{"role": "user", "content": prompt}], "max_tokens": 5 + i});
        let response = client
            .post(format!("{}/v1/chat/completions", server.base_url()))
            .header("traceparent", parent.header())
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        let text = answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_string();
        out.push((text, parent.trace_id));
    }
    server.flush_spans().await.unwrap();
    let result = out
        .into_iter()
        .map(|(text, id)| (text, modelled(&receiver.trace(id).expect("trace"))))
        .collect();
    server.stop().await;
    receiver.stop().await;
    result
}

/// The same seed and request sequence give the same token streams and the
/// same modelled timings; another seed gives other text.
#[tokio::test]
async fn the_same_seed_and_requests_give_the_same_text_and_modelled_timings() {
    let _exclusive = util::exclusive().await;
    let first = one_by_one(9, 4).await;
    let second = one_by_one(9, 4).await;
    assert_eq!(first, second);
    // Prefill grows with the prompt (100 µs a word, 40 more words each time).
    assert!(first.windows(2).all(|w| w[1].1.0 > w[0].1.0), "{first:?}");
    let other = one_by_one(10, 4).await;
    assert_ne!(first[0].0, other[0].0);
}
