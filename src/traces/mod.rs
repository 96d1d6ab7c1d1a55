//! Trace coverage (issue 5): every traced request carries a W3C
//! `traceparent` with a fresh trace id; after the load infercheck asks the
//! trace backend which of those traces arrived, with which spans, and
//! reports coverage, missing spans, broken parent links, and the join of
//! each trace with its request.
//!
//! Layout: trace ids and `traceparent` live on the ground floor
//! (`crate::trace_id`); here `parse` (backend
//! answers → spans), `jaeger` (Jaeger v3/v1 and Tempo over HTTP), `lookup`
//! (backends and paced concurrent look-ups), `sample` (reservoir, random
//! choice, Wilson interval), `coverage` (the pure analysis), `export`
//! (infercheck's own client spans over OTLP), `archive` (the spans found,
//! as OTLP JSON for the run folder), and here [`TraceSession`], the run's
//! trace state from the first request to the report section.
//!
//! Invariants:
//! - The hot path only draws an id and cuts a header from a shared buffer;
//!   everything else happens on the runner's side of the event channel or
//!   after the load.
//! - Memory is bounded: traced requests beyond `max_records` are sampled
//!   (reservoir), look-ups beyond `max_lookups` are a uniform sample, and
//!   the embedded receiver has its own caps.
//! - A backend that cannot answer makes a look-up *unknown*, never
//!   *missing*; the report counts unknowns apart.
//! - Ids are compared as numbers (`u128`), whatever the backend prints.

mod archive;
mod coverage;
mod export;
pub mod jaeger;
mod lookup;
pub mod parse;
pub mod sample;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

pub use archive::FoundSpans;
pub use coverage::{
    Coverage, Names, OUTSIDE_SERVER, TraceFacts, TracedRequest, WAITING_TO_SEND, examine,
};
pub use export::{ClientSpans, SERVICE_NAME as CLIENT_SERVICE_NAME, SPAN_NAME as CLIENT_SPAN_NAME};
pub use jaeger::{Api, BackendError, HttpBackend, Lookup, LookupError};
pub use lookup::{Backend, Pace, look_up_all};

use crate::clock::Clock;
use crate::otlp::OtlpReceiver;
use crate::outcome::Outcome;
use crate::plan::{TraceBackend, TracePlan};
use crate::report::TraceReport;
use sample::Reservoir;

/// How often the embedded receiver is asked whether every trace arrived
/// while the grace period runs.
const ARRIVAL_POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot start the embedded OTLP receiver on {addr}: {source}")]
    Receiver { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("cannot export client spans: {0:#}")]
    ClientSpans(anyhow::Error),
}

/// The run's trace state: the receiver (embedded backend), the traced
/// requests remembered so far, and the client span exporter.
#[derive(Debug)]
pub struct TraceSession {
    plan: TracePlan,
    receiver: Option<Arc<OtlpReceiver>>,
    records: Reservoir<TracedRequest>,
    client_spans: Option<ClientSpans>,
}

/// What [`TraceSession::finish`] needs to know of the run.
#[derive(Clone, Copy, Debug)]
pub struct RunFacts<'a> {
    pub phases: &'a [String],
    pub models: &'a [String],
    /// Every span the target will ever send has been delivered (the
    /// embedded simulator flushed its exporter when it stopped): no grace.
    pub spans_flushed: bool,
}

impl TraceSession {
    /// Starts the embedded receiver (embedded backend) and the client span
    /// exporter (when the plan asks for one). Nothing is sent yet.
    pub async fn start(plan: &TracePlan) -> Result<TraceSession, TraceError> {
        let receiver = match plan.backend {
            TraceBackend::Embedded => Some(Arc::new(
                OtlpReceiver::start(plan.otlp_listen)
                    .await
                    .map_err(|source| TraceError::Receiver {
                        addr: plan.otlp_listen,
                        source,
                    })?,
            )),
            TraceBackend::Jaeger | TraceBackend::Tempo => None,
        };
        let client_spans = match (plan.client_spans, &plan.client_spans_endpoint, &receiver) {
            (false, _, _) => None,
            (true, Some(endpoint), _) => Some(endpoint.clone()),
            (true, None, Some(receiver)) => Some(receiver.endpoint()),
            (true, None, None) => None,
        }
        .map(|endpoint| ClientSpans::new(&endpoint).map_err(TraceError::ClientSpans))
        .transpose()?;
        Ok(TraceSession {
            plan: plan.clone(),
            receiver,
            records: Reservoir::new(plan.max_records, SmallRng::from_os_rng()),
            client_spans,
        })
    }

