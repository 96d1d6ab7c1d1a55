//! OTLP/HTTP trace request bodies → [`ReceivedSpan`]s: protobuf or JSON,
//! optionally gzip-compressed. Pure functions over bytes; the HTTP handler
//! in `mod.rs` maps [`DecodeError`] to a status.

use std::io::Read;

use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::store::{ReceivedSpan, SpanStatus};

/// A decompressed body larger than this is refused (a gzip bomb guard).
pub const MAX_DECODED_BYTES: u64 = 64 << 20;

/// The two OTLP/HTTP encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// From a `Content-Type` value (parameters such as `charset` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let essence = content_type.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Format::Protobuf),
            "application/json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    ContentType(String),
    #[error("unsupported content encoding {0:?}: send gzip or none")]
    Encoding(String),
    #[error("the decompressed body exceeds {MAX_DECODED_BYTES} bytes")]
    TooLarge,
    #[error("bad gzip body: {0}")]
    Gzip(std::io::Error),
    #[error("bad protobuf body: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("bad OTLP JSON body: {0}")]
    Json(#[from] serde_json::Error),
}

/// Undoes `Content-Encoding` (`gzip`, `identity` or none).
pub fn decompress(encoding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    match encoding.map(str::trim) {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some(e) if e.eq_ignore_ascii_case("gzip") => gunzip(body),
        Some(other) => Err(DecodeError::Encoding(other.to_string())),
    }
}

fn gunzip(body: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    GzDecoder::new(body)
        .take(MAX_DECODED_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if out.len() as u64 > MAX_DECODED_BYTES {
        return Err(DecodeError::TooLarge);
    }
    Ok(out)
}

/// Parses an uncompressed body.
pub fn parse(format: Format, body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    Ok(match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(body)?,
        Format::Json => serde_json::from_slice(body)?,
    })
}

/// The request's spans, plus how many were rejected for invalid ids.
pub fn spans(
    request: ExportTraceServiceRequest,
    max_attributes: usize,
) -> (Vec<ReceivedSpan>, u64) {
    let mut kept = Vec::new();
    let mut rejected = 0;
    for resource_spans in request.resource_spans {
        let service = service_name(resource_spans.resource.as_ref());
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            match received(span, &service, max_attributes) {
                Some(span) => kept.push(span),
                None => rejected += 1,
            }
        }
    }
    (kept, rejected)
}

/// `None` when the trace or span id is missing, of the wrong length or zero.
fn received(span: Span, service: &str, max_attributes: usize) -> Option<ReceivedSpan> {
    let trace_id = id_u128(&span.trace_id)?;
    let span_id = id_u64(&span.span_id)?;
    let attributes = span
        .attributes
        .iter()
        .take(max_attributes)
        .map(|kv| (kv.key.clone(), render(kv.value.as_ref())))
        .collect();
    Some(ReceivedSpan {
        trace_id,
        span_id,
        parent_span_id: id_u64(&span.parent_span_id),
        name: span.name,
        service_name: service.to_string(),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        status: SpanStatus::from_code(span.status.map_or(0, |s| s.code)),
        attributes,
    })
}

fn id_u128(bytes: &[u8]) -> Option<u128> {
    let id = u128::from_be_bytes(bytes.try_into().ok()?);
    (id != 0).then_some(id)
}

fn id_u64(bytes: &[u8]) -> Option<u64> {
    let id = u64::from_be_bytes(bytes.try_into().ok()?);
    (id != 0).then_some(id)
}

fn service_name(resource: Option<&Resource>) -> String {
    resource
        .into_iter()
        .flat_map(|r| &r.attributes)
        .find(|kv: &&KeyValue| kv.key == "service.name")
        .map(|kv| render(kv.value.as_ref()))
        .unwrap_or_else(|| "unknown_service".to_string())
}

