//! Trace backend answers → [`ReceivedSpan`]s, the receiver's span type, so
//! that every backend answers coverage questions the same way. Pure
//! functions over bytes.
//!
//! Read leniently, because backends differ in the details:
//! - OTLP JSON (Jaeger API v3 `{"result": …}`, possibly several such
//!   objects in a row when the gateway streams; Tempo's `{"batches": …}` or
//!   `{"trace": …}`; a bare `{"resourceSpans": …}`): ids in hex or base64,
//!   nanosecond times as strings or numbers, `instrumentationLibrarySpans`
//!   as an old name of `scopeSpans`.
//! - Jaeger API v1 (`{"data": [trace], "errors": …}` or a bare trace):
//!   ids of 16 or 32 hex chars, times in microseconds, the parent taken
//!   from the first `CHILD_OF` (else `FOLLOWS_FROM`) reference *within the
//!   trace*; a reference into another trace is a link, not a parent.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};
use serde_json::Value;

use crate::otlp::{ReceivedSpan, SpanStatus};
use crate::trace_id::{parse_span_id, parse_trace_id};

/// Attributes kept per span (as the receiver's default).
const MAX_ATTRIBUTES: usize = 8;

/// A body the parser could not read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable trace response: {0}")]
pub struct ParseError(String);

/// What one answer held: the spans, and whether the backend said the trace
/// does not exist inside a 200 answer (Jaeger v3 streams errors as objects).
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub spans: Vec<ReceivedSpan>,
    pub not_found: bool,
}

// ---------------------------------------------------------------- OTLP JSON

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    result: Option<TracesData>,
    #[serde(default)]
    trace: Option<TracesData>,
    #[serde(default, alias = "batches")]
    resource_spans: Vec<ResourceSpans>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TracesData {
    #[serde(default, alias = "batches")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(default, alias = "instrumentationLibrarySpans")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Debug, Default, Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Value,
}

#[derive(Debug, Default, Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<OtlpSpan>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtlpSpan {
    #[serde(default)]
    trace_id: String,
    #[serde(default)]
    span_id: String,
    #[serde(default)]
    parent_span_id: String,
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "nanos")]
    start_time_unix_nano: u64,
    #[serde(default, deserialize_with = "nanos")]
    end_time_unix_nano: u64,
    #[serde(default)]
    status: Option<OtlpStatus>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Debug, Default, Deserialize)]
struct OtlpStatus {
    #[serde(default)]
    code: Value,
}

/// OTLP JSON spells 64-bit integers as strings; some writers use numbers.
fn nanos<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().ok_or_else(|| de::Error::custom("negative time")),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => s.parse().map_err(de::Error::custom),
        Value::Null => Ok(0),
        other => Err(de::Error::custom(format!("a time, found {other}"))),
    }
}

/// Parses an OTLP JSON answer: one or more JSON objects back to back.
pub fn otlp_json(body: &[u8]) -> Result<Parsed, ParseError> {
    let mut parsed = Parsed::default();
    for envelope in serde_json::Deserializer::from_slice(body).into_iter::<Envelope>() {
        let envelope = envelope.map_err(|e| ParseError(e.to_string()))?;
        if envelope.error.as_ref().is_some_and(is_not_found) {
            parsed.not_found = true;
        }
        let groups = [envelope.result, envelope.trace]
            .into_iter()
            .flatten()
            .flat_map(|t| t.resource_spans)
            .chain(envelope.resource_spans);
        for group in groups {
            push_resource_spans(group, &mut parsed.spans);
        }
    }
    Ok(parsed)
}

/// `{"httpCode": 404, …}` or a message saying so (gRPC NOT_FOUND is 5).
fn is_not_found(error: &Value) -> bool {
    let code = |key: &str| error.get(key).and_then(Value::as_i64);
    code("httpCode") == Some(404)
        || code("code") == Some(5)
        || error
            .get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| m.to_ascii_lowercase().contains("not found"))
}

fn push_resource_spans(group: ResourceSpans, out: &mut Vec<ReceivedSpan>) {
    let service = group
        .resource
        .as_ref()
        .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
        .map_or_else(|| "unknown_service".to_owned(), |kv| any_value(&kv.value));
    for span in group.scope_spans.into_iter().flat_map(|s| s.spans) {
        if let Some(span) = otlp_span(span, &service) {
            out.push(span);
        }
    }
}

/// `None` when the trace or span id is unreadable (such a span cannot be
/// matched to a request, so it is not counted).
fn otlp_span(span: OtlpSpan, service: &str) -> Option<ReceivedSpan> {
    let status = match &span.status {
        Some(s) => status_code(&s.code),
        None => SpanStatus::Unset,
    };
    Some(ReceivedSpan {
        trace_id: parse_trace_id(&span.trace_id)?,
        span_id: parse_span_id(&span.span_id)?,
        parent_span_id: parse_span_id(&span.parent_span_id),
        name: span.name,
        service_name: service.to_owned(),
        start_unix_nanos: span.start_time_unix_nano,
        end_unix_nanos: span.end_time_unix_nano,
        status,
        attributes: span
            .attributes
            .iter()
            .take(MAX_ATTRIBUTES)
            .map(|kv| (kv.key.clone(), any_value(&kv.value)))
            .collect(),
    })
}

