//! Router mode: N simulated engines (each a full [`SimServer`], i.e. one
//! vLLM replica with its own GPUs) behind a [`RouterServer`], with one DCGM
//! exporter listing every replica's GPUs, as a multi-GPU node would. Traces
//! read router → engine → queue/prefill/decode.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::config::SimConfig;
use super::dcgm::{DcgmExporter, GpuSource};
use super::gpu::GpuSample;
use super::router::RouterServer;
use super::trace::{TraceConfig, Tracing};
use super::{SimServer, hostname};

/// A router in front of several simulators.
#[derive(Debug)]
pub struct SimCluster {
    router: RouterServer,
    tracing: Arc<Tracing>,
    backends: Vec<SimServer>,
    dcgm: Option<DcgmExporter>,
}

impl SimCluster {
    /// Starts `backends` simulators on loopback ports (seeds `seed`,
    /// `seed + 1`, ...) and the router on `listen`. `config.dcgm_listen`
    /// serves the GPUs of all of them; `config.otlp_endpoint` gets every
    /// span, the router's included.
    pub async fn start(
        listen: SocketAddr,
        config: SimConfig,
        backends: usize,
    ) -> io::Result<SimCluster> {
        let mut servers = Vec::with_capacity(backends);
        for i in 0..backends.max(1) {
            let backend = SimConfig {
                seed: config.seed.wrapping_add(i as u64),
                dcgm_listen: None,
                ..config.clone()
            };
            servers.push(SimServer::start(([127, 0, 0, 1], 0).into(), backend).await?);
        }
        let tracing = Arc::new(
            Tracing::new(TraceConfig {
                endpoint: config.otlp_endpoint.clone(),
                service_name: "infercheck-router".into(),
                seed: config.seed,
            })
            .map_err(|e| io::Error::other(format!("OTLP exporter: {e:#}")))?,
        );
        let backends = servers
            .iter()
            .enumerate()
            .map(|(i, s)| (s.base_url(), pod_name(i)))
            .collect();
        let router = RouterServer::start_with_pods(listen, backends, tracing.clone()).await?;
        let dcgm = match config.dcgm_listen {
            Some(addr) => Some(DcgmExporter::start(addr, all_gpus(&servers), hostname()).await?),
            None => None,
        };
        Ok(SimCluster {
            router,
            tracing,
            backends: servers,
            dcgm,
        })
    }

    /// The router's URL: where clients send requests.
    pub fn base_url(&self) -> String {
        self.router.base_url()
    }

    pub fn backends(&self) -> &[SimServer] {
        &self.backends
    }

    pub fn dcgm_url(&self) -> Option<String> {
        self.dcgm.as_ref().map(DcgmExporter::metrics_url)
    }

    /// Sends every finished span (router's and engines') to the endpoint.
    pub async fn flush_spans(&self) -> anyhow::Result<()> {
        self.tracing.flush().await?;
        for backend in &self.backends {
            backend.flush_spans().await?;
        }
        Ok(())
    }

    pub async fn stop(self) {
        self.router.stop().await;
        for backend in self.backends {
            backend.stop().await;
        }
        if let Some(dcgm) = self.dcgm {
            dcgm.stop().await;
        }
        let _ = self.tracing.shutdown().await;
    }
}

/// The pod backend `i` runs in (the router names it, the DCGM exporter
/// attributes its GPUs to it).
fn pod_name(i: usize) -> String {
    format!("engine-{i}")
}

/// Every backend's GPUs, numbered across the node, each attributed to its
/// backend's pod.
fn all_gpus(servers: &[SimServer]) -> GpuSource {
    let shared: Vec<_> = servers.iter().map(SimServer::gpu_handle).collect();
    Arc::new(move || {
        let mut samples: Vec<GpuSample> = Vec::new();
        for (backend, gpus) in shared.iter().enumerate() {
            for mut sample in gpus() {
                sample.identity.pod = Some(pod_name(backend));
                samples.push(sample);
            }
        }
        for (i, sample) in samples.iter_mut().enumerate() {
            sample.identity.index = i as u32;
            sample.identity.device = format!("nvidia{i}");
        }
        samples
    })
}
