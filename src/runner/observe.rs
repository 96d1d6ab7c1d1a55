//! The runner's side of sampling: decides where the run's server-side
//! values come from (the plan's `[observe]`, else the target's `/metrics`
//! and the embedded simulator's DCGM exporter), starts `sample::Samplers`
//! with the load (handing their raw data to the run folder when asked),
//! and serves infercheck's own `/metrics`. The sources, the
//! store and the report's section live in `sample`; nothing here fails a
//! run: a source that is down is a gap and a line in the report.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::time::Instant;

use super::own_metrics::OwnMetrics;
use crate::plan::Plan;
use crate::plan::observe::EngineChoice;
use crate::report::{DrainReport, EngineReport, IntervalSummary, ObservedReport};
use crate::sample::engine::{self, Engine};
use crate::sample::exposition::Exposition;
use crate::sample::nvml::NvmlOptions;
use crate::sample::prom;
use crate::sample::raw::RawSink;
use crate::sample::{BackendTarget, Prepared, Samplers, SamplingPlan};
use crate::stats::Series;

/// Sampling before the run clock starts: sources built, NVML up,
/// infercheck's own `/metrics` listening.
pub struct Ready {
    prepared: Prepared,
    own: Option<Arc<OwnMetrics>>,
    errors: Vec<String>,
    engine: Option<EngineReport>,
    interval: std::time::Duration,
    backends: Option<(Vec<String>, String)>,
}

/// What the server held, as the drain window sees it.
enum Holding {
    /// Neither value has a sample at all.
    NotExported,
    /// Both (or the one exported) sampled since the load ended: (oldest
    /// sample's second, running + waiting).
    Fresh(f64, f64),
    /// Not sampled again since the load ended.
    Stale,
}

/// The engine profiles' names for what the server holds.
const RUNNING: &str = "running";
const WAITING: &str = "queue_depth";

/// Sampling during one run.
pub struct Observation {
    samplers: Samplers,
    interval: std::time::Duration,
    own: Option<Arc<OwnMetrics>>,
    engine: Option<EngineReport>,
    backends: Option<(Vec<String>, String)>,
}

fn metrics_url(base_url: &str) -> String {
    format!("{}/metrics", base_url.trim_end_matches('/'))
}

/// The engines behind the target: the plan's list, or the backends the
/// target's own /metrics (`scrape`, read once before the run) names when
/// it is a router; with the line the report gives them.
async fn discover_backends(
    plan: &Plan,
    url: &str,
    scrape: Option<&Result<Exposition, String>>,
) -> (Vec<String>, Option<String>) {
    if !plan.observe.backends.is_empty() {
        return (
            plan.observe.backends.clone(),
            Some("listed by the plan".into()),
        );
    }
    if let (Some(job), Some(prometheus)) = (&plan.observe.backends_job, &plan.observe.prometheus) {
        return match prom::job_instances(prometheus, job, &plan.observe.access).await {
            Ok(found) => {
                let how =
                    format!("the instances of job {job} at {prometheus} (up{{job=\"{job}\"}})");
                (found, Some(how))
            }
            Err(e) => (Vec::new(), Some(format!("none: {e}"))),
        };
    }
    let Some(Ok(scrape)) = scrape else {
        return (Vec::new(), None);
    };
    let found = engine::router_backends(scrape);
    let how = (!found.is_empty()).then(|| {
        let (family, label) = engine::BACKEND_LABELS[0];
        format!("named by the router at {url} ({family}{{{label}}})")
    });
    (found, how)
}

/// The engine profile the run reads the server with: the plan's, or the
/// one whose families the engine's `/metrics` (`url`, read once before the
/// run) has, else vLLM's names, saying why.
fn choose_engine(
    plan: &Plan,
    url: &str,
    scrape: Option<&Result<Exposition, String>>,
) -> Option<(Engine, EngineReport)> {
    let report = |engine: Engine, version: Option<String>, chosen: String| {
        let r = EngineReport {
            name: engine.name().to_owned(),
            label: engine.label().to_owned(),
            version,
            chosen,
        };
        Some((engine, r))
    };
    match (plan.observe.engine?, scrape) {
        (EngineChoice::Named(engine), _) => report(engine, None, "named by the plan".to_owned()),
        (EngineChoice::Auto, Some(Ok(scrape))) => match engine::detect(scrape) {
            Some(found) => report(
                found.engine,
                found.version,
                format!("detected at {url}: {}", found.evidence),
            ),
            None => report(
                Engine::Vllm,
                None,
                format!("assumed: {url} has no engine's families"),
            ),
        },
        (EngineChoice::Auto, Some(Err(e))) => {
            report(Engine::Vllm, None, format!("assumed: {url}: {e}"))
        }
        (EngineChoice::Auto, None) => report(Engine::Vllm, None, "assumed".to_owned()),
    }
}