/// A status code as a number (`2`) or an enum name (`STATUS_CODE_ERROR`).
fn status_code(code: &Value) -> SpanStatus {
    match code {
        Value::Number(n) => SpanStatus::from_code(n.as_i64().unwrap_or(0) as i32),
        Value::String(s) if s.ends_with("ERROR") => SpanStatus::Error,
        Value::String(s) if s.ends_with("OK") => SpanStatus::Ok,
        _ => SpanStatus::Unset,
    }
}

/// An OTLP `AnyValue` as text: `{"stringValue": "x"}` → `x`,
/// `{"intValue": "3"}` → `3`, arrays joined with `,`.
fn any_value(value: &Value) -> String {
    let Some(map) = value.as_object() else {
        return scalar(value);
    };
    let Some((kind, inner)) = map.iter().next() else {
        return String::new();
    };
    match (kind.as_str(), inner) {
        ("arrayValue", Value::Object(array)) => array
            .get("values")
            .and_then(Value::as_array)
            .map(|values| values.iter().map(any_value).collect::<Vec<_>>().join(","))
            .unwrap_or_default(),
        (_, inner) => scalar(inner),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------- Jaeger v1

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum V1Body {
    // Bare first: every object would match `Wrapped`, whose fields are optional.
    Bare(V1Trace),
    Wrapped {
        #[serde(default)]
        data: Option<Vec<V1Trace>>,
        #[serde(default)]
        errors: Option<Vec<V1Error>>,
    },
}

#[derive(Debug, Deserialize)]
struct V1Error {
    #[serde(default)]
    code: i64,
}

#[derive(Debug, Deserialize)]
struct V1Trace {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(default)]
    spans: Vec<V1Span>,
    #[serde(default)]
    processes: HashMap<String, V1Process>,
}

#[derive(Debug, Deserialize)]
struct V1Process {
    #[serde(rename = "serviceName", default)]
    service_name: String,
}

#[derive(Debug, Deserialize)]
struct V1Span {
    #[serde(rename = "traceID", default)]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(rename = "parentSpanID", default)]
    parent_span_id: Option<String>,
    #[serde(rename = "operationName", default)]
    operation_name: String,
    #[serde(default)]
    references: Vec<V1Reference>,
    /// Microseconds since the epoch.
    #[serde(rename = "startTime", default)]
    start_time: u64,
    /// Microseconds.
    #[serde(default)]
    duration: u64,
    #[serde(default)]
    tags: Vec<V1Tag>,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct V1Reference {
    #[serde(rename = "refType", default)]
    ref_type: String,
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Debug, Deserialize)]
struct V1Tag {
    key: String,
    #[serde(default)]
    value: Value,
}

/// Parses a Jaeger v1 `GET /api/traces/{id}` answer.
pub fn jaeger_v1(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: V1Body = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    let (traces, errors) = match body {
        V1Body::Wrapped { data, errors } => (data.unwrap_or_default(), errors.unwrap_or_default()),
        V1Body::Bare(trace) => (vec![trace], Vec::new()),
    };
    let mut parsed = Parsed {
        not_found: errors.iter().any(|e| e.code == 404),
        spans: Vec::new(),
    };
    for trace in traces {
        v1_trace(trace, &mut parsed.spans);
    }
    Ok(parsed)
}

fn v1_trace(trace: V1Trace, out: &mut Vec<ReceivedSpan>) {
    let Some(trace_id) = parse_trace_id(&trace.trace_id) else {
        return;
    };
    for span in trace.spans {
        let service = span
            .process_id
            .as_ref()
            .and_then(|p| trace.processes.get(p))
            .map_or("unknown_service", |p| p.service_name.as_str());
        if let Some(span) = v1_span(trace_id, &span, service) {
            out.push(span);
        }
    }
}

fn v1_span(trace_id: u128, span: &V1Span, service: &str) -> Option<ReceivedSpan> {
    let span_id = parse_span_id(&span.span_id)?;
    let own_trace = parse_trace_id(&span.trace_id).unwrap_or(trace_id);
    let start_nanos = span.start_time.saturating_mul(1000);
    Some(ReceivedSpan {
        trace_id: own_trace,
        span_id,
        parent_span_id: v1_parent(own_trace, span),
        name: span.operation_name.clone(),
        service_name: service.to_owned(),
        start_unix_nanos: start_nanos,
        end_unix_nanos: start_nanos.saturating_add(span.duration.saturating_mul(1000)),
        status: v1_status(&span.tags),
        attributes: span
            .tags
            .iter()
            .take(MAX_ATTRIBUTES)
            .map(|t| (t.key.clone(), scalar(&t.value)))
            .collect(),
    })
}

/// The parent within the trace: first `CHILD_OF`, else first
/// `FOLLOWS_FROM`, else the legacy `parentSpanID` field.
fn v1_parent(trace_id: u128, span: &V1Span) -> Option<u64> {
    let in_trace = |kind: &str| {
        span.references
            .iter()
            .filter(|r| r.ref_type.eq_ignore_ascii_case(kind))
            .find(|r| parse_trace_id(&r.trace_id) == Some(trace_id))
            .and_then(|r| parse_span_id(&r.span_id))
    };
    in_trace("CHILD_OF")
        .or_else(|| in_trace("FOLLOWS_FROM"))
        .or_else(|| span.parent_span_id.as_deref().and_then(parse_span_id))
}

/// Jaeger marks failed spans with the `error` tag (or OTel's status tag).
fn v1_status(tags: &[V1Tag]) -> SpanStatus {
    let tag = |key: &str| tags.iter().find(|t| t.key == key).map(|t| &t.value);
    let error = matches!(tag("error"), Some(Value::Bool(true)))
        || matches!(tag("error"), Some(Value::String(s)) if s == "true")
        || matches!(tag("otel.status_code"), Some(Value::String(s)) if s == "ERROR");
    if error {
        SpanStatus::Error
    } else if matches!(tag("otel.status_code"), Some(Value::String(s)) if s == "OK") {
        SpanStatus::Ok
    } else {
        SpanStatus::Unset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otlp_json_reads_hex_and_base64_ids_and_string_or_number_times() {
        let body = br#"{"result":{"resourceSpans":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"vllm"}}]},
            "scopeSpans":[{"spans":[
              {"traceId":"0000000000000000000000000000000a","spanId":"0000000000000001",
               "name":"engine","startTimeUnixNano":"1000","endTimeUnixNano":3000,
               "status":{"code":"STATUS_CODE_ERROR"},
               "attributes":[{"key":"n","value":{"intValue":"7"}},
                             {"key":"a","value":{"arrayValue":{"values":[{"stringValue":"x"},{"stringValue":"y"}]}}}]},
              {"traceId":"AAAAAAAAAAAAAAAAAAAACg==","spanId":"AAAAAAAAAAI=","parentSpanId":"0000000000000001",
               "name":"queue"}]}]}]}}
            {"result":{"resourceSpans":[]}}"#;
        let parsed = otlp_json(body).unwrap();
        assert_eq!(parsed.spans.len(), 2);
        let (engine, queue) = (&parsed.spans[0], &parsed.spans[1]);
        assert_eq!((engine.trace_id, engine.span_id), (10, 1));
        assert_eq!(
            (engine.start_unix_nanos, engine.end_unix_nanos),
            (1000, 3000)
        );
        assert_eq!(engine.status, SpanStatus::Error);
        assert_eq!(engine.service_name, "vllm");
        assert_eq!(
            (engine.attribute("n"), engine.attribute("a")),
            (Some("7"), Some("x,y"))
        );
        assert_eq!(
            (queue.trace_id, queue.span_id, queue.parent_span_id),
            (10, 2, Some(1))
        );
    }

    #[test]
    fn not_found_inside_a_200_answer_is_recognised() {
        let cases: &[&[u8]] = &[
            br#"{"error":{"httpCode":404,"message":"trace not found"}}"#,
            br#"{"error":{"code":5,"message":"x"}}"#,
        ];
        for body in cases {
            assert!(otlp_json(body).unwrap().not_found);
        }
        let v1 = br#"{"data":null,"total":0,"limit":0,"offset":0,"errors":[{"code":404,"msg":"trace not found"}]}"#;
        assert!(jaeger_v1(v1).unwrap().not_found);
        assert!(otlp_json(b"{oops").is_err());
        assert!(jaeger_v1(b"[]").is_err());
    }

    #[test]
    fn tempo_shapes_are_read() {
        let span = r#"{"traceId":"AAAAAAAAAAAAAAAAAAAAAQ==","spanId":"AAAAAAAAAAE=","name":"s"}"#;
        for body in [
            format!(r#"{{"batches":[{{"scopeSpans":[{{"spans":[{span}]}}]}}]}}"#),
            format!(
                r#"{{"trace":{{"resourceSpans":[{{"instrumentationLibrarySpans":[{{"spans":[{span}]}}]}}]}}}}"#
            ),
        ] {
            let parsed = otlp_json(body.as_bytes()).unwrap();
            assert_eq!(parsed.spans.len(), 1, "{body}");
            assert_eq!(parsed.spans[0].service_name, "unknown_service");
        }
    }
}
