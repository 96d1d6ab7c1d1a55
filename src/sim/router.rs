//! Router mode: an HTTP front end for N simulator (or any OpenAI-compatible)
//! backends, the way a load balancer or an inference gateway sits in front
//! of vLLM replicas. Each request goes to one backend, chosen by the least
//! outstanding requests among the backends that list the request's `model`
//! (all backends when none does), ties broken round robin. The completion
//! endpoints read the request body to learn the model; every other path
//! (`/health`, `/v1/models`, `/tokenize`, ...) is forwarded as it comes.
//!
//! Invariants:
//! - Response bodies stream through as the backend sends them (each SSE
//!   chunk is written when it arrives); nothing is buffered.
//! - Tracing: with an enabled [`Tracing`], every forwarded request gets a
//!   `router` server span (a child of the incoming `traceparent`, or the
//!   root of a fresh trace) and the backend receives a `traceparent` naming
//!   that span; the span is exported when the response body ends. With
//!   tracing disabled the incoming `traceparent` passes through unchanged.
//! - A backend that cannot be reached answers 502 with an OpenAI-style JSON
//!   error and is counted per backend; the router never retries (a retry
//!   would hide the failure the test is looking for).
//! - `/metrics` is the router's own (per-backend counters, in-flight gauges
//!   and a duration histogram); it is never forwarded.
//! - Model lists are read once at start (`GET /v1/models`, 2 s each); a
//!   backend that did not answer serves only requests no listed backend
//!   serves.
//!
//! Layout: this file (server, backend choice), `forward` (one exchange and
//! the streamed body), `metrics` (Prometheus families).

mod forward;
mod metrics;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use std::future::IntoFuture;

use crate::serve::Background;

use super::trace::Tracing;
use super::{bind, connectable};
use metrics::RouterMetrics;

/// How long [`RouterServer::stop`] waits for open exchanges.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Time allowed for a backend's `GET /v1/models` at start.
const MODELS_TIMEOUT: Duration = Duration::from_secs(2);

/// Time allowed to open a connection to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Request bodies the completion endpoints read whole (to find the model);
/// the simulator accepts the same.
const BODY_LIMIT: usize = 64 << 20;

/// Prometheus text exposition format, version 0.0.4.
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A running router. Dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct RouterServer {
    addr: SocketAddr,
    server: Background,
}

impl RouterServer {
    /// Binds `listen`, reads each backend's model list, and starts serving
    /// on the current tokio runtime. `backends` are base URLs
    /// (`http://127.0.0.1:8001`); an empty list or a URL that does not parse
    /// is an `InvalidInput` error. A backend that is down is not: it is
    /// routed to, and answered with 502, until it comes up.
    pub async fn start(
        listen: SocketAddr,
        backends: Vec<String>,
        tracing: Arc<Tracing>,
    ) -> io::Result<RouterServer> {
        RouterServer::start_misrouting(listen, backends, tracing, None).await
    }

    /// [`RouterServer::start`] with a routing fault: every request for
    /// `misroute.from` goes to a backend serving `misroute.to` (a broken
    /// routing table; the per-model cross-check must catch it).
    pub async fn start_misrouting(
        listen: SocketAddr,
        backends: Vec<String>,
        tracing: Arc<Tracing>,
        misroute: Option<Misroute>,
    ) -> io::Result<RouterServer> {
        let mut state = RouterState::new(backends, tracing).await?;
        state.misroute = misroute;
        RouterServer::serve(listen, state)
    }

    /// [`RouterServer::start`] over `(URL, pod)` backends: its /metrics
    /// names each backend's pod (`router_backend_info`), so a DCGM
    /// exporter's pod attribution ties GPUs to backends.
    pub async fn start_with_pods(
        listen: SocketAddr,
        backends: Vec<(String, String)>,
        tracing: Arc<Tracing>,
    ) -> io::Result<RouterServer> {
        let (urls, pods): (Vec<String>, Vec<String>) = backends.into_iter().unzip();
        let state = RouterState::new(urls, tracing).await?;
        for (backend, pod) in state.backends.iter().zip(&pods) {
            state.metrics.name_pod(&backend.url, pod);
        }
        RouterServer::serve(listen, state)
    }

