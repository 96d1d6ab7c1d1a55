//! The plan's `[observe]` table: what infercheck samples on the server side
//! while the load runs (issue 4). [`RawObserve`] is the table as written;
//! [`ObservePlan`] the resolved settings: where the values come from (a
//! Prometheus server, or the target's `/metrics` read directly), which
//! query sets and extra queries, the interval, host and process sampling,
//! GPUs through NVML, and where infercheck serves its own `/metrics`. Every
//! query's PromQL is parsed here, so a typo fails before any request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::PlanError;
use super::raw::DurationValue;
use super::traces::ErrorAt;
use crate::sample::engine::Engine;
use crate::sample::queries::{self, Query};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObserve {
    /// Prometheus base URL; queries go there.
    pub prometheus: Option<Spanned<String>>,
    /// `/metrics` URLs read directly when there is no Prometheus.
    pub scrape: Option<Spanned<Vec<String>>>,
    /// The engines behind the target (a router): base URLs. Default: the
    /// ones the router's own /metrics names.
    pub backends: Option<Spanned<Vec<String>>>,
    /// With a Prometheus: the engines behind the target are the instances
    /// of this job (`up{job="…"}`), read directly as well.
    pub backends_job: Option<Spanned<String>>,
    /// Built-in query sets (queries/*.toml).
    pub query_sets: Option<Spanned<Vec<String>>>,
    /// The engine whose profile (queries/<engine>.toml) reads the server:
    /// "auto" (default: probe the target's /metrics once) or its name.
    pub engine: Option<Spanned<String>>,
    /// Extra queries, in the query-file format.
    #[serde(default, rename = "query")]
    pub queries: Vec<Spanned<Query>>,
    pub interval: Option<DurationValue>,
    /// After the load, sample on until the server holds no request, at
    /// most this long (default 30s; "0s": no drain window).
    pub drain_timeout: Option<DurationValue>,
    /// Sample this host's memory and CPU (default true).
    pub host: Option<bool>,
    /// Sample this process's RSS and CPU too.
    pub target_pid: Option<u32>,
    /// Sample GPUs through NVML (default true; "not available" is fine).
    pub nvml: Option<bool>,
    /// libnvidia-ml to load instead of the system's.
    pub nvml_lib: Option<String>,
    /// Serve infercheck's own /metrics here while the run lasts.
    pub metrics_listen: Option<Spanned<String>>,
    /// Grafana dashboards (files or folders) whose panels the run checks
    /// against the Prometheus after the load (`validate`).
    pub dashboards: Option<Spanned<Vec<String>>>,
    /// Prometheus's credentials (`plan::access`); resolved by the caller.
    pub auth: Option<Spanned<super::access::RawAuth>>,
    /// Prometheus's TLS settings (`plan::access`); resolved by the caller.
    pub tls: Option<Spanned<super::access::RawTls>>,
}

/// The resolved `[observe]` table.
#[derive(Clone, Debug, Serialize)]
pub struct ObservePlan {
    pub prometheus: Option<String>,
    /// Empty: the runner reads the target's `/metrics` (and the embedded
    /// simulator's DCGM exporter).
    pub scrape: Vec<String>,
    /// Engines behind the target, as the plan lists them (empty: those the
    /// target's /metrics names, if it is a router).
    pub backends: Vec<String>,
    /// The Prometheus job whose instances are the engines behind the
    /// target (when `backends` lists none).
    pub backends_job: Option<String>,
    pub query_sets: Vec<String>,
    /// Which engine profile reads the server; `None`: none (the plan's
    /// query sets name no engine).
    pub engine: Option<EngineChoice>,
    /// The non-engine sets' queries and the plan's own; the engine's come
    /// from [`ObservePlan::queries_for`] once the engine is known.
    pub queries: Vec<Query>,
    #[serde(with = "secs")]
    pub interval: Duration,
    #[serde(with = "secs")]
    pub drain_timeout: Duration,
    pub host: bool,
    pub target_pid: Option<u32>,
    pub nvml: bool,
    pub nvml_lib: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
    /// Dashboards checked after the load (needs `prometheus`).
    pub dashboards: Vec<PathBuf>,
    /// How Prometheus is reached (credential, TLS).
    pub access: crate::tls::Access,
}

mod secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How the engine profile is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineChoice {
    /// Probe the target's `/metrics` once before the run.
    Auto,
    /// The plan names it (`engine = "sglang"`, or an engine query set).
    Named(Engine),
}

impl ObservePlan {
    /// Every query of a run against `engine`: its profile's, the other
    /// sets', and the plan's own (which replace a profile's of the same
    /// name).
    pub fn queries_for(&self, engine: Option<Engine>) -> Vec<Query> {
        let mut all: Vec<Query> = match engine {
            Some(e) => queries::builtin(e.query_set()).expect("built-in profiles parse"),
            None => Vec::new(),
        };
        all.retain(|q| !self.queries.iter().any(|own| own.name == q.name));
        all.extend(self.queries.iter().cloned());
        all
    }

