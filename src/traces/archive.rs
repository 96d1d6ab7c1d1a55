//! The spans the look-ups found, kept for the run folder
//! (`raw/spans.otlp.json.gz`): each found trace written as one line of
//! OTLP JSON, a `TracesData` (opentelemetry-proto's serde types, so ids
//! are hex, times nanosecond strings, as the OTLP/JSON encoding and the
//! OpenTelemetry Collector's file exporter write them), spans grouped by
//! their resource's `service.name`.
//!
//! What a span keeps is what the receiver and the backend parsers keep
//! ([`ReceivedSpan`]): ids, parent, name, service, times, status, and the
//! first attributes with their values as text (written as `stringValue`).
//! Kind, scope, events and links are not kept: they are written empty
//! (unspecified, unknown, none).
//!
//! Bounded by the look-ups: at most `max_lookups` traces, each as the
//! receiver or the backend answered it.

use std::collections::BTreeMap;
use std::io::{self, Write};

use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};

use crate::otlp::{ReceivedSpan, SpanStatus};

/// The spans of every trace a look-up found, trace by trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FoundSpans {
    traces: Vec<Vec<ReceivedSpan>>,
}

impl FoundSpans {
    /// Keeps one found trace's spans (an empty answer is not a trace).
    pub fn push(&mut self, spans: Vec<ReceivedSpan>) {
        if !spans.is_empty() {
            self.traces.push(spans);
        }
    }

    /// Traces kept.
    pub fn traces(&self) -> usize {
        self.traces.len()
    }

    /// Spans kept over all traces.
    pub fn spans(&self) -> usize {
        self.traces.iter().map(Vec::len).sum()
    }

    /// Writes every trace as one OTLP JSON line; returns the lines written.
    pub fn write_otlp_json_lines(&self, out: &mut dyn Write) -> io::Result<u64> {
        for spans in &self.traces {
            serde_json::to_writer(&mut *out, &traces_data(spans))?;
            out.write_all(b"\n")?;
        }
        Ok(self.traces.len() as u64)
    }
}

/// One trace's spans as OTLP `TracesData`: a `ResourceSpans` per service.
pub fn traces_data(spans: &[ReceivedSpan]) -> TracesData {
    let mut by_service: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for span in spans {
        by_service
            .entry(span.service_name.as_str())
            .or_default()
            .push(otlp_span(span));
    }
    TracesData {
        resource_spans: by_service
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![text_attribute("service.name", service)],
                    ..Resource::default()
                }),
                // The scope is not kept: an empty one means unknown.
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope::default()),
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            })
            .collect(),
    }
}

fn otlp_span(span: &ReceivedSpan) -> Span {
    Span {
        trace_id: span.trace_id.to_be_bytes().to_vec(),
        span_id: span.span_id.to_be_bytes().to_vec(),
        parent_span_id: span
            .parent_span_id
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        name: span.name.clone(),
        start_time_unix_nano: span.start_unix_nanos,
        end_time_unix_nano: span.end_unix_nanos,
        attributes: span
            .attributes
            .iter()
            .map(|(k, v)| text_attribute(k, v))
            .collect(),
        status: Some(Status {
            code: match span.status {
                SpanStatus::Unset => 0,
                SpanStatus::Ok => 1,
                SpanStatus::Error => 2,
            },
            ..Status::default()
        }),
        ..Span::default()
    }
}

fn text_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::parse::otlp_json;

    fn span(trace_id: u128, span_id: u64, parent: Option<u64>, service: &str) -> ReceivedSpan {
        ReceivedSpan {
            trace_id,
            span_id,
            parent_span_id: parent,
            name: format!("span-{span_id}"),
            service_name: service.into(),
            start_unix_nanos: 1_700_000_000_000_000_000 + span_id,
            end_unix_nanos: 1_700_000_000_500_000_000,
            status: if span_id == 2 {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            },
            attributes: vec![("gen_ai.request.model".into(), "sim-llama-8b".into())],
        }
    }

    /// What is written reads back, span for span, through the parser the
    /// Jaeger v3 and Tempo answers go through.
    #[test]
    fn written_lines_read_back_as_the_same_spans() {
        let trace = 0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128;
        let mut found = FoundSpans::default();
        found.push(vec![
            span(trace, 1, None, "vllm"),
            span(trace, 2, Some(1), "vllm"),
            span(trace, 3, Some(1), "router"),
        ]);
        found.push(Vec::new());
        found.push(vec![span(7, 9, None, "vllm")]);
        assert_eq!((found.traces(), found.spans()), (2, 4));
        let mut out = Vec::new();
        assert_eq!(found.write_otlp_json_lines(&mut out).unwrap(), 2);
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(text.lines().count(), 2);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let rs = &first["resourceSpans"];
        assert_eq!(rs.as_array().unwrap().len(), 2, "one resource per service");
        let s = &rs[1]["scopeSpans"][0]["spans"][1];
        assert_eq!(s["traceId"], "0123456789abcdef0011223344556677");
        assert_eq!(s["parentSpanId"], "0000000000000001");
        assert_eq!(s["startTimeUnixNano"], "1700000000000000002");
        let mut back = otlp_json(&out).unwrap().spans;
        let mut want: Vec<ReceivedSpan> = found.traces.concat();
        let key = |s: &ReceivedSpan| (s.trace_id, s.span_id);
        back.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(back, want);
    }
}
