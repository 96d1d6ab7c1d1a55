//! Stopping a run from outside: SIGINT (Ctrl-C) and SIGTERM (what
//! Kubernetes sends a pod) both stop the load, and the run writes its
//! partial report (exit 3). A second signal exits at once: what is already
//! on disk — intervals.jsonl and run.log, written a line at a time — stays
//! intact, and nothing half-written is left behind by this process after it.

use std::sync::{Arc, OnceLock};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::exit;

/// Listens for the run's stop signals while it lives.
pub struct StopSignals {
    first: CancellationToken,
    /// The first signal's name, once it came.
    name: Arc<OnceLock<&'static str>>,
    listener: JoinHandle<()>,
}

impl StopSignals {
    /// Starts listening (on the current runtime).
    pub fn listen() -> StopSignals {
        let first = CancellationToken::new();
        let name = Arc::new(OnceLock::new());
        let listener = tokio::spawn(listen(first.clone(), name.clone()));
        StopSignals {
            first,
            name,
            listener,
        }
    }

    /// Completes at the first signal, with its name (`SIGTERM`).
    pub async fn stopped(&self) -> &'static str {
        self.first.cancelled().await;
        self.name.get().copied().unwrap_or("a stop signal")
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

async fn listen(first: CancellationToken, first_name: Arc<OnceLock<&'static str>>) {
    loop {
        let Some(name) = next_signal().await else {
            return;
        };
        if first.is_cancelled() {
            eprintln!(
                "infercheck: second {name}: exiting now; intervals.jsonl and run.log hold what was measured"
            );
            std::process::exit(exit::COULD_NOT_RUN);
        }
        let _ = first_name.set(name);
        first.cancel();
    }
}

/// The next SIGINT or SIGTERM, by name; `None` when they cannot be
/// listened to (the run then only stops by itself).
#[cfg(unix)]
async fn next_signal() -> Option<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).ok()?;
    let mut terminate = signal(SignalKind::terminate()).ok()?;
    tokio::select! {
        _ = interrupt.recv() => Some("SIGINT"),
        _ = terminate.recv() => Some("SIGTERM"),
    }
}

#[cfg(not(unix))]
async fn next_signal() -> Option<&'static str> {
    tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
}
