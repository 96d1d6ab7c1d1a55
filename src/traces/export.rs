//! infercheck's own client spans over OTLP/HTTP (protobuf): one
//! `infercheck.request` span per traced request, with the span id the
//! request's `traceparent` named, so the server's spans hang under it.
//!
//! Spans are built from the outcome after the request ended (explicit
//! start and end times), on the runner's side of the event channel, never
//! on a worker: the hot path only draws the trace id. They go to the SDK's
//! batch processor, whose own thread does the HTTP; a full queue drops
//! spans rather than slowing the run.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};

use crate::clock::Clock;
use crate::outcome::Outcome;
use crate::trace_id::client_span_id;

/// The service name infercheck's spans carry.
pub const SERVICE_NAME: &str = "infercheck";
/// The name of a client span.
pub const SPAN_NAME: &str = "infercheck.request";

const MAX_QUEUED_SPANS: usize = 65_536;
const EXPORT_INTERVAL: Duration = Duration::from_millis(500);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exporter of client spans.
#[derive(Debug)]
pub struct ClientSpans {
    processor: Arc<BatchSpanProcessor>,
    scope: InstrumentationScope,
    pub traces_url: String,
}

impl ClientSpans {
    /// Exports to `<endpoint>/v1/traces`.
    pub fn new(endpoint: &str) -> anyhow::Result<ClientSpans> {
        let batching = crate::otlp::export::Batching {
            max_queued: MAX_QUEUED_SPANS,
            interval: EXPORT_INTERVAL,
            timeout: EXPORT_TIMEOUT,
        };
        let (processor, traces_url) =
            crate::otlp::export::batch_processor(endpoint, SERVICE_NAME, batching)?;
        let scope = InstrumentationScope::builder("infercheck")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(ClientSpans {
            processor: Arc::new(processor),
            scope,
            traces_url,
        })
    }

    /// Queues the client span of one traced request.
    pub fn export(&self, outcome: &Outcome, clock: &Clock) {
        self.processor
            .on_end(client_span(outcome, clock, &self.scope));
    }

    /// Delivers what is queued and stops the exporter thread; runs the
    /// wait on a blocking thread so a receiver on this runtime keeps serving.
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        let processor = self.processor.clone();
        tokio::task::spawn_blocking(move || processor.shutdown())
            .await
            .context("the client span exporter task failed")?
            .context("shutting down the client span exporter")
    }
}

fn client_span(outcome: &Outcome, clock: &Clock, scope: &InstrumentationScope) -> SpanData {
    let context = SpanContext::new(
        TraceId::from(outcome.trace_id),
        SpanId::from(client_span_id(outcome.trace_id)),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    );
    let start = clock.wall(outcome.sent);
    let mut attributes = vec![
        KeyValue::new("infercheck.phase", i64::from(outcome.slot.phase)),
        KeyValue::new("infercheck.model", i64::from(outcome.slot.model)),
        KeyValue::new("http.response.status_code", i64::from(outcome.status)),
    ];
    if let Some(error) = outcome.error {
        attributes.push(KeyValue::new("error.type", error.name()));
    }
    SpanData {
        span_context: context,
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Borrowed(SPAN_NAME),
        start_time: start,
        end_time: clock.wall(outcome.end).max(start),
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match outcome.error {
            Some(error) => Status::error(error.name()),
            None => Status::Unset,
        },
        instrumentation_scope: scope.clone(),
    }
}