    /// The embedded receiver's OTLP/HTTP base URL, to give the target.
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.receiver.as_ref().map(|r| r.endpoint())
    }

    /// Remembers a finished request if it was traced (and exports its
    /// client span when asked to).
    pub fn record(&mut self, outcome: &Outcome, clock: &Clock) {
        if outcome.trace_id == 0 {
            return;
        }
        if let Some(client_spans) = &self.client_spans {
            client_spans.export(outcome, clock);
        }
        self.records.push(TracedRequest {
            trace_id: outcome.trace_id,
            phase: outcome.slot.phase,
            model: outcome.slot.model,
            error: outcome.error,
            latency: outcome.latency(),
            service_time: outcome.service_time(),
        });
    }

    /// Requests traced so far.
    pub fn traced(&self) -> u64 {
        self.records.seen()
    }

    /// After the load: waits the grace period for late spans, looks the
    /// traces up (a sample beyond `max_lookups`), and analyses them.
    /// `announce` receives one line for the user about what happens next.
    pub async fn finish(self, run: RunFacts<'_>, announce: &dyn Fn(String)) -> TraceReport {
        self.finish_keeping_spans(run, announce).await.0
    }

    /// [`finish`](Self::finish), also handing back the spans of every trace
    /// a look-up found (for the run folder's raw data; bounded by
    /// `max_lookups`, as the look-ups are).
    pub async fn finish_keeping_spans(
        self,
        run: RunFacts<'_>,
        announce: &dyn Fn(String),
    ) -> (TraceReport, FoundSpans) {
        let TraceSession {
            plan,
            receiver,
            records,
            client_spans,
        } = self;
        let mut notes = Vec::new();
        if let Some(exporter) = client_spans {
            match exporter.shutdown().await {
                Ok(()) => notes.push(format!("infercheck exported a `{CLIENT_SPAN_NAME}` client span per traced request to {}; it is not counted as a server span.", exporter.traces_url)),
                Err(e) => notes.push(format!("client spans could not all be delivered: {e:#}")),
            }
        }
        let traced = records.seen();
        let mut rng = SmallRng::from_os_rng();
        let chosen = sample::choose(records.into_items(), plan.max_lookups, &mut rng);
        let sampled = (chosen.len() as u64) < traced;
        let backend = backend(&plan, receiver.clone(), &mut notes).await;
        announce(format!(
            "checking {} trace ids in the {} at {}{}",
            chosen.len(),
            backend.describe(),
            backend.endpoint(),
            if run.spans_flushed {
                String::new()
            } else {
                format!(" (after up to {:?} for late spans)", plan.grace)
            }
        ));
        let waited = wait_for_spans(&plan, &backend, &chosen, run.spans_flushed).await;
        let started = Instant::now();
        let pace = Pace {
            concurrency: plan.concurrency,
            rate_per_s: Some(plan.lookup_rate),
        };
        let results = look_up_all(&backend, chosen, |r| r.trace_id, pace).await;
        let lookup_s = started.elapsed().as_secs_f64();
        let mut coverage = Coverage::new(Names {
            required_spans: &plan.required_spans,
            phases: run.phases,
            models: run.models,
        });
        let mut found = FoundSpans::default();
        for (request, lookup) in results {
            coverage.add(&request, &lookup);
            if let Lookup::Found(spans) = lookup {
                found.push(spans);
            }
        }
        let mut report = coverage.finish(sampled);
        if sampled {
            notes.push(format!(
                "{} of {} traced requests were looked up, a uniform random sample; the 95% interval bounds the run's coverage.",
                report.looked_up, traced
            ));
        }
        if traced == 0 {
            notes.push("no request carried a traceparent, so no trace could be checked.".into());
        }
        report.backend = backend.describe();
        report.endpoint = backend.endpoint();
        report.sample_fraction = plan.sample_fraction;
        report.traced_requests = traced;
        report.grace_s = waited.as_secs_f64();
        report.lookup_s = lookup_s;
        report.receiver_dropped_spans = receiver.as_ref().map(|r| r.dropped_spans());
        report.notes = notes;
        drop(backend);
        if let Some(receiver) = receiver.and_then(|r| Arc::try_unwrap(r).ok()) {
            receiver.stop().await;
        }
        (report, found)
    }
}

/// The backend to ask: the embedded receiver, or an HTTP backend (a
/// Jaeger probed for its API version once).
async fn backend(
    plan: &TracePlan,
    receiver: Option<Arc<OtlpReceiver>>,
    notes: &mut Vec<String>,
) -> Backend {
    if let Some(receiver) = receiver {
        return Backend::Embedded(receiver);
    }
    let api = match plan.backend {
        TraceBackend::Tempo => Api::Tempo,
        _ => Api::JaegerV3,
    };
    let url = plan.url.as_deref().unwrap_or_default();
    let mut http = match HttpBackend::with_access(url, api, plan.lookup_timeout, &plan.access) {
        Ok(http) => http,
        // The plan's URL was checked when it was resolved; a client that
        // cannot be built is a TLS backend failure, reported per look-up.
        Err(e) => {
            notes.push(format!("the trace backend client could not be built: {e}"));
            HttpBackend::new("http://127.0.0.1:9", api, plan.lookup_timeout)
                .expect("a loopback URL is valid")
        }
    };
    if api != Api::Tempo && !http.probe().await {
        notes.push(format!(
            "{url} answered neither /api/v3/services nor /api/services; look-ups went to API v3."
        ));
    }
    Backend::Http(http)
}

/// Waits for late spans: not at all when the target flushed them; with
/// the embedded receiver, until every chosen trace has arrived or the
/// grace period ends; with an HTTP backend, the whole grace period (it
/// cannot be asked cheaply). Returns how long it waited.
async fn wait_for_spans(
    plan: &TracePlan,
    backend: &Backend,
    chosen: &[TracedRequest],
    spans_flushed: bool,
) -> Duration {
    let started = Instant::now();
    if spans_flushed || chosen.is_empty() {
        return Duration::ZERO;
    }
    let deadline = started + plan.grace;
    match backend {
        Backend::Embedded(receiver) => {
            let mut pending: Vec<u128> = chosen.iter().map(|r| r.trace_id).collect();
            loop {
                pending.retain(|id| !receiver.has_trace(*id));
                let now = Instant::now();
                if pending.is_empty() || now >= deadline {
                    break;
                }
                tokio::time::sleep(ARRIVAL_POLL.min(deadline - now)).await;
            }
        }
        Backend::Http(_) => tokio::time::sleep_until(deadline).await,
    }
    started.elapsed()
}
