//! The plan's `[traces]` table: trace coverage (issue 5). [`RawTraces`] is
//! the table as written; [`TracePlan`] the resolved settings — backend and
//! where it is, which requests carry a `traceparent`, how long to wait for
//! late spans, how hard the backend may be asked, and which spans every
//! trace must hold. Resolving checks every value against its neighbours
//! and points errors into the plan.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};
use serde_spanned::Spanned;

use super::PlanError;
use super::raw::{DurationValue, RateValue};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTraces {
    pub backend: Option<Spanned<TraceBackend>>,
    /// Jaeger query service or Tempo base URL.
    pub url: Option<Spanned<String>>,
    /// Where the embedded OTLP/HTTP receiver listens.
    pub otlp_listen: Option<Spanned<String>>,
    /// Share of requests that carry a `traceparent`.
    pub sample_fraction: Option<Spanned<f64>>,
    /// Wait after the load for late spans.
    pub grace: Option<DurationValue>,
    /// Trace ids looked up at most (a random sample beyond).
    pub max_lookups: Option<Spanned<usize>>,
    /// Traced requests remembered at most (a random sample beyond).
    pub max_records: Option<Spanned<usize>>,
    /// Look-ups in flight at once.
    pub concurrency: Option<Spanned<usize>>,
    /// Look-ups started per second at most.
    pub lookup_rate: Option<RateValue>,
    /// Per look-up.
    pub lookup_timeout: Option<DurationValue>,
    #[serde(default)]
    pub required_spans: Vec<String>,
    /// Export infercheck's own client span per traced request.
    #[serde(default)]
    pub client_spans: bool,
    /// OTLP/HTTP base URL for the client spans.
    pub client_spans_endpoint: Option<Spanned<String>>,
    /// Jaeger's or Tempo's credentials (`plan::access`); resolved by the caller.
    pub auth: Option<Spanned<super::access::RawAuth>>,
    /// Jaeger's or Tempo's TLS settings (`plan::access`); resolved by the caller.
    pub tls: Option<Spanned<super::access::RawTls>>,
}

/// Where traces are looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TraceBackend {
    /// infercheck's own OTLP/HTTP receiver.
    #[default]
    Embedded,
    /// A Jaeger query service: API v3, falling back to v1.
    Jaeger,
    /// Grafana Tempo's trace-by-id.
    Tempo,
}

