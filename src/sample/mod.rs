//! Samplers on the run's clock: the server side seen while the load runs.
//!
//! Every server-side source is a [`Source`] — one seam, one contract:
//!
//! - `prom`: PromQL query sets against a Prometheus server
//!   (prometheus-http-query), each value with its query latency, gaps
//!   backfilled by range queries after the run, alerts read back;
//! - `scrape`: without Prometheus, the target's `/metrics` (and a DCGM
//!   exporter's) read directly and the same named values derived
//!   (`exposition` parses the text format);
//! - `host`: memory, CPU load, a target process's RSS and CPU from /proc;
//! - `nvml`: GPUs through NVML on a thread of its own, under the names the
//!   DCGM queries use (`gpu_util`, `vram_used`, ...).
//!
//! Beside its readings, a source may hand its raw data to a
//! [`raw::RawSink`] as it reads it (`/metrics` bodies, a Prometheus range
//! export of every sampled query), for the run folder to keep.
//!
//! [`Samplers`] starts the sources a [`SamplingPlan`] asks for, ticks each
//! on the same interval from the run's start in a task of its own (one
//! loop for every source), folds their [`Reading`]s into a
//! [`SampledStore`], and after the load turns the store into the report's
//! [`ObservedReport`]. A source never fails the run: one that is down
//! yields gaps and errors, counted and reported.

pub mod engine;
pub mod exposition;
pub mod host;
pub mod identity;
pub mod nvml;
pub mod prom;
pub mod queries;
pub mod raw;
pub mod scrape;
pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub use queries::{Query, Unit};
pub use store::{Reading, SampledStore};

use crate::report::{
    AlertsReport, BackendValues, FiredAlert, ModelCounter, ObservedReport, RulesHealth,
    RunHistogram,
};
use crate::stats::Series;

/// A server-side source of named values on the run clock.
///
/// The contract every implementation keeps:
/// - [`sample`](Source::sample) is called once per tick with the tick's
///   run-clock second `t`. It returns one [`Reading`] per value it knows,
///   stamped `t` (or the instant the source itself measured, as NVML's
///   thread does); a value it could not read is a gap (`value: None`),
///   never a zero. It must not block the runtime, and should answer
///   within one interval (a late answer delays only this source's next
///   tick).
/// - [`names`](Source::names) lists the values it yields, so that a
///   source started earlier replaces another's values of the same name
///   (NVML's `gpu_util` over the DCGM query's).
/// - [`finish`](Source::finish) runs once after the load: late readings,
///   gaps it can still fill, alerts. It may add to the store directly.
/// - Nothing a source does fails the run.
pub trait Source: Send + 'static {
    /// The report's "Sampled from" entry: "prometheus http://…", "host".
    fn describe(&self) -> String;

    /// The names of the values this source yields.
    fn names(&self) -> Vec<String>;

    /// Called once when the run clock starts (`run_start` is its zero),
    /// before the first tick. A source that keeps time of its own (NVML's
    /// thread) lines it up here.
    fn begin(&mut self, _run_start: Instant) {}

    /// Before the run clock starts (no request sent yet): readings stamped
    /// run-clock second 0, the baseline counters' increases are measured
    /// from. A source that reads no counters has none.
    fn baseline(&mut self) -> BoxFuture<'_, Vec<Reading>> {
        Box::pin(async { Vec::new() })
    }

    /// One tick at run-clock second `t`.
    fn sample(&mut self, t: f64) -> BoxFuture<'_, Vec<Reading>>;

    /// Hands what it reads, as read, to `sink` from now on (the run
    /// folder's raw data). A source with nothing raw to give ignores it.
    fn keep_raw(&mut self, _sink: std::sync::Arc<dyn raw::RawSink>) {}

    /// After the load, over the run's window (Unix seconds).
    fn finish<'a>(
        &'a mut self,
        _window: (i64, i64),
        _store: &'a mut SampledStore,
    ) -> BoxFuture<'a, AfterRun> {
        Box::pin(async { AfterRun::default() })
    }
}

/// What the sources add after the load.
#[derive(Debug, Default)]
pub struct AfterRun {
    /// Gaps filled in the store.
    pub backfilled: u64,
    pub alerts: Option<Result<Vec<FiredAlert>, String>>,
    pub rules: Option<Result<RulesHealth, String>>,
    pub histograms: Vec<RunHistogram>,
    pub by_model: Vec<ModelCounter>,
    /// Each engine behind a router, read on its own.
    pub backends: Vec<BackendValues>,
}

impl AfterRun {
    fn merge(&mut self, other: AfterRun) {
        self.backfilled += other.backfilled;
        self.alerts = self.alerts.take().or(other.alerts);
        self.rules = self.rules.take().or(other.rules);
        self.histograms.extend(other.histograms);
        self.by_model.extend(other.by_model);
        self.backends.extend(other.backends);
    }
}

