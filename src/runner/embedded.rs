//! The embedded simulator as a run's default target, on its own runtime
//! and threads (named for `cpu`), so the generator's self-check does not
//! count the simulator's work as its own.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::cpu::SIMULATOR_THREAD_PREFIX;
use crate::sim::{SimCluster, SimConfig, SimServer};

pub struct EmbeddedSim {
    pub base_url: String,
    /// Its simulated DCGM exporter's /metrics, when one was configured.
    pub dcgm_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// One engine, or several behind the simulator's router.
enum Serving {
    One(SimServer),
    Routed(SimCluster),
}

impl Serving {
    async fn start(config: SimConfig, backends: usize) -> std::io::Result<Serving> {
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        Ok(if backends > 1 {
            Serving::Routed(SimCluster::start(listen, config, backends).await?)
        } else {
            Serving::One(SimServer::start(listen, config).await?)
        })
    }

    fn urls(&self) -> (String, Option<String>) {
        match self {
            Serving::One(s) => (s.base_url(), s.dcgm_url()),
            Serving::Routed(c) => (c.base_url(), c.dcgm_url()),
        }
    }

    async fn stop(self) {
        match self {
            Serving::One(s) => s.stop().await,
            Serving::Routed(c) => c.stop().await,
        }
    }
}

impl EmbeddedSim {
    /// Starts the simulator: `backends` engines, behind its router when
    /// more than one.
    pub fn start(config: SimConfig, backends: usize) -> std::io::Result<EmbeddedSim> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(SIMULATOR_THREAD_PREFIX.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(SIMULATOR_THREAD_PREFIX)
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(rt) => rt,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                runtime.block_on(async move {
                    match Serving::start(config, backends).await {
                        Ok(serving) => {
                            let _ = ready_tx.send(Ok(serving.urls()));
                            let _ = stop_rx.await;
                            serving.stop().await;
                        }
                        Err(e) => drop(ready_tx.send(Err(e))),
                    }
                });
            })?;
        let (base_url, dcgm_url) = ready_rx.recv().map_err(|_| {
            std::io::Error::other("the simulator thread ended before it started serving")
        })??;
        Ok(EmbeddedSim {
            base_url,
            dcgm_url,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for EmbeddedSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
