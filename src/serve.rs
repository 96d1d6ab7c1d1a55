//! A server running in the background on the current tokio runtime, with
//! a shutdown switch and a bounded stop: the one shape shared by the
//! simulator's DCGM exporter and router and the embedded OTLP receiver.
//! Dropping it flips the switch without waiting.

use std::future::{Future, IntoFuture};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Background {
    shutdown: CancellationToken,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Background {
    /// Serves `app` on `listener` until stopped; connections wind down
    /// gracefully.
    pub fn serve(listener: tokio::net::TcpListener, app: axum::Router) -> Background {
        Background::spawn(|shutdown| {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .into_future()
        })
    }

    /// Spawns the future `start` builds; it must end once the token it is
    /// given is cancelled.
    pub fn spawn<F>(start: impl FnOnce(CancellationToken) -> F) -> Background
    where
        F: Future<Output = io::Result<()>> + Send + 'static,
    {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(start(shutdown.clone()));
        Background {
            shutdown,
            task: Some(task),
        }
    }

    /// Stops accepting and waits up to `grace` for the task to end, then
    /// abandons it.
    pub async fn stop(&mut self, grace: Duration) {
        self.shutdown.cancel();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(grace, &mut task).await.is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An address a client can connect to: loopback in place of an
/// unspecified IP (0.0.0.0, ::).
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}