/// What to sample, resolved from the plan and the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingPlan {
    pub interval: Duration,
    /// A Prometheus server's base URL: queries go there.
    pub prometheus: Option<String>,
    /// How Prometheus is reached (credential, TLS).
    pub prometheus_access: crate::tls::Access,
    /// `/metrics` URLs read directly (used when there is no Prometheus).
    pub scrape: Vec<String>,
    pub queries: Vec<Query>,
    /// Sample this host's memory and CPU (when the target runs here).
    pub host: bool,
    /// Why the target runs on this host (`host::target_on_this_host`);
    /// `None`: it may run elsewhere, and this host's /proc is not its.
    pub target_here: Option<String>,
    /// Also sample this process's RSS and CPU (and its GPU memory).
    pub target_pid: Option<u32>,
    /// Read GPUs through NVML; `None`: do not.
    pub nvml: Option<nvml::NvmlOptions>,
    /// Of `scrape`, the engines behind a router: each is also summarised
    /// on its own.
    pub backends: Vec<BackendTarget>,
}

/// An engine behind a router, to be summarised on its own.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendTarget {
    /// Its `/metrics` URL (one of `SamplingPlan::scrape`).
    pub metrics_url: String,
    /// The pod a DCGM exporter attributes its GPUs to (`engine::gpu_pod`).
    pub pod: Option<String>,
}

/// The running sources and what they delivered so far.
pub struct Samplers {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<Box<dyn Source>>>,
    rx: mpsc::UnboundedReceiver<Reading>,
    store: SampledStore,
    interval: Duration,
    sources: Vec<String>,
    gpu_line: Option<String>,
    errors: Vec<String>,
    identity: identity::Identity,
}

/// Sources built and started but not yet ticking: what
/// [`Samplers::prepare`] does before the run clock starts, so that their
/// start-up (an NVML init can take seconds, an HTTP client loads the
/// system's root certificates) never delays the first requests.
pub struct Prepared {
    sources: Vec<Box<dyn Source>>,
    interval: Duration,
    gpu_line: Option<String>,
    errors: Vec<String>,
    baseline: Vec<Reading>,
    identity: identity::Identity,
}

impl Prepared {
    /// Every source's baseline, read now, before any request is sent.
    pub async fn take_baseline(&mut self) {
        for source in &mut self.sources {
            let readings = source.baseline().await;
            self.baseline.extend(readings);
        }
        self.identity.look_up().await;
    }

    /// Sources that could not start, for the caller to print.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Every source hands what it reads, as read, to `sink` (call before
    /// [`take_baseline`](Self::take_baseline): the baseline scrape is
    /// raw data too).
    pub fn keep_raw(&mut self, sink: std::sync::Arc<dyn raw::RawSink>) {
        for source in &mut self.sources {
            source.keep_raw(sink.clone());
        }
    }

    /// Starts ticking every source from `run_start` (the run clock's zero)
    /// on the current runtime.
    pub fn start(mut self, run_start: Instant) -> Samplers {
        let (tx, rx) = mpsc::unbounded_channel();
        let ticker = Ticker {
            run_start,
            interval: self.interval,
            cancel: CancellationToken::new(),
            tx,
        };
        for source in &mut self.sources {
            source.begin(run_start);
        }
        let mut store = SampledStore::default();
        for reading in self.baseline {
            store.add(reading);
        }
        Samplers {
            sources: self.sources.iter().map(|s| s.describe()).collect(),
            tasks: self
                .sources
                .into_iter()
                .map(|s| tokio::spawn(ticker.clone().drive(s)))
                .collect(),
            cancel: ticker.cancel,
            rx,
            store,
            interval: self.interval,
            gpu_line: self.gpu_line,
            errors: self.errors,
            identity: self.identity,
        }
    }
}

impl Samplers {
    /// Builds and starts every source the plan asks for (see [`Prepared`]).
    /// A source that cannot start is an entry of `errors`, not a failure.
    pub fn prepare(plan: &SamplingPlan) -> Prepared {
        let interval = plan.interval.max(Duration::from_millis(10));
        let mut errors = Vec::new();
        let (gpu, gpu_line) = nvml::NvmlSource::start(plan.nvml.as_ref(), plan.target_pid);
        let host = (plan.host && plan.target_here.is_some()) || plan.target_pid.is_some();
        let identity = identity::Identity::planned(plan, gpu.as_ref(), host);
        let mut sources: Vec<Box<dyn Source>> = gpu.into_iter().map(boxed).collect();
        // Values an earlier source yields are not queried again.
        let taken: Vec<String> = sources.iter().flat_map(|s| s.names()).collect();
        let queries: Vec<Query> = plan
            .queries
            .iter()
            .filter(|q| !taken.contains(&q.name))
            .cloned()
            .collect();
        if let Some(url) = &plan.prometheus {
            if !plan.backends.is_empty() {
                // Prometheus gives the run's values; each engine's own
                // come from its /metrics.
                let urls = plan
                    .backends
                    .iter()
                    .map(|b| b.metrics_url.clone())
                    .collect();
                sources.push(Box::new(
                    scrape::ScrapeSource::new(urls, queries.clone(), interval)
                        .with_backends(&plan.backends)
                        .per_backend_only(),
                ));
            }
            match prom::PromSource::new(url, queries, interval, &plan.prometheus_access) {
                Ok(source) => sources.push(Box::new(source)),
                Err(e) => errors.push(format!("samplers: {e}")),
            }
        } else if !plan.scrape.is_empty() {
            sources.push(Box::new(
                scrape::ScrapeSource::new(plan.scrape.clone(), queries, interval)
                    .with_backends(&plan.backends),
            ));
        }
        if host {
            sources.push(Box::new(host::HostSource::new(plan.target_pid)));
        }
        Prepared {
            sources,
            interval,
            gpu_line,
            errors,
            baseline: Vec::new(),
            identity,
        }
    }

