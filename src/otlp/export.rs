//! The sending side of OTLP: a batch span processor exporting over
//! OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, shared by infercheck's
//! client spans (`traces::export`) and the simulator's (`sim::trace`). The
//! SDK's batch processor does the HTTP on its own thread; a full queue drops
//! spans rather than slowing the caller.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};

/// How spans are batched and sent.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    /// Spans queued at most; more are dropped.
    pub max_queued: usize,
    /// How often a batch goes out.
    pub interval: Duration,
    /// The HTTP timeout of one export.
    pub timeout: Duration,
}

/// A processor exporting to `<endpoint>/v1/traces` as `service_name`, and
/// that URL.
pub fn batch_processor(
    endpoint: &str,
    service_name: &str,
    batching: Batching,
) -> anyhow::Result<(BatchSpanProcessor, String)> {
    let traces_url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    // The exporter builds its own reqwest client.
    crate::tls::install();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url.clone())
        .with_timeout(batching.timeout)
        .build()
        .with_context(|| format!("OTLP exporter for {traces_url}"))?;
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(batching.max_queued)
        .with_scheduled_delay(batching.interval)
        .build();
    let mut processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(config)
        .build();
    let resource = Resource::builder_empty()
        .with_service_name(service_name.to_string())
        .build();
    opentelemetry_sdk::trace::SpanProcessor::set_resource(&mut processor, &resource);
    Ok((processor, traces_url))
}
