//! OTLP trace export for the simulator: after a request finished, its
//! [`Timeline`] becomes an `engine` server span with `queue`, `prefill` and
//! `decode` children, sent over OTLP/HTTP (protobuf) through the SDK's batch
//! span processor; the router mode exports its `router` span the same way.
//!
//! Invariants:
//! - The request path never blocks and never waits for the collector: spans
//!   are built from recorded instants after the fact (explicit start and end
//!   times) and handed to the batch processor with a non-blocking
//!   `try_send`; its own thread does the HTTP. A full queue drops spans
//!   rather than slowing requests.
//! - Disabled (no endpoint) costs one branch per request.
//! - Everything is a function of the seed and the request's sequence number:
//!   ids (without an incoming `traceparent`) and the deliberate drops
//!   ([`SpanDrops`]), so a test or a coverage check can predict exactly which
//!   spans are missing.
//! - Spans are built as `SpanData` and handed straight to the processor,
//!   not through a `Tracer`: the engine and router choose their span ids
//!   (the router must name its span in the `traceparent` it forwards before
//!   the span ends), which the SDK's `SpanBuilder` no longer allows.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};

use super::timeline::{FinishReason, Timeline};
use super::tokens::{Purpose, SimRng};
use crate::trace_id::TraceParent;

/// The environment variable naming the OTLP/HTTP base URL when the
/// configuration gives none (the OpenTelemetry convention).
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Spans waiting for the exporter thread. At 2,000 requests/s and four
/// spans a request this is two seconds of headroom; beyond it spans are
/// dropped, never waited for.
const MAX_QUEUED_SPANS: usize = 16_384;

/// The processor exports every second, or as soon as a batch is full.
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// How long one OTLP POST may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Salts the router's id stream so that a router and a simulator with the
/// same seed never draw the same span ids.
const ROUTER_SALT: u64 = 0x726f_7574_6572_0001;

/// Fractions of spans and of whole traces the exporter drops on purpose
/// (a fault: the observability side should notice the gaps).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpanDrops {
    /// Fraction of child spans (`queue`, `prefill`, `decode`) not exported;
    /// the `engine` span is kept, so a gap is detectable.
    pub span_rate: f64,
    /// Fraction of requests whose spans are not exported at all.
    pub trace_rate: f64,
}

