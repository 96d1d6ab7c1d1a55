//! infercheck's own `/metrics` while a run lasts, so a Prometheus can
//! scrape the test itself and dashboards show it live: requests by outcome,
//! latency and TTFT histograms (from the intended send time), output
//! tokens, requests in flight, the achieved and target rates of the
//! last second, and the tasks alive on infercheck's runtime (flat over a
//! soak when nothing leaks).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry,
    TextEncoder,
};
use tokio_util::sync::CancellationToken;

use crate::outcome::Outcome;
use crate::report::IntervalSummary;

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0,
];

/// The families and the server answering for them.
#[derive(Debug)]
pub struct OwnMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: Histogram,
    ttft: Histogram,
    output_tokens: IntCounter,
    in_flight: Gauge,
    achieved_rps: Gauge,
    target_rps: Gauge,
    /// Read from the runtime at each scrape.
    alive_tasks: Gauge,
    /// 1 for the phase running, 0 for those before it.
    phase: GaugeVec,
    addr: SocketAddr,
    stop: CancellationToken,
}

impl OwnMetrics {
    /// Registers the families and serves them on `listen`.
    pub async fn start(listen: SocketAddr) -> io::Result<Arc<OwnMetrics>> {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| {
            registry.register(c).map_err(io::Error::other)
        };
        let requests = IntCounterVec::new(
            Opts::new(
                "infercheck_requests_total",
                "Requests completed, by outcome (ok or the error kind).",
            ),
            &["outcome"],
        )
        .map_err(io::Error::other)?;
        let histogram = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
                .map_err(io::Error::other)
        };
        let latency = histogram(
            "infercheck_request_latency_seconds",
            "Request latency from the intended send time.",
        )?;
        let ttft = histogram(
            "infercheck_ttft_seconds",
            "Time to first token from the intended send time.",
        )?;
        let gauge = |name: &str, help: &str| Gauge::new(name, help).map_err(io::Error::other);
        let output_tokens =
            IntCounter::new("infercheck_output_tokens_total", "Output tokens received.")
                .map_err(io::Error::other)?;
        let in_flight = gauge("infercheck_in_flight", "Requests in flight.")?;
        let achieved_rps = gauge(
            "infercheck_achieved_rps",
            "Requests completed per second, last interval.",
        )?;
        let target_rps = gauge(
            "infercheck_target_rps",
            "The schedule's rate, last interval (0 for closed loads).",
        )?;
        reg(Box::new(requests.clone()))?;
        reg(Box::new(latency.clone()))?;
        reg(Box::new(ttft.clone()))?;
        reg(Box::new(output_tokens.clone()))?;
        reg(Box::new(in_flight.clone()))?;
        reg(Box::new(achieved_rps.clone()))?;
        let alive_tasks = gauge(
            "infercheck_runtime_alive_tasks",
            "Tasks alive on infercheck's async runtime.",
        )?;
        reg(Box::new(alive_tasks.clone()))?;
        let phase = GaugeVec::new(
            Opts::new(
                "infercheck_phase_info",
                "The plan's phase running now (1), and those before it (0).",
            ),
            &["phase"],
        )
        .map_err(io::Error::other)?;
        reg(Box::new(target_rps.clone()))?;
        reg(Box::new(phase.clone()))?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let metrics = Arc::new(OwnMetrics {
            registry,
            requests,
            latency,
            ttft,
            output_tokens,
            in_flight,
            achieved_rps,
            target_rps,
            alive_tasks,
            phase,
            addr,
            stop: stop.clone(),
        });
        let app = Router::new()
            .route("/metrics", get(render))
            .with_state(metrics.clone());
        let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        tokio::spawn(async move { serve.await });
        Ok(metrics)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counts one finished request.
    pub fn record(&self, outcome: &Outcome) {
        let label = outcome.error.map_or("ok", |e| e.name());
        self.requests.with_label_values(&[label]).inc();
        self.latency.observe(outcome.latency().as_secs_f64());
        if let Some(first) = outcome.first_token {
            self.ttft
                .observe(first.saturating_sub(outcome.intended).as_secs_f64());
        }
        self.output_tokens.inc_by(u64::from(outcome.output_tokens));
    }

    /// The last second's rates and the requests in flight.
    pub fn interval(&self, interval: &IntervalSummary) {
        self.in_flight.set(interval.in_flight as f64);
        self.achieved_rps.set(interval.rps);
        self.target_rps.set(interval.target_rps.unwrap_or(0.0));
    }

    /// `phase` starts: its series goes to 1, every other to 0.
    pub fn phase(&self, phase: &str) {
        use prometheus::core::Collector as _;
        for family in self.phase.collect() {
            for m in family.get_metric() {
                if let Some(l) = m.get_label().first() {
                    self.phase.with_label_values(&[l.value()]).set(0.0);
                }
            }
        }
        self.phase.with_label_values(&[phase]).set(1.0);
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }
}

async fn render(State(metrics): State<Arc<OwnMetrics>>) -> impl IntoResponse {
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    metrics.alive_tasks.set(alive as f64);
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&metrics.registry.gather(), &mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}
