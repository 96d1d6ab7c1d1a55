//! One forwarded exchange: read what routing needs from the request, pick a
//! backend, send, and stream the answer back through [`Tracked`], which
//! does the bookkeeping (in-flight counts, duration, router span) exactly
//! once, when the body ends or is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::Instant;

use super::super::openai;
use super::super::trace::RouterSpan;
use super::RouterState;
use super::metrics::ErrorReason;
use crate::trace_id::TraceParent;

/// The W3C trace context header.
const TRACEPARENT: &str = "traceparent";

/// Headers that belong to one connection, not to the exchange (RFC 9110
/// 7.6.1), plus `host`, which names the router.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// The fallback route: every path but `/metrics`.
pub(crate) async fn forward(State(state): State<Arc<RouterState>>, request: Request) -> Response {
    let exchange = Exchange::begin(&state, request).await;
    let exchange = match exchange {
        Ok(exchange) => exchange,
        Err(bad) => return error(StatusCode::BAD_REQUEST, &bad.0),
    };
    exchange.send(state).await
}

/// Why a request could not be forwarded (answered 400).
struct BadRequest(String);

/// A request on its way to a backend.
struct Exchange {
    backend: usize,
    model_label: String,
    outgoing: reqwest::Request,
    span: RouterSpan,
    started: Instant,
}

impl Exchange {
    /// Reads the model (completion endpoints only), chooses the backend and
    /// builds the outgoing request; an unreadable body answers 400 at once.
    async fn begin(state: &RouterState, request: Request) -> Result<Exchange, BadRequest> {
        let started = Instant::now();
        let start = SystemTime::now();
        let (parts, body) = request.into_parts();
        let (body, model) = if is_completion(&parts.method, parts.uri.path()) {
            let bytes = axum::body::to_bytes(body, super::BODY_LIMIT)
                .await
                .map_err(|e| BadRequest(format!("request body: {e}")))?;
            let model = request_model(&bytes);
            let bytes = state.forwarded_body(model.as_deref(), bytes);
            (reqwest::Body::from(bytes), model)
        } else {
            (reqwest::Body::wrap_stream(body.into_data_stream()), None)
        };
        // No await from here to the in-flight count in `send`, so that
        // concurrent choices see each other.
        let backend = state.choose(model.as_deref());
        let incoming = header_str(&parts.headers, TRACEPARENT).and_then(TraceParent::parse);
        let seq = state.seq.fetch_add(1, Ordering::Relaxed);
        // Without tracing the router is invisible: the caller's context goes on.
        let context =
            (state.tracing.is_enabled()).then(|| state.tracing.router_context(seq, incoming));
        let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = format!("{}{path_and_query}", state.backends[backend].url);
        let mut outgoing = reqwest::Request::new(parts.method.clone(), parse_url(&url)?);
        *outgoing.headers_mut() = forwarded_headers(&parts.headers, context.or(incoming));
        if has_body(&parts.method, &parts.headers) {
            *outgoing.body_mut() = Some(body);
        }
        let model_label = state.model_label(model.as_deref());
        let span = RouterSpan {
            context,
            parent_span_id: incoming.map(|p| p.parent_span_id),
            start,
            end: start,
            backend: state.backends[backend].url.clone(),
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            model: model.filter(|m| *m == model_label),
            status: None,
            body_error: false,
        };
        Ok(Exchange {
            backend,
            model_label,
            outgoing,
            span,
            started,
        })
    }

    /// Sends and answers: the backend's status, headers and streamed body,
    /// or 502 when it cannot be reached.
    async fn send(self, state: Arc<RouterState>) -> Response {
        // From here on `done` settles the exchange exactly once, even when
        // the client leaves (this future is dropped) before the answer.
        let mut done = Done::begin(state.clone(), self.backend, self.span, self.started);
        let upstream = match state.client.execute(self.outgoing).await {
            Ok(upstream) => upstream,
            Err(e) => {
                let url = done.backend_url().to_string();
                state.metrics.failed(&url, ErrorReason::Unreachable);
                state.metrics.answered(&url, &self.model_label, 502);
                done.span.status = Some(StatusCode::BAD_GATEWAY.as_u16());
                drop(done);
                return error(
                    StatusCode::BAD_GATEWAY,
                    &format!("backend {url} unreachable: {e}"),
                );
            }
        };
        let status = upstream.status();
        done.span.status = Some(status.as_u16());
        let url = done.backend_url();
        state
            .metrics
            .answered(url, &self.model_label, status.as_u16());
        let headers = response_headers(upstream.headers());
        let body = Tracked {
            inner: Box::pin(upstream.bytes_stream()),
            done: Some(done),
        };
        let mut response = Response::new(Body::from_stream(body));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response
    }
}

/// An exchange counted in flight at its backend; settles it (span, duration,
/// in-flight count) when dropped.
struct Done {
    state: Arc<RouterState>,
    backend: usize,
    span: RouterSpan,
    started: Instant,
}