/// How to build a [`Tracing`].
#[derive(Clone, Debug, Default)]
pub struct TraceConfig {
    /// OTLP/HTTP base URL (`http://127.0.0.1:4318`); spans go to
    /// `<endpoint>/v1/traces`. `None` falls back to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; with neither, export is off.
    pub endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Seeds span ids and drop draws (use the simulator's seed).
    pub seed: u64,
}

/// The span exporter shared by a simulator's (or router's) requests.
/// Disabled when no endpoint is configured; then every call is a no-op.
///
/// Call [`Tracing::shutdown`] before dropping an enabled one: it delivers
/// what is queued. Dropping without it loses the queued spans.
#[derive(Debug, Default)]
pub struct Tracing {
    seed: u64,
    exporter: Option<Exporter>,
}

#[derive(Debug)]
struct Exporter {
    /// `Arc` so that flush and shutdown can run on a blocking thread.
    processor: Arc<BatchSpanProcessor>,
    scope: InstrumentationScope,
    traces_url: String,
}

impl Tracing {
    /// Builds the exporter; disabled when neither the configuration nor
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` names an endpoint. Fails on a URL the
    /// exporter cannot use.
    pub fn new(config: TraceConfig) -> anyhow::Result<Tracing> {
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| std::env::var(OTLP_ENDPOINT_ENV).ok())
            .filter(|e| !e.trim().is_empty());
        let Some(endpoint) = endpoint else {
            return Ok(Tracing::disabled(config.seed));
        };
        let exporter = Exporter::new(&endpoint, &config.service_name)?;
        Ok(Tracing {
            seed: config.seed,
            exporter: Some(exporter),
        })
    }

    /// An exporter that exports nothing (ids are still drawn from `seed`).
    pub fn disabled(seed: u64) -> Tracing {
        Tracing {
            seed,
            exporter: None,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.exporter.is_some()
    }

    /// Where spans are POSTed (`<endpoint>/v1/traces`), when enabled.
    pub fn traces_url(&self) -> Option<&str> {
        self.exporter.as_ref().map(|e| e.traces_url.as_str())
    }

    /// Exports everything queued so far and waits for the collector's
    /// answer (bounded by the SDK's 5 s flush timeout). Runs the wait on a
    /// blocking thread, so a collector on the same runtime keeps serving.
    pub async fn flush(&self) -> anyhow::Result<()> {
        let Some(exporter) = &self.exporter else {
            return Ok(());
        };
        let processor = exporter.processor.clone();
        tokio::task::spawn_blocking(move || processor.force_flush())
            .await
            .context("the span flush task failed")?
            .context("flushing spans")
    }

    /// Flushes and stops the exporter thread; later spans are dropped.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        let Some(exporter) = &self.exporter else {
            return Ok(());
        };
        let processor = exporter.processor.clone();
        tokio::task::spawn_blocking(move || processor.shutdown())
            .await
            .context("the span exporter shutdown task failed")?
            .context("shutting down the span exporter")
    }

    /// Exports the engine's spans for one finished request: `engine` (server
    /// span, child of `parent` when given, else the root of a fresh trace)
    /// with children `queue`, `prefill` and `decode`. The drop draws depend
    /// on (seed, `timeline.seq`) only. A `parent` that is not sampled is
    /// honoured: nothing is exported.
    pub(crate) fn export(
        &self,
        parent: Option<TraceParent>,
        timeline: &Timeline,
        drops: SpanDrops,
    ) {
        let Some(exporter) = &self.exporter else {
            return;
        };
        if parent.is_some_and(|p| !p.sampled) {
            return;
        }
        let mut rng = SimRng::for_request(self.seed, timeline.seq, Purpose::Spans);
        let plan = DropPlan::draw(&mut rng, drops);
        if plan.whole_trace {
            return;
        }
        let ids = EngineIds::draw(&mut rng, parent);
        for span in engine_spans(timeline, &ids, &plan, &exporter.scope) {
            exporter.processor.on_end(span);
        }
    }

    /// The context of a new router span for the router's request number
    /// `seq`: the incoming trace (or a fresh one drawn from the seed) and a
    /// fresh span id. Forward it as `traceparent`; export the span with
    /// [`Tracing::export_router_span`] when the response ends.
    pub(crate) fn router_context(&self, seq: u64, incoming: Option<TraceParent>) -> TraceParent {
        let salt = ROUTER_SALT ^ incoming.map_or(0, parent_hash);
        let mut rng = SimRng::for_request(self.seed ^ salt, seq, Purpose::Spans);
        TraceParent {
            trace_id: incoming.map_or_else(|| nonzero_u128(&mut rng), |p| p.trace_id),
            parent_span_id: nonzero_u64(&mut rng),
            sampled: incoming.is_none_or(|p| p.sampled),
        }
    }

    /// Exports one `router` server span (see [`RouterSpan`]); a no-op when
    /// disabled or when the trace is not sampled.
    pub(crate) fn export_router_span(&self, span: RouterSpan) {
        let (Some(exporter), Some(context)) = (&self.exporter, span.context) else {
            return;
        };
        if context.sampled {
            let data = router_span(context, span, &exporter.scope);
            exporter.processor.on_end(data);
        }
    }
}

impl Exporter {
    fn new(endpoint: &str, service_name: &str) -> anyhow::Result<Exporter> {
        let batching = crate::otlp::export::Batching {
            max_queued: MAX_QUEUED_SPANS,
            interval: EXPORT_INTERVAL,
            timeout: EXPORT_TIMEOUT,
        };
        let (processor, traces_url) =
            crate::otlp::export::batch_processor(endpoint, service_name, batching)?;
        let scope = InstrumentationScope::builder("infercheck-sim")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(Exporter {
            processor: Arc::new(processor),
            scope,
            traces_url,
        })
    }
}

/// Which of a request's spans are dropped on purpose. Always four draws in
/// the same order, so the decision for one span never depends on another's.
#[derive(Clone, Copy, Debug, PartialEq)]
struct DropPlan {
    whole_trace: bool,
    /// Kept children, in the order queue, prefill, decode.
    keep_child: [bool; 3],
}

impl DropPlan {
    fn draw(rng: &mut SimRng, drops: SpanDrops) -> DropPlan {
        let whole_trace = rng.next_f64() < drops.trace_rate;
        let keep_child = std::array::from_fn(|_| rng.next_f64() >= drops.span_rate);
        DropPlan {
            whole_trace,
            keep_child,
        }
    }
}

/// The ids of one request's spans.
#[derive(Clone, Copy, Debug)]
struct EngineIds {
    trace_id: u128,
    /// The incoming parent span, if any.
    parent: Option<u64>,
    engine: u64,
    children: [u64; 3],
}

impl EngineIds {
    /// Drawn after the drop plan from the same stream, then mixed with the
    /// parent's ids so that two simulators with the same seed still give
    /// different span ids inside one trace.
    fn draw(rng: &mut SimRng, parent: Option<TraceParent>) -> EngineIds {
        let salt = parent.map_or(0, parent_hash);
        let fresh_trace = nonzero_u128(rng);
        let mut span_id = || nonzero(rng.next_u64() ^ salt);
        EngineIds {
            trace_id: parent.map_or(fresh_trace, |p| p.trace_id),
            parent: parent.map(|p| p.parent_span_id),
            engine: span_id(),
            children: [span_id(), span_id(), span_id()],
        }
    }
}

/// A 64-bit digest of a parent context (SplitMix over its ids).
fn parent_hash(parent: TraceParent) -> u64 {
    let folded = (parent.trace_id as u64) ^ ((parent.trace_id >> 64) as u64).rotate_left(29);
    SimRng::for_request(folded, parent.parent_span_id, Purpose::Spans).next_u64()
}

/// Zero is the invalid id; map it to one (a 2^-64 event).
fn nonzero(id: u64) -> u64 {
    id.max(1)
}

fn nonzero_u64(rng: &mut SimRng) -> u64 {
    nonzero(rng.next_u64())
}

fn nonzero_u128(rng: &mut SimRng) -> u128 {
    let id = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
    id.max(1)
}

/// The exported spans of one request, children first (parents end last).
fn engine_spans(
    timeline: &Timeline,
    ids: &EngineIds,
    plan: &DropPlan,
    scope: &InstrumentationScope,
) -> Vec<SpanData> {
    let context = |span_id: u64| span_context(ids.trace_id, span_id);
    let mut spans = Vec::with_capacity(4);
    for (index, (name, start, end)) in phases(timeline).into_iter().enumerate() {
        let (Some(start), true) = (start, plan.keep_child[index]) else {
            continue;
        };
        let mut child = SpanData {
            span_kind: SpanKind::Internal,
            ..span_data(context(ids.children[index]), name, start, end, scope)
        };
        child.parent_span_id = SpanId::from(ids.engine);
        spans.push(child);
    }
    let mut engine = span_data(
        context(ids.engine),
        "engine",
        timeline.arrived,
        timeline.finished,
        scope,
    );
    if let Some(parent) = ids.parent {
        engine.parent_span_id = SpanId::from(parent);
        engine.parent_span_is_remote = true;
    }
    engine.attributes = engine_attributes(timeline);
    engine.status = engine_status(timeline.finish_reason);
    spans.push(engine);
    spans
}

/// `(name, start, end)` of the three phases; a phase the request never
/// reached has no start.
fn phases(timeline: &Timeline) -> [(&'static str, Option<SystemTime>, SystemTime); 3] {
    [
        ("queue", Some(timeline.arrived), timeline.queue_end()),
        ("prefill", timeline.scheduled, timeline.prefill_end()),
        ("decode", timeline.first_token, timeline.finished),
    ]
}

fn engine_attributes(timeline: &Timeline) -> Vec<KeyValue> {
    let reason = StringValue::from(timeline.finish_reason.as_str());
    vec![
        KeyValue::new("gen_ai.request.model", timeline.model.clone()),
        KeyValue::new("gen_ai.response.model", timeline.model.clone()),
        KeyValue::new(
            "gen_ai.usage.input_tokens",
            saturating_i64(timeline.prompt_tokens),
        ),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            saturating_i64(timeline.output_tokens),
        ),
        KeyValue::new(
            "gen_ai.usage.cache_read.input_tokens",
            saturating_i64(timeline.cached_tokens),
        ),
        KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(Array::String(vec![reason])),
        ),
        KeyValue::new(
            "infercheck.sim.preemptions",
            i64::from(timeline.preemptions),
        ),
        KeyValue::new("infercheck.sim.seq", saturating_i64(timeline.seq)),
    ]
}

fn engine_status(reason: FinishReason) -> Status {
    match reason {
        FinishReason::Length => Status::Unset,
        FinishReason::Abort | FinishReason::Error => Status::error(reason.as_str()),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The router's span for one forwarded request.
#[derive(Clone, Debug)]
pub(crate) struct RouterSpan {
    /// From [`Tracing::router_context`]: trace id, this span's id,
    /// sampling; `None` (nothing to export) when tracing is off.
    pub context: Option<TraceParent>,
    /// The incoming `traceparent`'s span, if any.
    pub parent_span_id: Option<u64>,
    pub start: SystemTime,
    pub end: SystemTime,
    /// Base URL of the chosen backend.
    pub backend: String,
    pub method: String,
    pub path: String,
    /// The request's model, when it named one the backends serve.
    pub model: Option<String>,
    /// The status sent to the client (502 when the backend was unreachable);
    /// `None` when the client left before there was one.
    pub status: Option<u16>,
    /// The response body broke off (backend cut the stream).
    pub body_error: bool,
}

fn router_span(context: TraceParent, span: RouterSpan, scope: &InstrumentationScope) -> SpanData {
    let ids = span_context(context.trace_id, context.parent_span_id);
    let mut data = span_data(ids, "router", span.start, span.end, scope);
    if let Some(parent) = span.parent_span_id {
        data.parent_span_id = SpanId::from(parent);
        data.parent_span_is_remote = true;
    }
    data.status = match span.status {
        None => Status::error("the client left before the response"),
        Some(status) if status >= 500 => Status::error(format!("status {status}")),
        Some(_) if span.body_error => Status::error("the response body broke off"),
        Some(_) => Status::Unset,
    };
    data.attributes = vec![
        KeyValue::new("http.request.method", span.method),
        KeyValue::new("url.path", span.path),
        KeyValue::new("infercheck.router.backend", span.backend),
    ];
    if let Some(status) = span.status {
        let status = KeyValue::new("http.response.status_code", i64::from(status));
        data.attributes.push(status);
    }
    if let Some(model) = span.model {
        data.attributes
            .push(KeyValue::new("gen_ai.request.model", model));
    }
    data
}

fn span_context(trace_id: u128, span_id: u64) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

/// A server span with no parent, no attributes and status unset.
fn span_data(
    context: SpanContext,
    name: &'static str,
    start: SystemTime,
    end: SystemTime,
    scope: &InstrumentationScope,
) -> SpanData {
    SpanData {
        span_context: context,
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed(name),
        start_time: start,
        end_time: end.max(start),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests;