    fn serve(listen: SocketAddr, state: RouterState) -> io::Result<RouterServer> {
        let state = Arc::new(state);
        let listener = bind(listen)?;
        let addr = listener.local_addr()?;
        // As in the simulator: small SSE chunks must not wait for Nagle.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let app = Router::new()
            .route("/metrics", get(prometheus))
            .fallback(forward::forward)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(state);
        let server = Background::spawn(|shutdown| {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .into_future()
        });
        Ok(RouterServer { addr, server })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, loopback in place of an unspecified address.
    pub fn base_url(&self) -> String {
        format!("http://{}", connectable(self.addr))
    }

    /// Stops accepting and waits (bounded) for open exchanges to end.
    pub async fn stop(mut self) {
        self.server.stop(STOP_GRACE).await;
    }
}

/// The routing fault: requests for `from` are sent where `to` is served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Misroute {
    pub from: String,
    pub to: String,
    /// Also rewrites the request's `model` to `to` (an alias table gone
    /// wrong), so the engine serves it and answers under `to`'s name.
    pub rewrite: bool,
}

impl RouterState {
    /// The body to forward for a request naming `model`: rewritten when
    /// the misroute says so, else as it came.
    fn forwarded_body(&self, model: Option<&str>, body: bytes::Bytes) -> bytes::Bytes {
        match (&self.misroute, model) {
            (Some(m), Some(asked)) if m.rewrite && asked == m.from => {
                rewrite_model(&body, &m.to).map_or(body, bytes::Bytes::from)
            }
            _ => body,
        }
    }
}

/// `body` (a JSON object) with its `model` set to `to`.
fn rewrite_model(body: &[u8], to: &str) -> Option<Vec<u8>> {
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.as_object_mut()?.insert("model".into(), to.into());
    serde_json::to_vec(&value).ok()
}

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct RouterState {
    backends: Vec<Backend>,
    misroute: Option<Misroute>,
    client: reqwest::Client,
    tracing: Arc<Tracing>,
    metrics: RouterMetrics,
    /// Counts choices; stamps [`Backend::last_chosen`].
    tick: AtomicU64,
    /// Numbers requests for span ids.
    seq: AtomicU64,
}

#[derive(Debug)]
struct Backend {
    /// Base URL without a trailing slash; also the metrics label.
    url: String,
    /// From `GET /v1/models` at start; empty when it did not answer.
    models: Vec<String>,
    /// Requests sent and not yet finished (Relaxed: a routing hint, read
    /// without ordering against anything else).
    in_flight: AtomicU64,
    /// The router's `tick` when this backend was last chosen (0: never).
    last_chosen: AtomicU64,
}

impl RouterState {
    async fn new(urls: Vec<String>, tracing: Arc<Tracing>) -> io::Result<RouterState> {
        if urls.is_empty() {
            return Err(invalid("the router needs at least one backend"));
        }
        let urls = urls
            .iter()
            .map(|u| backend_url(u))
            .collect::<io::Result<Vec<String>>>()?;
        let client = crate::tls::client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .map_err(io::Error::other)?;
        let lists = urls.iter().map(|url| models(&client, url));
        let lists = futures_util::future::join_all(lists).await;
        let metrics = RouterMetrics::new(&urls).map_err(io::Error::other)?;
        let backends = urls
            .into_iter()
            .zip(lists)
            .map(|(url, models)| Backend {
                url,
                models,
                in_flight: AtomicU64::new(0),
                last_chosen: AtomicU64::new(0),
            })
            .collect();
        Ok(RouterState {
            backends,
            misroute: None,
            client,
            tracing,
            metrics,
            tick: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        })
    }

    /// The backend for a request naming `model`: least outstanding among
    /// those that list it (all when none does), ties in round-robin order.
    fn choose(&self, model: Option<&str>) -> usize {
        let model = match (&self.misroute, model) {
            (Some(m), Some(asked)) if asked == m.from => Some(m.to.as_str()),
            _ => model,
        };
        let serves = |b: &Backend| model.is_some_and(|m| b.models.iter().any(|x| x == m));
        let any_serves = self.backends.iter().any(serves);
        // Ties go to the backend chosen longest ago: round robin within the
        // backends serving this model, however requests for other models
        // interleave.
        let chosen = (0..self.backends.len())
            .filter(|&i| !any_serves || serves(&self.backends[i]))
            .min_by_key(|&i| {
                let backend = &self.backends[i];
                let in_flight = backend.in_flight.load(Ordering::Relaxed);
                (in_flight, backend.last_chosen.load(Ordering::Relaxed))
            })
            .unwrap_or(0);
        let tick = self.tick.fetch_add(1, Ordering::Relaxed) + 1;
        self.backends[chosen]
            .last_chosen
            .store(tick, Ordering::Relaxed);
        chosen
    }