impl Done {
    fn begin(state: Arc<RouterState>, backend: usize, span: RouterSpan, started: Instant) -> Done {
        let url = &state.backends[backend].url;
        state.backends[backend]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        state.metrics.in_flight(url, 1);
        Done {
            state,
            backend,
            span,
            started,
        }
    }

    fn backend_url(&self) -> &str {
        &self.state.backends[self.backend].url
    }
}

impl Drop for Done {
    /// The span is handed to the exporter before the in-flight gauge drops,
    /// so a gauge at 0 means every finished exchange's span is queued.
    fn drop(&mut self) {
        let state = self.state.clone();
        let backend = &state.backends[self.backend];
        if self.span.body_error {
            state.metrics.failed(&backend.url, ErrorReason::Body);
        }
        let mut span = self.span.clone();
        span.end = SystemTime::now();
        state.tracing.export_router_span(span);
        let seconds = self.started.elapsed().as_secs_f64();
        state.metrics.observe_duration(&backend.url, seconds);
        backend.in_flight.fetch_sub(1, Ordering::Relaxed);
        state.metrics.in_flight(&backend.url, -1);
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The backend's body on its way to the client. Settles the exchange when
/// the body ends or breaks off, or when it is dropped (the client went
/// away, or the server stopped polling after the last byte of a known
/// length).
struct Tracked {
    inner: ByteStream,
    done: Option<Done>,
}

impl Stream for Tracked {
    type Item = reqwest::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(None) => self.done = None,
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut done) = self.done.take() {
                    done.span.body_error = true;
                }
            }
            _ => {}
        }
        polled
    }
}

fn is_completion(method: &Method, path: &str) -> bool {
    method == Method::POST && matches!(path, "/v1/chat/completions" | "/v1/completions")
}

/// The `model` of an OpenAI request body, if it has one.
fn request_model(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Named {
        model: Option<String>,
    }
    serde_json::from_slice::<Named>(body).ok()?.model
}

/// Whether the client sent a body: a GET without one must not become a
/// chunked request.
fn has_body(method: &Method, headers: &HeaderMap) -> bool {
    let declared = headers.contains_key(header::TRANSFER_ENCODING)
        || header_str(headers, header::CONTENT_LENGTH.as_str()).is_some_and(|n| n != "0");
    declared || (method != Method::GET && method != Method::HEAD && method != Method::DELETE)
}

fn forwarded_headers(incoming: &HeaderMap, traceparent: Option<TraceParent>) -> HeaderMap {
    let mut headers = without_hop_by_hop(incoming);
    headers.remove(TRACEPARENT);
    if let Some(context) = traceparent
        && let Ok(value) = HeaderValue::from_str(&context.header())
    {
        headers.insert(TRACEPARENT, value);
    }
    headers
}

fn response_headers(upstream: &HeaderMap) -> HeaderMap {
    without_hop_by_hop(upstream)
}

fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in HOP_BY_HOP {
        kept.remove(name);
    }
    kept
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_url(url: &str) -> Result<reqwest::Url, BadRequest> {
    reqwest::Url::parse(url).map_err(|e| BadRequest(format!("{url}: {e}")))
}

/// An OpenAI-style JSON error, as the simulator sends.
fn error(status: StatusCode, message: &str) -> Response {
    let kind = if status.is_client_error() {
        "invalid_request_error"
    } else {
        "bad_gateway"
    };
    let mut response = Response::new(Body::from(openai::error_body(
        message,
        kind,
        status.as_u16(),
    )));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(header::CONTENT_TYPE, json);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_come_from_the_body_when_there_is_one() {
        assert_eq!(
            request_model(br#"{"model":"m","messages":[]}"#).as_deref(),
            Some("m")
        );
        assert_eq!(request_model(br#"{"messages":[]}"#), None);
        assert_eq!(request_model(b"not json"), None);
    }

    #[test]
    fn hop_by_hop_headers_stay_and_traceparent_is_replaced() {
        let mut incoming = HeaderMap::new();
        incoming.insert("connection", HeaderValue::from_static("keep-alive"));
        incoming.insert("host", HeaderValue::from_static("router"));
        incoming.insert("authorization", HeaderValue::from_static("Bearer x"));
        incoming.insert(TRACEPARENT, HeaderValue::from_static("junk"));
        let context = TraceParent {
            trace_id: 1,
            parent_span_id: 2,
            sampled: true,
        };
        let out = forwarded_headers(&incoming, Some(context));
        assert!(!out.contains_key("connection") && !out.contains_key("host"));
        assert_eq!(out["authorization"], "Bearer x");
        assert_eq!(out[TRACEPARENT], context.header());
        assert!(!forwarded_headers(&incoming, None).contains_key(TRACEPARENT));
    }

    #[test]
    fn bodies_are_sent_only_when_there_is_one() {
        let mut headers = HeaderMap::new();
        assert!(!has_body(&Method::GET, &headers));
        assert!(has_body(&Method::POST, &headers));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        assert!(!has_body(&Method::GET, &headers));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(has_body(&Method::GET, &headers));
    }
}
