//! Samplers on the run's clock: the server side seen while the load runs.
//!
//! - `prom`: PromQL query sets against a Prometheus server
//!   (prometheus-http-query), each value with its query latency, gaps
//!   backfilled by range queries after the run, alerts read back;
//! - `scrape`: without Prometheus, the target's `/metrics` (and a DCGM
//!   exporter's) read directly and the same named values derived
//!   (`exposition` parses the text format);
//! - `host`: memory, CPU load, a target process's RSS and CPU from /proc;
//! - `nvml`: GPUs through NVML on a thread of its own.
//!
//! Every sampler ticks on the same interval from the run's start and sends
//! [`Reading`]s to the runner, which keeps them in a [`SampledStore`] beside
//! the client's intervals. A sampler never fails the run: a source that is
//! down yields gaps and errors, counted and reported.

pub mod exposition;
pub mod host;
pub mod nvml;
pub mod prom;
pub mod queries;
pub mod scrape;
pub mod store;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

pub use prom::{FiredAlert, RulesHealth};
pub use queries::{Aggregate, Query, Unit};
pub use store::{Reading, SampledStore, SampledSummary};

use exposition::Exposition;
use host::HostSampler;
use prom::PromSampler;

/// What to sample, resolved from the plan and the command line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingPlan {
    pub interval: Duration,
    /// A Prometheus server's base URL: queries go there.
    pub prometheus: Option<String>,
    /// `/metrics` URLs read directly (used when there is no Prometheus).
    pub scrape: Vec<String>,
    pub queries: Vec<Query>,
    /// Sample this host's memory and CPU.
    pub host: bool,
    /// Also sample this process's RSS and CPU.
    pub target_pid: Option<u32>,
}

/// The running samplers.
#[derive(Debug)]
pub struct Samplers {
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    prom: Option<JoinHandle<PromSampler>>,
    interval: Duration,
}

/// What is read after the load: gaps filled, alerts, rule health.
#[derive(Debug, Default)]
pub struct AfterRun {
    pub backfilled: u64,
    pub alerts: Option<Result<Vec<FiredAlert>, String>>,
    pub rules: Option<Result<RulesHealth, String>>,
}

impl Samplers {
    /// Starts every sampler the plan asks for on the current runtime;
    /// readings are stamped with seconds since `run_start`.
    pub fn start(
        plan: &SamplingPlan,
        run_start: Instant,
        tx: mpsc::UnboundedSender<Reading>,
    ) -> Result<Samplers, String> {
        let cancel = CancellationToken::new();
        let interval = plan.interval.max(Duration::from_millis(10));
        let ticker = Ticker {
            run_start,
            interval,
            cancel: cancel.clone(),
            tx,
        };
        let mut tasks = Vec::new();
        let mut prom = None;
        if let Some(url) = &plan.prometheus {
            let sampler = PromSampler::new(url, plan.queries.clone(), interval)?;
            prom = Some(tokio::spawn(ticker.clone().prometheus(sampler)));
        } else if !plan.scrape.is_empty() {
            let scrape: Vec<Query> = plan
                .queries
                .iter()
                .filter(|q| q.scrape.is_some())
                .cloned()
                .collect();
            tasks.push(tokio::spawn(
                ticker.clone().scrape(plan.scrape.clone(), scrape),
            ));
        }
        if plan.host || plan.target_pid.is_some() {
            tasks.push(tokio::spawn(ticker.host(HostSampler::new(plan.target_pid))));
        }
        Ok(Samplers {
            cancel,
            tasks,
            prom,
            interval,
        })
    }

    /// Stops sampling; with Prometheus, fills gaps in `store` with range
    /// queries over the run's window (Unix seconds) and reads the alerts.
    pub async fn finish(self, store: &mut SampledStore, window: (i64, i64)) -> AfterRun {
        self.cancel.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let Some(prom) = self.prom else {
            return AfterRun::default();
        };
        let Ok(sampler) = prom.await else {
            return AfterRun::default();
        };
        let mut after = AfterRun::default();
        let step = self.interval.as_secs_f64().max(1.0);
        // Only the queries that missed samples are asked again.
        for (i, q) in sampler.queries().iter().enumerate() {
            if !store.has_gaps(&q.name) {
                continue;
            }
            if let Ok(samples) = sampler.range(i, window.0, window.1).await {
                let on_run_clock: Vec<(f64, f64)> = samples
                    .iter()
                    .map(|(unix, v)| (unix - window.0 as f64, q.unit.normalise(*v)))
                    .collect();
                after.backfilled += store.backfill(&q.name, &on_run_clock, step);
            }
        }
        after.alerts = Some(sampler.alerts(window.0, window.1).await);
        after.rules = Some(sampler.rules_health().await);
        after
    }
}

