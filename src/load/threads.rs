//! The engine's worker threads: one current-thread tokio runtime per core
//! (oha's fast path). A worker and the connection task it spawns share a
//! thread, so a request costs no work-stealing and no cross-thread
//! wake-up; the aggregator loop and dispatchers stay on the main runtime.

use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

pub struct WorkerThreads {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl WorkerThreads {
    /// Starts `count` threads (at least one), each driving its own runtime.
    pub fn start(count: usize) -> std::io::Result<WorkerThreads> {
        let mut pool = WorkerThreads {
            handles: Vec::new(),
            stops: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            pool.handles.push(runtime.handle().clone());
            pool.stops.push(stop_tx);
            let thread = std::thread::Builder::new()
                .name(format!("infercheck-w{i}"))
                .spawn(move || {
                    // Drives every task spawned onto this runtime until stopped;
                    // tasks still alive then are dropped with the runtime.
                    let _ = runtime.block_on(stop_rx);
                })?;
            pool.threads.push(thread);
        }
        Ok(pool)
    }

    /// One thread per available core.
    pub fn per_core() -> std::io::Result<WorkerThreads> {
        Self::start(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The runtime for worker number `worker`, round-robin.
    pub fn handle(&self, worker: usize) -> &Handle {
        &self.handles[worker % self.handles.len()]
    }
}

impl Drop for WorkerThreads {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