/// An attribute value as text.
fn render(value: Option<&AnyValue>) -> String {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::ArrayValue(array)) => {
            let items: Vec<String> = array.values.iter().map(|v| render(Some(v))).collect();
            items.join(",")
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| format!("{}={}", kv.key, render(kv.value.as_ref())))
                .collect();
            items.join(",")
        }
        Some(Value::BytesValue(bytes)) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Some(Value::StringValueStrindex(i)) => format!("#{i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use std::io::Write;

    fn string(s: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(s.into())),
        }
    }

    fn kv(key: &str, value: AnyValue) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(value),
            ..KeyValue::default()
        }
    }

    fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", string("sim"))],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn span(trace_id: Vec<u8>, span_id: Vec<u8>, parent: Vec<u8>) -> Span {
        let reasons = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![string("stop"), string("length")],
            })),
        };
        let tokens = AnyValue {
            value: Some(any_value::Value::IntValue(12)),
        };
        Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            name: "engine".into(),
            start_time_unix_nano: 10,
            end_time_unix_nano: 20,
            attributes: vec![kv("reasons", reasons), kv("tokens", tokens)],
            status: Some(Status {
                code: 2,
                message: "boom".into(),
            }),
            ..Span::default()
        }
    }

    #[test]
    fn protobuf_bodies_keep_ids_times_status_and_attributes() {
        let trace = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10_u128
            .to_be_bytes()
            .to_vec();
        let body = request(vec![span(trace, vec![0, 0, 0, 0, 0, 0, 0, 7], vec![9; 8])]);
        let decoded = parse(Format::Protobuf, &body.encode_to_vec()).unwrap();
        let (spans, rejected) = super::spans(decoded, 8);
        assert_eq!(rejected, 0);
        let got = &spans[0];
        assert_eq!(got.trace_id, 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        assert_eq!(got.span_id, 7);
        assert_eq!(got.parent_span_id, Some(u64::from_be_bytes([9; 8])));
        assert_eq!((got.start_unix_nanos, got.end_unix_nanos), (10, 20));
        assert_eq!(got.service_name, "sim");
        assert_eq!(got.status, SpanStatus::Error);
        assert_eq!(got.attribute("reasons"), Some("stop,length"));
        assert_eq!(got.attribute("tokens"), Some("12"));
    }

    #[test]
    fn invalid_ids_are_rejected_and_attributes_capped() {
        let cases = [
            (vec![0; 16], vec![1; 8]), // zero trace id
            (vec![1; 15], vec![1; 8]), // short trace id
            (vec![1; 16], vec![0; 8]), // zero span id
            (vec![1; 16], vec![]),     // missing span id
        ];
        let bad: Vec<Span> = cases
            .into_iter()
            .map(|(t, s)| span(t, s, Vec::new()))
            .collect();
        let mut all = bad;
        all.push(span(vec![1; 16], vec![1; 8], Vec::new()));
        let (spans, rejected) = super::spans(request(all), 1);
        assert_eq!((spans.len(), rejected), (1, 4));
        assert_eq!(spans[0].parent_span_id, None);
        assert_eq!(spans[0].attributes.len(), 1);
    }

    #[test]
    fn jaeger_otlp_json_fixture_parses_with_hex_ids() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/jaeger/otlp-example_trace.json"
        );
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let (spans, rejected) = super::spans(parse(Format::Json, &body).unwrap(), 8);
        assert_eq!(rejected, 0);
        assert!(!spans.is_empty());
        // The fixture's trace id has leading zeros: compare as numbers.
        assert!(spans.iter().all(|s| s.trace_id == 0x11), "{spans:?}");
        let first = spans.iter().find(|s| s.span_id == 4).unwrap();
        assert_eq!(first.name, "example-operation-2");
        assert_eq!(first.service_name, "example-service-2");
        assert_eq!(first.start_unix_nanos, 1_485_449_191_639_875_000);
    }

    #[test]
    fn gzip_and_content_types() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{}").unwrap();
        let packed = gz.finish().unwrap();
        assert_eq!(decompress(Some("gzip"), &packed).unwrap(), b"{}");
        assert_eq!(decompress(None, b"x").unwrap(), b"x");
        assert!(matches!(
            decompress(Some("br"), b"x"),
            Err(DecodeError::Encoding(_))
        ));
        assert!(matches!(
            decompress(Some("gzip"), b"nope"),
            Err(DecodeError::Gzip(_))
        ));
        let formats = [
            ("application/x-protobuf", Some(Format::Protobuf)),
            ("application/json; charset=utf-8", Some(Format::Json)),
            ("text/plain", None),
        ];
        for (content_type, format) in formats {
            assert_eq!(
                Format::from_content_type(content_type),
                format,
                "{content_type}"
            );
        }
    }
}
