//! An embedded OTLP/HTTP trace receiver: `POST /v1/traces` with protobuf
//! (`application/x-protobuf`) or OTLP JSON (`application/json`) bodies,
//! optionally gzip-compressed. It lets a run check which traces and spans
//! arrived (trace coverage) where no Jaeger or collector exists, and it is
//! the collector of the trace tests.
//!
//! Invariants:
//! - Ids are numbers: trace ids `u128`, span ids `u64`, compared as such
//!   (OTLP JSON spells them in hex, protobuf as big-endian bytes).
//! - Memory is bounded by [`Limits`]: spans past a cap are refused and
//!   counted ([`OtlpReceiver::dropped_spans`]) and reported to the sender
//!   as OTLP partial success; spans with invalid ids are rejected the same
//!   way. Nothing is evicted.
//! - A request answers only after its spans are stored, so once an
//!   exporter's flush has returned, its spans are visible here.
//! - It never sends anything; it binds where it is told (127.0.0.1:0 in
//!   tests).
//!
//! Layout: `decode` (bodies → spans), `store` (the bounded map).

pub mod decode;
pub mod export;
mod store;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::serve::{Background, connectable};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::net::TcpListener;

pub use store::{Limits, ReceivedSpan, SpanStatus};

use decode::{DecodeError, Format};
use store::Store;

/// Compressed request bodies up to this size are read (an exporter's batch
/// of 512 spans is well under a megabyte).
const BODY_LIMIT: usize = 32 << 20;

/// How long [`OtlpReceiver::stop`] waits for open requests.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running receiver. Dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    store: Arc<Store>,
    server: Background,
}

impl OtlpReceiver {
    /// Binds `addr` (127.0.0.1:0 in tests) with the default [`Limits`] and
    /// serves on the current tokio runtime; returns at once.
    pub async fn start(addr: SocketAddr) -> io::Result<OtlpReceiver> {
        OtlpReceiver::start_with(addr, Limits::default()).await
    }

    /// [`OtlpReceiver::start`] with explicit caps.
    pub async fn start_with(addr: SocketAddr, limits: Limits) -> io::Result<OtlpReceiver> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Store::new(limits));
        let app = Router::new()
            .route("/v1/traces", post(export))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(store.clone());
        Ok(OtlpReceiver {
            addr,
            store,
            server: Background::serve(listener, app),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (loopback in place of an unspecified address): the
    /// OTLP/HTTP base URL to give an exporter; spans go to `/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", connectable(self.addr))
    }

    /// The spans received for `trace_id`, in arrival order.
    pub fn trace(&self, trace_id: u128) -> Option<Vec<ReceivedSpan>> {
        self.store.trace(trace_id)
    }

    /// Whether any span of `trace_id` arrived (no copy of the spans).
    pub fn has_trace(&self, trace_id: u128) -> bool {
        self.store.has_trace(trace_id)
    }

    /// Every trace id received, ascending.
    pub fn trace_ids(&self) -> Vec<u128> {
        self.store.trace_ids()
    }

    /// Spans held.
    pub fn span_count(&self) -> usize {
        self.store.span_count()
    }

    /// Spans refused because a cap was reached.
    pub fn dropped_spans(&self) -> u64 {
        self.store.dropped_spans()
    }

    /// Stops accepting and waits (bounded) for open requests.
    pub async fn stop(mut self) {
        self.server.stop(STOP_GRACE).await;
    }
}

/// `POST /v1/traces`.
async fn export(State(store): State<Arc<Store>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = header_str(&headers, header::CONTENT_TYPE).unwrap_or("");
    let Some(format) = Format::from_content_type(content_type) else {
        let error = DecodeError::ContentType(content_type.to_string());
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &error);
    };
    let encoding = header_str(&headers, header::CONTENT_ENCODING);
    let request = decode::decompress(encoding, &body).and_then(|raw| decode::parse(format, &raw));
    let request = match request {
        Ok(request) => request,
        Err(error) => return error_response(decode_status(&error), &error),
    };
    let (spans, invalid) = decode::spans(request, store.limits().max_attributes);
    let refused = store.insert(spans);
    success_response(format, invalid, refused)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn decode_status(error: &DecodeError) -> StatusCode {
    match error {
        DecodeError::ContentType(_) | DecodeError::Encoding(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        DecodeError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        DecodeError::Gzip(_) | DecodeError::Protobuf(_) | DecodeError::Json(_) => {
            StatusCode::BAD_REQUEST
        }
    }
}

/// 200 with an `ExportTraceServiceResponse` in the request's encoding;
/// partial success names the spans not kept.
fn success_response(format: Format, invalid: u64, refused: u64) -> Response {
    let rejected = invalid + refused;
    let message = match (invalid, refused) {
        (0, 0) => String::new(),
        (0, _) => format!("{refused} spans refused: the receiver is full"),
        (_, 0) => format!("{invalid} spans with invalid trace or span ids"),
        _ => format!("{invalid} spans with invalid ids, {refused} refused: the receiver is full"),
    };
    let body = match format {
        Format::Protobuf => protobuf_response(rejected, message),
        Format::Json => json_response(rejected, &message),
    };
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

fn protobuf_response(rejected: u64, message: String) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| ExportTracePartialSuccess {
        rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: message,
    });
    ExportTraceServiceResponse { partial_success }.encode_to_vec()
}

fn json_response(rejected: u64, message: &str) -> Vec<u8> {
    let body = if rejected == 0 {
        serde_json::json!({})
    } else {
        // OTLP JSON spells 64-bit integers as strings.
        serde_json::json!({"partialSuccess": {
            "rejectedSpans": rejected.to_string(),
            "errorMessage": message,
        }})
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

fn error_response(status: StatusCode, error: &DecodeError) -> Response {
    (status, error.to_string()).into_response()
}

#[cfg(test)]
mod tests;