    /// The names a threshold may use: vLLM's profile is the reference
    /// every engine profile's names are a subset of.
    fn known_names(&self) -> Vec<String> {
        let reference = self.engine.map(|_| Engine::Vllm);
        self.queries_for(reference)
            .into_iter()
            .map(|q| q.name)
            .collect()
    }
}

/// Query sets read when the plan names none: the engine, its GPUs and a
/// router (absent families are gaps); with Prometheus also the host and
/// infercheck itself.
fn default_sets(prometheus: bool) -> Vec<String> {
    let mut sets = vec!["dcgm", "router"];
    if prometheus {
        sets.extend(["node", "infercheck"]);
    }
    sets.into_iter().map(String::from).collect()
}

/// Command-line settings that win over the table.
#[derive(Clone, Debug, Default)]
pub struct ObserveOverrides {
    pub prometheus: Option<String>,
    pub metrics_listen: Option<SocketAddr>,
    pub target_pid: Option<u32>,
}

/// `backends_job`: a Prometheus job name, read from that Prometheus.
fn backends_job(
    raw: &RawObserve,
    prometheus: bool,
    error: ErrorAt<'_>,
) -> Result<Option<String>, PlanError> {
    let Some(job) = &raw.backends_job else {
        return Ok(None);
    };
    let name = job.get_ref();
    let message = if !prometheus {
        "backends_job: needs `prometheus` (the job's instances are read from it)".to_owned()
    } else if name.is_empty() || name.contains(['"', '\\', '\n']) {
        format!("backends_job: expected a Prometheus job name, got {name:?}")
    } else {
        return Ok(Some(name.clone()));
    };
    Err(error(job.span(), message))
}

/// Resolves the table (absent: the defaults).
pub fn resolve(
    raw: Option<Spanned<RawObserve>>,
    overrides: &ObserveOverrides,
    error: ErrorAt<'_>,
) -> Result<ObservePlan, PlanError> {
    let raw = raw.map(Spanned::into_inner).unwrap_or_default();
    let prometheus = match (&overrides.prometheus, &raw.prometheus) {
        (Some(url), _) => Some(http_url(url).map_err(|m| PlanError::Option {
            option: "--prometheus",
            message: m,
        })?),
        (None, Some(url)) => Some(http_url(url.get_ref()).map_err(|m| error(url.span(), m))?),
        (None, None) => None,
    };
    let scrape = http_urls(raw.scrape.as_ref(), error)?;
    let backends = http_urls(raw.backends.as_ref(), error)?;
    let backends_job = backends_job(&raw, prometheus.is_some(), error)?;
    let mut query_sets = match &raw.query_sets {
        Some(sets) => sets.get_ref().clone(),
        None => default_sets(prometheus.is_some()),
    };
    let engine = engine_choice(&raw, &mut query_sets, error)?;
    let queries = queries_of(&raw, &query_sets, error)?;
    let interval = raw.interval.map_or(DEFAULT_INTERVAL, |d| d.0);
    let metrics_listen = match (overrides.metrics_listen, &raw.metrics_listen) {
        (Some(addr), _) => Some(addr),
        (None, Some(text)) => Some(text.get_ref().parse().map_err(|_| {
            error(
                text.span(),
                format!(
                    "metrics_listen: expected HOST:PORT, got {:?}",
                    text.get_ref()
                ),
            )
        })?),
        (None, None) => None,
    };
    let dashboards = dashboards(&raw, prometheus.is_some(), error)?;
    Ok(ObservePlan {
        dashboards,
        prometheus,
        scrape,
        backends,
        backends_job,
        query_sets,
        engine,
        queries,
        interval,
        drain_timeout: raw.drain_timeout.map_or(DEFAULT_DRAIN_TIMEOUT, |d| d.0),
        host: raw.host.unwrap_or(true),
        target_pid: overrides.target_pid.or(raw.target_pid),
        nvml: raw.nvml.unwrap_or(true),
        nvml_lib: raw.nvml_lib.map(PathBuf::from),
        metrics_listen,
        access: crate::tls::Access::default(), // set by the caller from `auth` and `tls`
    })
}

/// Dashboard paths: each must exist, and they need a Prometheus.
fn dashboards(
    raw: &RawObserve,
    has_prometheus: bool,
    error: ErrorAt<'_>,
) -> Result<Vec<PathBuf>, PlanError> {
    let Some(list) = &raw.dashboards else {
        return Ok(Vec::new());
    };
    if !has_prometheus {
        return Err(error(
            list.span(),
            "dashboards are checked against a Prometheus: set prometheus too".into(),
        ));
    }
    list.get_ref()
        .iter()
        .map(|p| {
            let path = PathBuf::from(p);
            if path.exists() {
                Ok(path)
            } else {
                Err(error(
                    list.span(),
                    format!("dashboards: {p}: no such file or folder"),
                ))
            }
        })
        .collect()
}