    /// [`Samplers::prepare`], then [`Prepared::start`] at `run_start`.
    pub fn start(plan: &SamplingPlan, run_start: Instant) -> Samplers {
        Samplers::prepare(plan).start(run_start)
    }

    /// Sources that could not start, for the caller to print.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// Folds every reading delivered so far into the store.
    pub fn drain(&mut self) {
        while let Ok(reading) = self.rx.try_recv() {
            self.store.add(reading);
        }
    }

    /// The latest value of each name at run-clock second `t` (within one
    /// and a half intervals; older is a gap), for `intervals.jsonl`.
    pub fn latest(&mut self, t: f64) -> BTreeMap<String, Option<f64>> {
        self.drain();
        self.store.latest(t, self.interval.as_secs_f64() * 1.5)
    }

    /// The newest sample of `name`: (run-clock second, value).
    pub fn newest(&mut self, name: &str) -> Option<(f64, f64)> {
        self.drain();
        self.store.newest(name)
    }

    /// Stops every source, lets each finish over the run's window (Unix
    /// seconds), and returns the report's section and the series.
    pub async fn finish(mut self, window: (i64, i64)) -> (ObservedReport, Vec<Series>) {
        self.cancel.cancel();
        let mut after = AfterRun::default();
        for task in std::mem::take(&mut self.tasks) {
            let Ok(mut source) = task.await else {
                continue;
            };
            self.drain();
            after.merge(source.finish(window, &mut self.store).await);
        }
        self.drain();
        let mut report = observed_report(
            &self.store,
            self.sources.clone(),
            self.interval,
            after,
            self.gpu_line.clone(),
        );
        std::mem::take(&mut self.identity).fill(&mut report);
        (report, self.store.series())
    }
}

/// The report's server-side section from what the sources delivered:
/// their names, the store's summaries and query figures, and what they
/// added after the load. Pure.
pub fn observed_report(
    store: &SampledStore,
    sources: Vec<String>,
    interval: Duration,
    after: AfterRun,
    gpu_line: Option<String>,
) -> ObservedReport {
    let (queries, failed_queries) = store.query_counts();
    let alerts = after.alerts.map(|fired| match fired {
        Ok(fired) => AlertsReport {
            began_during_run: fired.iter().filter(|a| a.began_during_run).count(),
            fired,
            rules: after.rules.and_then(Result::ok),
            error: None,
        },
        Err(e) => AlertsReport {
            error: Some(e),
            ..AlertsReport::default()
        },
    });
    ObservedReport {
        sources,
        interval_s: interval.as_secs_f64(),
        values: store.summaries(),
        query_latency_ms: store.query_latency(),
        queries,
        failed_queries,
        backfilled: after.backfilled,
        alerts,
        gpu: gpu_line,
        engine: None,
        drain: None,
        histograms: after.histograms,
        by_model: after.by_model,
        backends: Vec::new(),
        backends_from: None,
        per_backend: after.backends,
        machines: Vec::new(),
        gpu_models: Vec::new(),
    }
}

fn boxed(source: impl Source) -> Box<dyn Source> {
    Box::new(source)
}

/// The shared clock and channel of the source tasks.
#[derive(Clone, Debug)]
struct Ticker {
    run_start: Instant,
    interval: Duration,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<Reading>,
}

impl Ticker {
    /// The one loop every source runs in: a tick every interval from the
    /// run's start (ticks a slow source missed are skipped, not bunched),
    /// until cancelled; then the source goes back for its `finish`. (The
    /// values at second 0 are the baseline, read before the run.)
    async fn drive(self, mut source: Box<dyn Source>) -> Box<dyn Source> {
        let mut clock = tokio::time::interval_at(self.run_start + self.interval, self.interval);
        clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let t = tokio::select! {
                at = clock.tick() => at.saturating_duration_since(self.run_start).as_secs_f64(),
                _ = self.cancel.cancelled() => break,
            };
            let readings = tokio::select! {
                readings = source.sample(t) => readings,
                _ = self.cancel.cancelled() => break,
            };
            for reading in readings {
                // The receiver is gone only when the run is over.
                let _ = self.tx.send(reading);
            }
        }
        source
    }
}
