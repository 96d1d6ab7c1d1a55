//! The embedded simulator (`infercheck serve-sim`): a vLLM-like,
//! OpenAI-compatible LLM server inside the binary. It is the default target
//! when a plan names none, the fixture of the tests, and a demo.
//!
//! It owns: the OpenAI endpoints (`/v1/chat/completions`, `/v1/completions`,
//! streaming and not), `/health`, `/v1/models`, vLLM-named Prometheus metrics
//! on `/metrics`, a latency model (time to first token, prefill cost per
//! prompt token, per-token gap, slowdown with the number of running
//! requests, a FIFO waiting queue behind `max_num_seqs`), and faults drawn
//! deterministically from a seed (error statuses, truncated streams, SSE
//! error events, a server-wide stall).
//!
//! It must not: depend on the load engine, the plan or the report (they
//! depend on it, through [`SimServer`] and [`SimConfig`] only); log per
//! request; take locks on the request path beyond the admission semaphore;
//! or let timer granularity accumulate (every token is scheduled against an
//! absolute deadline). Output is a function of the seed and the order in
//! which requests arrive, never of timing.
//!
//! Layout: `config` (plain data), `openai` (requests and JSON bodies),
//! `chunks` (SSE templates), `decode` (latency model), `stream` (SSE state
//! machine), `state` (shared counters, admission, stall, stop), `faults`,
//! `tokens` (deterministic text), `metrics` (exposition), `http` (routes).

mod admin;
mod chunks;
mod cluster;
mod config;
mod dcgm;
mod engine;
mod faults;
mod gpu;
mod http;
mod metrics;
mod native;
mod openai;
mod router;
mod state;
mod stream;
mod timeline;
mod tokens;
mod trace;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use crate::trace_id::TraceParent;
pub use cluster::SimCluster;
pub use config::{
    DEFAULT_MODEL, Faults, ModelSpec, ResourceFaults, SimConfig, Spike, Stall, TelemetryFaults,
};
pub use dcgm::{DcgmExporter, GpuSource};
pub use gpu::{GpuIdentity, GpuReading, GpuSample};
pub use metrics::MetricNaming;
pub use router::{Misroute, RouterServer};
pub use state::SimStats;
pub use trace::{SpanDrops, TraceConfig, Tracing};

use state::Shared;

pub(crate) use crate::serve::connectable;

/// How long [`SimServer::stop`] waits for connections to wind down before
/// it abandons the serving task.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running simulator. Dropping it stops it too (without waiting).
#[derive(Debug)]
pub struct SimServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tracing: Arc<Tracing>,
    dcgm: Option<DcgmExporter>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl SimServer {
    /// Binds `listen` (use "127.0.0.1:0" in tests), starts serving on the
    /// current tokio runtime, returns at once. A configured stall is timed
    /// from this call.
    pub async fn start(listen: SocketAddr, config: SimConfig) -> io::Result<SimServer> {
        let started = Instant::now();
        let listener = bind(listen)?;
        let addr = listener.local_addr()?;
        // Without TCP_NODELAY, Nagle holds back small token chunks until the
        // client acknowledges the previous one, distorting inter-token gaps.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let tracing = Arc::new(
            Tracing::new(TraceConfig {
                endpoint: config.otlp_endpoint.clone(),
                service_name: "infercheck-sim".into(),
                seed: config.seed,
            })
            .map_err(|e| io::Error::other(format!("OTLP exporter: {e:#}")))?,
        );
        let dcgm_listen = config.dcgm_listen;
        let shared = Arc::new(Shared::new(config, tracing.clone(), started));
        let dcgm = match dcgm_listen {
            Some(listen) => {
                Some(DcgmExporter::start(listen, gpu_source(&shared), hostname()).await?)
            }
            None => None,
        };
        let app = http::router(shared.clone());
        let shutdown = shared.shutdown.clone().cancelled_owned();
        let serve = axum::serve(listener, app).with_graceful_shutdown(shutdown);
        let task = tokio::spawn(async move { serve.await });
        Ok(SimServer {
            addr,
            shared,
            tracing,
            dcgm,
            task: Some(task),
        })
    }

    /// The simulated GPUs (one per model) and their readings now.
    pub fn gpu_samples(&self) -> Vec<GpuSample> {
        self.shared.gpu_samples()
    }

    /// A reader of this simulator's GPUs, for a node-wide DCGM exporter.
    fn gpu_handle(&self) -> GpuSource {
        gpu_source(&self.shared)
    }

    /// The DCGM exporter's `/metrics` URL, when one was configured.
    pub fn dcgm_url(&self) -> Option<String> {
        self.dcgm.as_ref().map(DcgmExporter::metrics_url)
    }

    /// Sends every span finished so far to the OTLP endpoint.
    pub async fn flush_spans(&self) -> anyhow::Result<()> {
        self.tracing.flush().await
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, with an unspecified bind address (0.0.0.0, ::) replaced
    /// by loopback so that the URL can be connected to.
    pub fn base_url(&self) -> String {
        format!("http://{}", connectable(self.addr))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.snapshot()
    }

    /// Graceful stop: stop accepting, refuse queued requests, end streams at
    /// their next token, and wait (bounded) for the serving task to end.
    pub async fn stop(mut self) {
        self.shared.stop();
        if let Some(dcgm) = self.dcgm.take() {
            dcgm.stop().await;
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(STOP_GRACE, &mut task).await.is_err()
        {
            task.abort();
        }
        // Spans of the requests that just ended go out before returning.
        let _ = self.tracing.shutdown().await;
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

/// Accept queue length asked for (the kernel caps it at somaxconn). A load
/// generator opens hundreds of connections at once; with tokio's default of
/// 1024 some of a 1000-connection burst were dropped and retried a second
/// later, which showed up as a 1 s connect time.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds like `TcpListener::bind`, with a deeper accept queue.
fn bind(listen: SocketAddr) -> io::Result<TcpListener> {
    let socket = match listen {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // Lets `serve-sim` restart on the same port while old connections sit
    // in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The DCGM exporter's view of the simulator's GPUs.
fn gpu_source(shared: &Arc<Shared>) -> GpuSource {
    let shared = shared.clone();
    Arc::new(move || shared.gpu_samples())
}

/// This host's name, for the exporter's `Hostname` label.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// For `infercheck serve-sim`: serve until Ctrl-C (with `backends` > 1,
/// that many engines behind a router), printing where to stderr.
pub async fn serve_until_ctrl_c(
    listen: SocketAddr,
    config: SimConfig,
    backends: usize,
) -> io::Result<()> {
    let dcgm_note = |url: Option<String>| {
        url.map(|u| format!(", DCGM metrics on {u}"))
            .unwrap_or_default()
    };
    if backends > 1 {
        let cluster = SimCluster::start(listen, config, backends).await?;
        eprintln!(
            "serving on {} (router over {backends} engines){}",
            cluster.base_url(),
            dcgm_note(cluster.dcgm_url())
        );
        let signal = tokio::signal::ctrl_c().await;
        cluster.stop().await;
        return signal;
    }
    let server = SimServer::start(listen, config).await?;
    eprintln!(
        "serving on {}{}",
        server.base_url(),
        dcgm_note(server.dcgm_url())
    );
    let signal = tokio::signal::ctrl_c().await;
    server.stop().await;
    signal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        let any: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        assert_eq!(connectable(any).to_string(), "127.0.0.1:8000");
        let any6: SocketAddr = "[::]:8000".parse().unwrap();
        assert_eq!(connectable(any6).to_string(), "[::1]:8000");
        let lo: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(connectable(lo), lo);
    }
}
