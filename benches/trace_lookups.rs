//! Trace look-ups at scale (issue 5): 10,000 trace ids looked up in a
//! local Jaeger-shaped server (answers built from the real fixture files,
//! ../shared/fixtures/jaeger/) through the same client and pacing a run
//! uses, with the plan's default bounds (16 in flight, 1,000 started per
//! second) and without the rate bound. Prints wall time, look-ups per
//! second, the most look-ups the server saw in flight, and the outcome
//! counts. `cargo bench --bench trace_lookups`; results in
//! benches/README.md.
//!
//! Env: LOOKUPS (default 10000), LATENCY_MS (per answer, default 2).

#[path = "../tests/coverage/jaeger.rs"]
mod jaeger;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use infercheck::plan::traces::{DEFAULT_CONCURRENCY, DEFAULT_LOOKUP_RATE, DEFAULT_LOOKUP_TIMEOUT};
use infercheck::trace_id::RequestTracer;
use infercheck::traces::{Api, Backend, HttpBackend, Lookup, Pace, look_up_all};
use jaeger::{Behaviour, Flavor, JaegerServer};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn round(name: &str, lookups: u64, latency: Duration, pace: Pace) {
    let server = JaegerServer::start(Behaviour {
        flavor: Flavor::JaegerV3,
        latency,
        synthesise: true,
    })
    .await;
    let mut http = HttpBackend::new(&server.url, Api::JaegerV3, DEFAULT_LOOKUP_TIMEOUT).unwrap();
    assert!(http.probe().await);
    let backend = Backend::Http(http);
    // Ids spread over the server's answers: 10% missing, 10% failing (503).
    let ids: Vec<u128> = (0..lookups)
        .map(|i| u128::from(i) * 7919 + 100_000)
        .collect();
    let started = Instant::now();
    let results = look_up_all(&backend, ids, |id| *id, pace).await;
    let elapsed = started.elapsed();
    let count = |f: fn(&Lookup) -> bool| results.iter().filter(|(_, l)| f(l)).count();
    println!(
        "{name:<28} {lookups} look-ups in {:>6.2} s  {:>7.0}/s  max in flight {:>3}  found {} missing {} unknown {}  ({} HTTP requests)",
        elapsed.as_secs_f64(),
        lookups as f64 / elapsed.as_secs_f64(),
        server.stats.max_in_flight.load(Ordering::SeqCst),
        count(|l| matches!(l, Lookup::Found(_))),
        count(|l| matches!(l, Lookup::Missing)),
        count(|l| matches!(l, Lookup::Unknown(_))),
        server.stats.requests.load(Ordering::SeqCst),
    );
}

/// The hot path's share: one trace id and its `traceparent` value per
/// request (what a worker does before each send).
fn traceparent_cost(draws: u32) {
    let mut tracer = RequestTracer::new(1.0);
    let started = Instant::now();
    let mut sum = 0u128;
    for _ in 0..draws {
        let (id, header) = tracer.draw().expect("every request traced");
        sum ^= id ^ header.len() as u128;
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(draws);
    println!("traceparent per request      {ns:.1} ns (id + header value, {draws} draws, {sum:x})");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either: run a smoke-sized round there.
    let smoke = std::env::args().any(|a| a == "--test" || a == "--quick");
    let lookups = if smoke { 200 } else { env("LOOKUPS", 10_000) };
    let latency = Duration::from_millis(env("LATENCY_MS", 2));
    traceparent_cost(if smoke { 10_000 } else { 1_000_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let defaults = Pace {
            concurrency: DEFAULT_CONCURRENCY,
            rate_per_s: Some(DEFAULT_LOOKUP_RATE),
        };
        round("plan defaults (16, 1000/s)", lookups, latency, defaults).await;
        let unpaced = Pace {
            concurrency: DEFAULT_CONCURRENCY,
            rate_per_s: None,
        };
        round("16 in flight, no rate bound", lookups, latency, unpaced).await;
    });
}