/// The target's /metrics and, behind a router, its first engine's: each
/// read once before the run; then the backends and the engine profile.
async fn topology(plan: &Plan, base_url: &str) -> Topology {
    let target_url = metrics_url(base_url);
    let target = match plan.observe.engine {
        Some(EngineChoice::Auto) => Some(engine::fetch(&target_url).await),
        _ => None,
    };
    let (backends, from) = discover_backends(plan, &target_url, target.as_ref()).await;
    let engine_base = backends.first().map_or(base_url, String::as_str);
    let mut engine = match (backends.first(), &plan.observe.engine) {
        (Some(backend), Some(EngineChoice::Auto)) => {
            let url = metrics_url(backend);
            let scrape = engine::fetch(&url).await;
            choose_engine(plan, &url, Some(&scrape))
        }
        _ => choose_engine(plan, &target_url, target.as_ref()),
    };
    if let Some((found, report)) = engine.as_mut().filter(|(_, r)| r.version.is_none()) {
        // Not on /metrics: ask the engine's API (vLLM's /version, ...).
        report.version = engine::fetch_version(engine_base, *found).await.ok();
    }
    let pods = match &target {
        Some(Ok(scrape)) => engine::backend_pods(scrape),
        _ => Default::default(),
    };
    let targets = backends
        .iter()
        .map(|b| BackendTarget {
            metrics_url: metrics_url(b),
            pod: engine::gpu_pod(b, pods.get(b)),
        })
        .collect();
    Topology {
        backends,
        targets,
        from,
        engine,
    }
}

/// What [`topology`] found.
struct Topology {
    /// The engines behind the target (base URLs), and each as sampled.
    backends: Vec<String>,
    targets: Vec<BackendTarget>,
    /// Where the list came from.
    from: Option<String>,
    engine: Option<(Engine, EngineReport)>,
}

/// Where the run's server-side values come from.
pub struct Sources<'a> {
    pub base_url: &'a str,
    /// The embedded simulator's DCGM exporter, when it runs one.
    pub dcgm_url: Option<&'a str>,
}

/// The plan's `[observe]` as the samplers take it. Without a Prometheus
/// or scrape URLs, the target's own `/metrics` is read (and the embedded
/// simulator's DCGM exporter beside it); without a Prometheus, the
/// engines behind a router are read too, whatever `scrape` lists.
fn sampling_plan(
    plan: &Plan,
    sources: &Sources<'_>,
    engine: Option<Engine>,
    backends: &[BackendTarget],
) -> SamplingPlan {
    let observe = &plan.observe;
    let mut scrape = observe.scrape.clone();
    if scrape.is_empty() && observe.prometheus.is_none() {
        scrape.push(metrics_url(sources.base_url));
        scrape.extend(sources.dcgm_url.map(str::to_string));
    }
    if observe.prometheus.is_none() {
        for backend in backends {
            if !scrape.contains(&backend.metrics_url) {
                scrape.push(backend.metrics_url.clone());
            }
        }
    }
    SamplingPlan {
        interval: observe.interval,
        prometheus: observe.prometheus.clone(),
        prometheus_access: observe.access.clone(),
        scrape,
        queries: observe.queries_for(engine),
        host: observe.host,
        target_here: crate::sample::host::target_on_this_host(sources.base_url, observe.target_pid),
        target_pid: observe.target_pid,
        nvml: observe.nvml.then(|| NvmlOptions {
            lib_path: observe.nvml_lib.clone(),
            interval: observe.interval,
        }),
        backends: backends.to_vec(),
    }
}

impl Ready {
    /// Builds the sources and starts what needs starting, before the run
    /// clock does: their start-up cost must not delay the first requests.
    /// The sources hand what they read, as read, to `raw` (the run folder's raw data: `/metrics` bodies from the
    /// baseline scrape on, the Prometheus export after the load).
    pub async fn prepare_keeping(
        plan: &Plan,
        sources: Sources<'_>,
        raw: Option<Arc<dyn RawSink>>,
    ) -> Ready {
        let Topology {
            backends,
            targets,
            from: backends_from,
            engine: chosen,
        } = topology(plan, sources.base_url).await;
        let (engine, report) = chosen.unzip();
        let mut prepared = Samplers::prepare(&sampling_plan(plan, &sources, engine, &targets));
        if let Some(raw) = raw {
            prepared.keep_raw(raw);
        }
        prepared.take_baseline().await;
        let mut errors = prepared.errors().to_vec();
        let own = match plan.observe.metrics_listen {
            Some(addr) => match OwnMetrics::start(addr).await {
                Ok(m) => Some(m),
                Err(e) => {
                    errors.push(format!("cannot serve /metrics on {addr}: {e}"));
                    None
                }
            },
            None => None,
        };
        Ready {
            prepared,
            own,
            errors,
            engine: report,
            interval: plan.observe.interval,
            backends: backends_from.map(|how| (backends, how)),
        }
    }