    /// The `model` label: the request's model when a backend lists it,
    /// `other` when not (client text must not grow the label set), empty
    /// when the request names none.
    fn model_label(&self, model: Option<&str>) -> String {
        let Some(model) = model else {
            return String::new();
        };
        let known = self
            .backends
            .iter()
            .any(|b| b.models.iter().any(|m| m == model));
        if known { model } else { "other" }.to_string()
    }
}

/// Validates and normalises a backend base URL.
fn backend_url(url: &str) -> io::Result<String> {
    let parsed = url::Url::parse(url).map_err(|e| invalid(&format!("backend {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid(&format!(
            "backend {url:?}: expected http(s)://HOST[:PORT]"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.to_string())
}

/// A backend's model ids; empty when it does not answer in time.
async fn models(client: &reqwest::Client, base_url: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Model>,
    }
    #[derive(serde::Deserialize)]
    struct Model {
        id: String,
    }
    let request = client
        .get(format!("{base_url}/v1/models"))
        .timeout(MODELS_TIMEOUT);
    let Ok(response) = request.send().await else {
        return Vec::new();
    };
    let Ok(body) = response.bytes().await else {
        return Vec::new();
    };
    serde_json::from_slice::<List>(&body)
        .map(|list| list.data.into_iter().map(|m| m.id).collect())
        .unwrap_or_default()
}

async fn prometheus(State(state): State<Arc<RouterState>>) -> Response {
    let text = state.metrics.render();
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(models: &[&[&str]]) -> RouterState {
        let backends = models
            .iter()
            .enumerate()
            .map(|(i, models)| Backend {
                url: format!("http://b{i}"),
                models: models.iter().map(|m| m.to_string()).collect(),
                in_flight: AtomicU64::new(0),
                last_chosen: AtomicU64::new(0),
            })
            .collect();
        RouterState {
            backends,
            misroute: None,
            client: crate::tls::client(),
            tracing: Arc::new(Tracing::default()),
            metrics: RouterMetrics::new(&[]).unwrap(),
            tick: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        }
    }

    #[test]
    fn idle_backends_take_turns() {
        let state = state(&[&["m"], &["m"], &["m"]]);
        let picks: Vec<usize> = (0..6).map(|_| state.choose(Some("m"))).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        // Turns go round the backends serving the model, not all of them.
        let state = super::tests::state(&[&["a"], &["a"], &["b"]]);
        let picks: Vec<usize> = (0..6).map(|_| state.choose(Some("a"))).collect();
        assert_eq!(picks, [0, 1, 0, 1, 0, 1]);
        // ... also when requests for another model come in between.
        let picks: Vec<usize> = (0..6)
            .map(|n| state.choose(Some(if n % 2 == 0 { "a" } else { "b" })))
            .collect();
        assert_eq!(picks, [0, 2, 1, 2, 0, 2]);
    }

    #[test]
    fn least_outstanding_among_those_serving_the_model() {
        let state = state(&[&["a"], &["a", "b"], &["b"], &[]]);
        state.backends[1].in_flight.store(3, Ordering::Relaxed);
        // Only backend 0 and 1 serve "a"; 0 is idle.
        assert!((0..4).all(|_| state.choose(Some("a")) == 0));
        // "b": backend 2 is idle, 1 is busy.
        assert!((0..4).all(|_| state.choose(Some("b")) == 2));
        // Unknown or missing model: every backend, least outstanding.
        let picks: Vec<usize> = (0..4).map(|_| state.choose(Some("zz"))).collect();
        let mut broken = self::state(&[&["a"], &["b"]]);
        broken.misroute = Some(Misroute {
            from: "b".into(),
            to: "a".into(),
            rewrite: true,
        });
        let body = bytes::Bytes::from_static(br#"{"model":"b","max_tokens":3}"#);
        assert_eq!(
            &broken.forwarded_body(Some("b"), body.clone())[..],
            br#"{"max_tokens":3,"model":"a"}"#
        );
        assert_eq!(broken.forwarded_body(Some("a"), body.clone()), body);
        assert!((0..4).all(|_| broken.choose(Some("b")) == 0));
        assert!(picks.iter().all(|&i| i != 1), "{picks:?}");
        assert!(picks.contains(&3) && picks.contains(&0), "{picks:?}");
        assert_eq!(state.model_label(Some("b")), "b");
        assert_eq!(state.model_label(Some("zz")), "other");
        assert_eq!(state.model_label(None), "");
    }

    #[test]
    fn backend_urls_are_checked_and_normalised() {
        assert_eq!(
            backend_url("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        for bad in ["", "127.0.0.1:8000", "ftp://x", "http://"] {
            assert!(backend_url(bad).is_err(), "{bad:?}");
        }
    }
}
