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
use crate::sample::queries::{self, Query};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObserve {
    /// Prometheus base URL; queries go there.
    pub prometheus: Option<Spanned<String>>,
    /// `/metrics` URLs read directly when there is no Prometheus.
    pub scrape: Option<Spanned<Vec<String>>>,
    /// Built-in query sets (queries/*.toml).
    pub query_sets: Option<Spanned<Vec<String>>>,
    /// Extra queries, in the query-file format.
    #[serde(default, rename = "query")]
    pub queries: Vec<Spanned<Query>>,
    pub interval: Option<DurationValue>,
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
}

/// The resolved `[observe]` table.
#[derive(Clone, Debug, Serialize)]
pub struct ObservePlan {
    pub prometheus: Option<String>,
    /// Empty: the runner reads the target's `/metrics` (and the embedded
    /// simulator's DCGM exporter).
    pub scrape: Vec<String>,
    pub query_sets: Vec<String>,
    pub queries: Vec<Query>,
    #[serde(with = "secs")]
    pub interval: Duration,
    pub host: bool,
    pub target_pid: Option<u32>,
    pub nvml: bool,
    pub nvml_lib: Option<PathBuf>,
    pub metrics_listen: Option<SocketAddr>,
}

mod secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Query sets read when the plan names none: the engine, its GPUs and a
/// router (absent families are gaps); with Prometheus also the host and
/// infercheck itself.
fn default_sets(prometheus: bool) -> Vec<String> {
    let mut sets = vec!["vllm", "dcgm", "router"];
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
    let scrape = match &raw.scrape {
        Some(urls) => urls
            .get_ref()
            .iter()
            .map(|u| http_url(u))
            .collect::<Result<_, _>>()
            .map_err(|m| error(urls.span(), m))?,
        None => Vec::new(),
    };
    let query_sets = match &raw.query_sets {
        Some(sets) => sets.get_ref().clone(),
        None => default_sets(prometheus.is_some()),
    };
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
    Ok(ObservePlan {
        prometheus,
        scrape,
        query_sets,
        queries,
        interval,
        host: raw.host.unwrap_or(true),
        target_pid: overrides.target_pid.or(raw.target_pid),
        nvml: raw.nvml.unwrap_or(true),
        nvml_lib: raw.nvml_lib.map(PathBuf::from),
        metrics_listen,
    })
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
            let known = builtin_values().any(|b| b == name)
                || observe.queries.iter().any(|q| &q.name == name);
            if !known {
                let mut names: Vec<&str> =
                    observe.queries.iter().map(|q| q.name.as_str()).collect();
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

fn http_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(text.trim_end_matches('/').to_string()),
        other => Err(format!("URL {text:?}: expected http or https, got {other}")),
    }
}
