//! The embedded simulator as a run's default target, on its own runtime
//! and threads (named for `cpu`), so the generator's self-check does not
//! count the simulator's work as its own.

use std::net::SocketAddr;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::cpu::SIMULATOR_THREAD_PREFIX;
use crate::sim::{SimConfig, SimServer};

pub struct EmbeddedSim {
    pub base_url: String,
    /// Its simulated DCGM exporter's /metrics, when one was configured.
    pub dcgm_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedSim {
    pub fn start(config: SimConfig) -> std::io::Result<EmbeddedSim> {
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
                    let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
                    match SimServer::start(listen, config).await {
                        Ok(server) => {
                            let _ = ready_tx.send(Ok((server.base_url(), server.dcgm_url())));
                            let _ = stop_rx.await;
                            server.stop().await;
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