/// The resolved `[traces]` table.
#[derive(Clone, Debug, Serialize)]
pub struct TracePlan {
    pub backend: TraceBackend,
    pub url: Option<String>,
    pub otlp_listen: SocketAddr,
    pub sample_fraction: f64,
    #[serde(serialize_with = "secs")]
    pub grace: Duration,
    pub max_lookups: usize,
    pub max_records: usize,
    pub concurrency: usize,
    pub lookup_rate: f64,
    #[serde(serialize_with = "secs")]
    pub lookup_timeout: Duration,
    pub required_spans: Vec<String>,
    pub client_spans: bool,
    pub client_spans_endpoint: Option<String>,
    /// How Jaeger or Tempo is reached (credential, TLS).
    pub access: crate::tls::Access,
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_LOOKUPS: usize = 10_000;
pub const DEFAULT_MAX_RECORDS: usize = 100_000;
pub const DEFAULT_CONCURRENCY: usize = 16;
pub const DEFAULT_LOOKUP_RATE: f64 = 1000.0;
pub const DEFAULT_LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// The OTLP/HTTP port collectors listen on; the receiver's default when a
/// real target must be told where to send spans.
pub const DEFAULT_OTLP_LISTEN: &str = "127.0.0.1:4318";

/// How resolving reports an error at a place in the plan.
pub type ErrorAt<'a> = &'a dyn Fn(Range<usize>, String) -> PlanError;

/// Resolves the table. `otlp_listen` (`--otlp-listen`) turns tracing on
/// with the embedded receiver at that address, whatever the table says;
/// `embedded_target`: the run starts its own simulator, which is wired to
/// the receiver on a free port.
pub fn resolve(
    raw: Option<Spanned<RawTraces>>,
    otlp_listen: Option<SocketAddr>,
    embedded_target: bool,
    error: ErrorAt<'_>,
) -> Result<Option<TracePlan>, PlanError> {
    let (span, raw) = match raw {
        Some(raw) => (raw.span(), raw.into_inner()),
        None if otlp_listen.is_some() => (0..0, RawTraces::default()),
        None => return Ok(None),
    };
    let backend = match (otlp_listen, &raw.backend) {
        (Some(_), _) | (None, None) => TraceBackend::Embedded,
        (None, Some(b)) => *b.get_ref(),
    };
    let url = backend_url(backend, raw.url.as_ref(), span.clone(), error)?;
    let client_spans_endpoint = match &raw.client_spans_endpoint {
        Some(e) => Some(http_url(e.get_ref()).map_err(|m| error(e.span(), m))?),
        None => None,
    };
    if raw.client_spans && client_spans_endpoint.is_none() && backend != TraceBackend::Embedded {
        return Err(error(
            span,
            "traces.client_spans needs `client_spans_endpoint` (the collector's OTLP/HTTP URL) unless the backend is embedded".into(),
        ));
    }
    Ok(Some(TracePlan {
        backend,
        url,
        otlp_listen: listen_address(
            otlp_listen,
            raw.otlp_listen.as_ref(),
            embedded_target,
            error,
        )?,
        sample_fraction: fraction(raw.sample_fraction.as_ref(), error)?,
        grace: raw.grace.map_or(DEFAULT_GRACE, |d| d.0),
        max_lookups: at_least_one(
            raw.max_lookups.as_ref(),
            DEFAULT_MAX_LOOKUPS,
            "max_lookups",
            error,
        )?,
        max_records: at_least_one(
            raw.max_records.as_ref(),
            DEFAULT_MAX_RECORDS,
            "max_records",
            error,
        )?,
        concurrency: at_least_one(
            raw.concurrency.as_ref(),
            DEFAULT_CONCURRENCY,
            "concurrency",
            error,
        )?,
        lookup_rate: raw.lookup_rate.map_or(DEFAULT_LOOKUP_RATE, |r| r.0),
        lookup_timeout: raw.lookup_timeout.map_or(DEFAULT_LOOKUP_TIMEOUT, |d| d.0),
        required_spans: required_spans(raw.required_spans, span, error)?,
        client_spans: raw.client_spans,
        client_spans_endpoint,
        access: crate::tls::Access::default(), // set by the caller from `auth` and `tls`
    }))
}

fn backend_url(
    backend: TraceBackend,
    url: Option<&Spanned<String>>,
    table: Range<usize>,
    error: ErrorAt<'_>,
) -> Result<Option<String>, PlanError> {
    match (backend, url) {
        (TraceBackend::Embedded, None) => Ok(None),
        (TraceBackend::Embedded, Some(url)) => Err(error(
            url.span(),
            "traces.url names a Jaeger or Tempo; the embedded receiver takes `otlp_listen`".into(),
        )),
        (_, Some(url)) => Ok(Some(http_url(url.get_ref()).map_err(|m| error(url.span(), m))?)),
        (_, None) => Err(error(
            table,
            "traces.backend = \"jaeger\" or \"tempo\" needs `url`, like url = \"http://jaeger:16686\"".into(),
        )),
    }
}

fn http_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid URL `{text}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "invalid URL `{text}`: expected http:// or https:// with a host"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn listen_address(
    flag: Option<SocketAddr>,
    raw: Option<&Spanned<String>>,
    embedded_target: bool,
    error: ErrorAt<'_>,
) -> Result<SocketAddr, PlanError> {
    if let Some(addr) = flag {
        return Ok(addr);
    }
    match raw {
        Some(text) => text.get_ref().parse().map_err(|_| {
            error(
                text.span(),
                format!(
                    "otlp_listen `{}` is not an address like \"127.0.0.1:4318\"",
                    text.get_ref()
                ),
            )
        }),
        // The embedded simulator is told the port, so any free one will do.
        None if embedded_target => Ok(SocketAddr::from(([127, 0, 0, 1], 0))),
        None => Ok(DEFAULT_OTLP_LISTEN
            .parse()
            .expect("a valid default address")),
    }
}

fn fraction(raw: Option<&Spanned<f64>>, error: ErrorAt<'_>) -> Result<f64, PlanError> {
    match raw {
        None => Ok(1.0),
        Some(f) if (0.0..=1.0).contains(f.get_ref()) && *f.get_ref() > 0.0 => Ok(*f.get_ref()),
        Some(f) => Err(error(
            f.span(),
            format!(
                "traces.sample_fraction must be in (0, 1], got {}",
                f.get_ref()
            ),
        )),
    }
}

fn at_least_one(
    raw: Option<&Spanned<usize>>,
    default: usize,
    name: &str,
    error: ErrorAt<'_>,
) -> Result<usize, PlanError> {
    match raw {
        None => Ok(default),
        Some(n) if *n.get_ref() == 0 => {
            Err(error(n.span(), format!("traces.{name} must be at least 1")))
        }
        Some(n) => Ok(*n.get_ref()),
    }
}

fn required_spans(
    names: Vec<String>,
    table: Range<usize>,
    error: ErrorAt<'_>,
) -> Result<Vec<String>, PlanError> {
    let mut seen: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if name.trim().is_empty() || seen.contains(&name) {
            return Err(error(
                table,
                format!("traces.required_spans: `{name}` is empty or named twice"),
            ));
        }
        seen.push(name);
    }
    Ok(seen)
}