/// The engine profile: `engine` when given, else an engine set the plan
/// lists (taken out of `sets`: its queries come with the engine), else
/// "auto" — unless the plan lists sets and none is an engine's.
fn engine_choice(
    raw: &RawObserve,
    sets: &mut Vec<String>,
    error: ErrorAt<'_>,
) -> Result<Option<EngineChoice>, PlanError> {
    let listed: Vec<Engine> = sets.iter().filter_map(|s| engine_of_set(s)).collect();
    sets.retain(|s| engine_of_set(s).is_none());
    let sets_span = raw.query_sets.as_ref().map_or(0..0, |s| s.span());
    if listed.len() > 1 {
        return Err(error(
            sets_span,
            "query_sets names more than one engine profile; name one, or set engine = \"auto\""
                .into(),
        ));
    }
    let named = match &raw.engine {
        Some(text) if text.get_ref() == "auto" => Some(EngineChoice::Auto),
        Some(text) => Some(EngineChoice::Named(
            Engine::parse(text.get_ref()).ok_or_else(|| {
                let names: Vec<&str> = Engine::ALL.iter().map(|e| e.name()).collect();
                error(
                    text.span(),
                    format!(
                        "engine {:?}: expected \"auto\" or one of {}",
                        text.get_ref(),
                        names.join(", ")
                    ),
                )
            })?,
        )),
        None => None,
    };
    Ok(match (named, listed.first()) {
        (Some(choice), _) => Some(choice),
        (None, Some(engine)) => Some(EngineChoice::Named(*engine)),
        (None, None) if raw.query_sets.is_none() => Some(EngineChoice::Auto),
        (None, None) => None,
    })
}

fn engine_of_set(set: &str) -> Option<Engine> {
    Engine::ALL.into_iter().find(|e| e.query_set() == set)
}

/// The sets' queries, then the plan's own (which replace a set's query of
/// the same name). Every one is checked.
fn queries_of(
    raw: &RawObserve,
    sets: &[String],
    error: ErrorAt<'_>,
) -> Result<Vec<Query>, PlanError> {
    let mut all: Vec<Query> = Vec::new();
    for set in sets {
        let span = raw.query_sets.as_ref().map_or(0..0, |s| s.span());
        all.extend(queries::builtin(set).map_err(|m| error(span, m))?);
    }
    for q in &raw.queries {
        queries::check(q.get_ref())
            .map_err(|m| error(q.span(), format!("query \"{}\": {m}", q.get_ref().name)))?;
        all.retain(|existing| existing.name != q.get_ref().name);
        all.push(q.get_ref().clone());
    }
    Ok(all)
}

/// Values sampled without a query: the host's and NVML's.
fn builtin_values() -> impl Iterator<Item = &'static str> {
    crate::sample::host::HostSource::NAMES
        .into_iter()
        .chain(crate::sample::nvml::NvmlSource::NAMES)
}

/// Checks that every sampled value a threshold names is sampled.
pub fn check_thresholds<'a>(
    observe: &ObservePlan,
    thresholds: impl Iterator<Item = &'a super::Threshold>,
) -> Result<(), String> {
    for t in thresholds {
        if let crate::metric::Metric::Sampled { name, .. } = &t.metric {
            let queries = observe.known_names();
            let known = builtin_values().any(|b| b == name) || queries.contains(name);
            if !known {
                let mut names: Vec<&str> = queries.iter().map(String::as_str).collect();
                names.extend(builtin_values().map(|b| -> &str { b }));
                return Err(format!(
                    "threshold \"{}\": unknown metric `{name}`: not a request metric ({}) and no sampled value has that name; sampled here: {}",
                    t.expression,
                    crate::stats::Distribution::names(),
                    names.join(", ")
                ));
            }
        }
    }
    Ok(())
}

/// A list of URLs as written (absent: none), each checked.
fn http_urls(
    urls: Option<&Spanned<Vec<String>>>,
    error: ErrorAt<'_>,
) -> Result<Vec<String>, PlanError> {
    let Some(urls) = urls else {
        return Ok(Vec::new());
    };
    urls.get_ref()
        .iter()
        .map(|u| http_url(u))
        .collect::<Result<_, _>>()
        .map_err(|m| error(urls.span(), m))
}

fn http_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(text.trim_end_matches('/').to_string()),
        other => Err(format!("URL {text:?}: expected http or https, got {other}")),
    }
}
