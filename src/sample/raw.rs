//! Raw server data, handed out as the sources read it so that the run
//! folder can keep it for a later re-analysis: every `/metrics` body a
//! scrape source read (with its wall-clock time and URL), and every
//! sampled query's series as a Prometheus range export.
//!
//! The sources only hand records to a [`RawSink`]; where they go (files,
//! compression) is the runner's business. A sink must never block a
//! source and never fail it: a record it cannot keep is counted by the
//! sink, and the source carries on.

use std::collections::BTreeMap;

/// Where raw records go. Implementations hand them off (a bounded
/// channel to a writer thread) and return at once.
pub trait RawSink: Send + Sync + std::fmt::Debug + 'static {
    /// One scrape of one `/metrics` URL, the body moved in.
    fn scrape(&self, scrape: RawScrape);

    /// One sampled query's range export over the run's window.
    fn export(&self, export: RawExport);
}

/// One scrape as read.
#[derive(Clone, Debug, PartialEq)]
pub struct RawScrape {
    /// When the request was sent (wall clock).
    pub at: chrono::DateTime<chrono::Utc>,
    pub url: String,
    /// The body as served, or why there is none (`HTTP 503`, a transport
    /// error): a gap is kept too.
    pub body: Result<String, String>,
}

/// One query's range query over the run's window, every series as
/// Prometheus answered it (in its units, not normalised).
#[derive(Clone, Debug, PartialEq)]
pub struct RawExport {
    /// The query's reference name (`queue_depth`).
    pub name: String,
    /// The PromQL sent (the expression that answered during the run).
    pub query: String,
    /// The step of the range query, in seconds.
    pub step_s: f64,
    /// Its series, or why Prometheus gave none.
    pub series: Result<Vec<RawSeries>, String>,
}

/// One series of a range answer.
#[derive(Clone, Debug, PartialEq)]
pub struct RawSeries {
    /// The series' labels.
    pub metric: BTreeMap<String, String>,
    /// (Unix seconds, value).
    pub values: Vec<(f64, f64)>,
}

/// A value as Prometheus's API writes one: `1.5`, `NaN`, `+Inf`.
pub fn prometheus_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_prometheus_writes_them() {
        let cases = [
            (1.5, "1.5"),
            (3.0, "3"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1e-9, "0.000000001"),
        ];
        for (v, want) in cases {
            assert_eq!(prometheus_value(v), want, "{v}");
        }
    }
}
