//! Asking a backend about many trace ids without flooding it: at most
//! `concurrency` look-ups in flight and at most `rate_per_s` started per
//! second (a ticking interval paces the starts; a slow backend holds the
//! window full and the pace drops with it).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use futures_util::stream;
use tokio::time::MissedTickBehavior;

use super::jaeger::{HttpBackend, Lookup};
use crate::otlp::OtlpReceiver;

/// Where traces are looked up.
#[derive(Clone, Debug)]
pub enum Backend {
    /// infercheck's own OTLP receiver: an in-memory look-up.
    Embedded(Arc<OtlpReceiver>),
    /// A Jaeger query service or a Tempo.
    Http(HttpBackend),
}

impl Backend {
    /// A name for the report: "embedded OTLP receiver", "Jaeger API v3", ...
    pub fn describe(&self) -> String {
        match self {
            Backend::Embedded(_) => "embedded OTLP receiver".into(),
            Backend::Http(http) => http.api().describe().into(),
        }
    }

    /// The receiver's OTLP endpoint or the backend's base URL.
    pub fn endpoint(&self) -> String {
        match self {
            Backend::Embedded(receiver) => receiver.endpoint(),
            Backend::Http(http) => http.base_url().to_owned(),
        }
    }

    pub async fn lookup(&self, trace_id: u128) -> Lookup {
        match self {
            Backend::Embedded(receiver) => match receiver.trace(trace_id) {
                Some(spans) => Lookup::Found(spans),
                None => Lookup::Missing,
            },
            Backend::Http(http) => http.lookup(trace_id).await,
        }
    }
}

/// Bounds on look-ups against an HTTP backend.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pace {
    /// Look-ups in flight at once (at least 1).
    pub concurrency: usize,
    /// Look-ups started per second; `None` for no limit.
    pub rate_per_s: Option<f64>,
}

/// Looks up the trace of every item (`trace_id` reads its id), paced by
/// `pace` (the embedded receiver is asked directly, unpaced). Results come
/// back in completion order.
pub async fn look_up_all<T>(
    backend: &Backend,
    items: Vec<T>,
    trace_id: fn(&T) -> u128,
    pace: Pace,
) -> Vec<(T, Lookup)> {
    if let Backend::Embedded(_) = backend {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let lookup = backend.lookup(trace_id(&item)).await;
            out.push((item, lookup));
        }
        return out;
    }
    let ticker = pace.rate_per_s.filter(|r| *r > 0.0).map(|rate| {
        let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });
    let paced = stream::unfold(
        (items.into_iter(), ticker),
        |(mut items, mut ticker)| async move {
            let item = items.next()?;
            if let Some(ticker) = ticker.as_mut() {
                ticker.tick().await;
            }
            Some((item, (items, ticker)))
        },
    );
    paced
        .map(|item| async move {
            let lookup = backend.lookup(trace_id(&item)).await;
            (item, lookup)
        })
        .buffer_unordered(pace.concurrency.max(1))
        .collect()
        .await
}
