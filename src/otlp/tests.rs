//! The receiver over HTTP: encodings, answers and caps.

use std::io::Write;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use super::*;

fn request(trace_ids: &[u128]) -> ExportTraceServiceRequest {
    let spans = trace_ids
        .iter()
        .enumerate()
        .map(|(i, trace_id)| Span {
            trace_id: trace_id.to_be_bytes().to_vec(),
            span_id: (i as u64 + 1).to_be_bytes().to_vec(),
            name: format!("span-{i}"),
            ..Span::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

async fn post(
    receiver: &OtlpReceiver,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let url = format!("{}/v1/traces", receiver.endpoint());
    let mut post = crate::tls::client()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = encoding {
        post = post.header("content-encoding", encoding);
    }
    post.send().await.expect("the receiver answers")
}

async fn start(limits: Limits) -> OtlpReceiver {
    OtlpReceiver::start_with("127.0.0.1:0".parse().unwrap(), limits)
        .await
        .unwrap()
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(body).unwrap();
    gz.finish().unwrap()
}

#[tokio::test]
async fn gzipped_protobuf_is_stored_and_answered_with_an_empty_response() {
    let receiver = start(Limits::default()).await;
    let body = gzip(&request(&[7, 7, 8]).encode_to_vec());
    let response = post(&receiver, "application/x-protobuf", Some("gzip"), body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.partial_success, None);
    assert_eq!(receiver.trace_ids(), vec![7, 8]);
    assert_eq!(receiver.span_count(), 3);
    let seven = receiver.trace(7).unwrap();
    assert_eq!(seven.iter().map(|s| s.span_id).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(seven[0].service_name, "unknown_service");
    receiver.stop().await;
}

#[tokio::test]
async fn otlp_json_fixture_is_stored_under_its_numeric_trace_id() {
    let receiver = start(Limits::default()).await;
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/fixtures/jaeger/otlp-example_trace.json"
    );
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let response = post(&receiver, "application/json", None, body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "{}");
    assert_eq!(receiver.trace_ids(), vec![0x11]);
    assert!(receiver.span_count() > 0);
    receiver.stop().await;
}

#[tokio::test]
async fn caps_and_bad_bodies_are_reported_to_the_sender() {
    let limits = Limits {
        max_traces: 1,
        ..Limits::default()
    };
    let receiver = start(limits).await;
    let body = request(&[1, 2, 0]).encode_to_vec();
    let response = post(&receiver, "application/x-protobuf", None, body).await;
    assert_eq!(response.status(), 200);
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    // Trace 2 refused for the cap, trace 0 rejected as invalid.
    assert_eq!(answer.partial_success.unwrap().rejected_spans, 2);
    assert_eq!(receiver.dropped_spans(), 1);
    assert_eq!(receiver.trace_ids(), vec![1]);

    let text = post(&receiver, "text/plain", None, b"x".to_vec()).await;
    assert_eq!(text.status(), 415);
    let garbage = post(&receiver, "application/json", None, b"{".to_vec()).await;
    assert_eq!(garbage.status(), 400);
    let garbage = post(
        &receiver,
        "application/x-protobuf",
        Some("gzip"),
        b"x".to_vec(),
    )
    .await;
    assert_eq!(garbage.status(), 400);
    receiver.stop().await;
}