/// The shared clock and channel of the sampler tasks.
#[derive(Clone, Debug)]
struct Ticker {
    run_start: Instant,
    interval: Duration,
    cancel: CancellationToken,
    tx: mpsc::UnboundedSender<Reading>,
}

impl Ticker {
    /// Waits for the next tick; `None` once cancelled.
    async fn tick(&self, clock: &mut tokio::time::Interval) -> Option<f64> {
        tokio::select! {
            at = clock.tick() => Some(at.saturating_duration_since(self.run_start).as_secs_f64()),
            _ = self.cancel.cancelled() => None,
        }
    }

    fn clock(&self) -> tokio::time::Interval {
        let mut clock = tokio::time::interval_at(self.run_start + self.interval, self.interval);
        clock.set_missed_tick_behavior(MissedTickBehavior::Skip);
        clock
    }

    fn send(&self, reading: Reading) {
        // The runner is gone only when the run is over.
        let _ = self.tx.send(reading);
    }

    async fn prometheus(self, mut sampler: PromSampler) -> PromSampler {
        let mut clock = self.clock();
        while let Some(t) = self.tick(&mut clock).await {
            let answers = tokio::select! {
                answers = sampler.sample() => answers,
                _ = self.cancel.cancelled() => break,
            };
            for (q, a) in sampler.queries().iter().zip(answers) {
                self.send(Reading {
                    name: q.name.clone(),
                    unit: q.unit.stored(),
                    t,
                    value: a.value.map(|v| q.unit.normalise(v)),
                    aggregate: q.aggregate,
                    query_latency_ms: Some(a.latency.as_secs_f64() * 1000.0),
                    source: "prometheus",
                });
            }
        }
        sampler
    }

    async fn scrape(self, urls: Vec<String>, queries: Vec<Query>) {
        let client = match reqwest::Client::builder()
            .timeout(self.interval.max(Duration::from_millis(200)))
            .build()
        {
            Ok(client) => client,
            Err(_) => return,
        };
        let mut clock = self.clock();
        let mut before: Option<(Exposition, f64)> = None;
        while let Some(t) = self.tick(&mut clock).await {
            let now = scrape_all(&client, &urls).await;
            for q in &queries {
                let Some(recipe) = &q.scrape else { continue };
                if before.is_none() && recipe.op.needs_previous() {
                    // Rates need two scrapes: the first is not a gap.
                    continue;
                }
                let value = now.as_ref().and_then(|e| {
                    scrape::evaluate(recipe, e, before.as_ref().map(|(b, at)| (b, t - at)))
                });
                self.send(Reading {
                    name: q.name.clone(),
                    unit: q.unit.stored(),
                    t,
                    value: value.map(|v| q.unit.normalise(v)),
                    aggregate: q.aggregate,
                    query_latency_ms: None,
                    source: "scrape",
                });
            }
            if let Some(now) = now {
                before = Some((now, t));
            }
        }
    }

    async fn host(self, mut host: HostSampler) {
        let mut clock = self.clock();
        host.read();
        while let Some(t) = self.tick(&mut clock).await {
            let r = host.read();
            let values = [
                ("cpu_load", "cores", r.cpu_load, Aggregate::Avg),
                ("memory_used", "ratio", r.memory_used, Aggregate::Max),
                ("target_rss", "bytes", r.target_rss_bytes, Aggregate::Max),
                ("target_cpu", "cores", r.target_cpu, Aggregate::Avg),
            ];
            for (name, unit, value, aggregate) in values {
                // Process values only when a process was named.
                if name.starts_with("target_") && host.pid().is_none() {
                    continue;
                }
                self.send(Reading {
                    name: name.into(),
                    unit,
                    t,
                    value,
                    aggregate,
                    query_latency_ms: None,
                    source: "host",
                });
            }
        }
    }
}

/// Every URL's scrape, concatenated; `None` when none answered.
async fn scrape_all(client: &reqwest::Client, urls: &[String]) -> Option<Exposition> {
    let fetches = urls.iter().map(|url| async move {
        let response = client.get(url).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        exposition::parse(&response.text().await.ok()?).ok()
    });
    let mut merged: Option<Exposition> = None;
    for e in futures_util::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
    {
        merged
            .get_or_insert_with(Exposition::default)
            .samples
            .extend(e.samples);
    }
    merged
}