    /// Where infercheck's own /metrics is served, if it is.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.own.as_ref().map(|m| m.addr())
    }

    /// Problems starting the samplers, for the caller to print.
    pub fn startup_errors(&self) -> &[String] {
        &self.errors
    }

    /// Starts sampling at `run_start` (the run clock's zero).
    pub fn start(self, run_start: Instant) -> Observation {
        Observation {
            samplers: self.prepared.start(run_start),
            interval: self.interval,
            own: self.own,
            engine: self.engine,
            backends: self.backends,
        }
    }
}

impl Observation {
    /// What infercheck's own /metrics shows of an event: a finished
    /// request, or the phase now running.
    pub fn on_event(&self, event: &crate::load::Event, plan: &crate::plan::Plan) {
        let Some(own) = &self.own else { return };
        match event {
            crate::load::Event::Outcome(outcome) => own.record(outcome),
            crate::load::Event::StepStarted { phase, step: 0, .. } => {
                if let Some(p) = plan.phases.get(*phase as usize) {
                    own.phase(&p.name);
                }
            }
            _ => {}
        }
    }

    /// The latest sampled values for the interval line ending at `t`.
    pub fn interval(&mut self, interval: &IntervalSummary) -> BTreeMap<String, Option<f64>> {
        if let Some(own) = &self.own {
            own.interval(interval);
        }
        self.samplers.latest(interval.t)
    }

    /// The drain window: samples on after the load stopped at run-clock
    /// second `load_end_s` until the server holds no request or `timeout`
    /// passes. `now_s` reads the run clock.
    pub async fn drain(
        &mut self,
        load_end_s: f64,
        timeout: std::time::Duration,
        now_s: impl Fn() -> f64,
    ) -> DrainReport {
        let mut report = DrainReport {
            timeout_s: timeout.as_secs_f64(),
            load_end_s,
            ..DrainReport::default()
        };
        let poll = (self.interval / 4).max(std::time::Duration::from_millis(20));
        let deadline = load_end_s + timeout.as_secs_f64();
        // A source that answers nothing for this long has stopped.
        let silent_after = 3.0 * self.interval.as_secs_f64() + 0.5;
        let mut last_fresh = load_end_s;
        loop {
            match self.holding(load_end_s) {
                Holding::NotExported => {
                    report.skipped = Some(format!(
                        "the server exports neither `{RUNNING}` nor `{WAITING}`"
                    ));
                    return report;
                }
                Holding::Fresh(t, held) => {
                    report.held_at_load_end.get_or_insert(held);
                    report.held_at_end = Some(held);
                    last_fresh = t;
                    if held > 0.0 {
                        report.held_until_s = t - load_end_s;
                    }
                    if held <= 0.0 {
                        report.drain_time_s = Some((t - load_end_s).max(0.0));
                        return report;
                    }
                }
                Holding::Stale => {}
            }
            let now = now_s();
            if now >= deadline {
                return report;
            }
            if now - last_fresh > silent_after {
                report.skipped = Some(format!(
                    "the server stopped answering: nothing sampled for {:.0}s{}",
                    now - last_fresh,
                    report
                        .held_at_end
                        .map_or(String::new(), |h| format!(", {h} held at its last sample"))
                ));
                report.held_at_end = None;
                return report;
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// What the server holds (running + waiting) at the newest samples of
    /// the two, when every one exported is newer than `since_s`.
    fn holding(&mut self, since_s: f64) -> Holding {
        let newest = [RUNNING, WAITING].map(|name| self.samplers.newest(name));
        if newest.iter().all(Option::is_none) {
            return Holding::NotExported;
        }
        let fresh: Vec<(f64, f64)> = newest.into_iter().flatten().collect();
        let t = fresh.iter().map(|(t, _)| *t).fold(f64::INFINITY, f64::min);
        if t > since_s {
            Holding::Fresh(t, fresh.iter().map(|(_, v)| v).sum())
        } else {
            Holding::Stale
        }
    }

    /// Stops sampling; fills gaps and reads alerts for the run's window
    /// (Unix seconds).
    pub async fn finish(self, window: (i64, i64)) -> (ObservedReport, Vec<Series>) {
        let (mut observed, series) = self.samplers.finish(window).await;
        observed.engine = self.engine;
        if let Some((urls, how)) = self.backends {
            observed.backends = urls;
            observed.backends_from = Some(how);
        }
        if let Some(own) = &self.own {
            own.stop();
        }
        (observed, series)
    }
}
