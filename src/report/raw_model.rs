//! What the run folder keeps so a run can be re-analysed later
//! (`report.raw_data`, the "Raw Data" section): the run log, the raw
//! server samples (a Prometheus export or the `/metrics` bodies scraped),
//! the looked-up trace spans, and the per-second intervals — each file
//! with its path relative to the run folder, size and record count.
//!
//! Plain data: the runner measures the files, renderers only list them.

use serde::{Deserialize, Serialize};

/// One file of the run folder's raw data.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RawFile {
    /// Relative to the run folder, `/`-separated (`raw/metrics.txt.gz`).
    pub path: String,
    pub kind: RawKind,
    /// What it holds, in a sentence.
    pub description: String,
    /// Its size on disk when the report was written.
    pub bytes: u64,
    /// Records it holds: lines, scrapes, series or spans (see
    /// [`RawKind::records`]).
    pub records: u64,
    /// How it is compressed; `None`: plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Records that could not be kept (the writer fell behind or the disk
    /// refused them); they are counted, not silently lost.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// The first write error, when the file is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a raw file is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawKind {
    /// `run.log`: every announcement line, timestamped, and the summary.
    #[default]
    RunLog,
    /// `intervals.jsonl`: one line per second of the run.
    Intervals,
    /// `raw/prometheus.jsonl.gz`: every sampled query's series over the
    /// run's window, as Prometheus answered a range query.
    PrometheusExport,
    /// `raw/metrics.txt.gz`: every `/metrics` body scraped, each after a
    /// header line with its wall-clock time and URL.
    MetricsScrapes,
    /// `raw/spans.otlp.json.gz`: the spans of the traces the look-ups
    /// found, one OTLP JSON `TracesData` per line.
    Spans,
}

impl RawKind {
    /// What one of its records is, plural: "lines", "scrapes", ...
    pub fn records(self) -> &'static str {
        match self {
            RawKind::RunLog => "lines",
            RawKind::Intervals => "intervals",
            RawKind::PrometheusExport => "series",
            RawKind::MetricsScrapes => "scrapes",
            RawKind::Spans => "spans",
        }
    }
}

/// How a raw file is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (RFC 1952); `zcat` reads it, also when a killed run left its
    /// last member unfinished.
    Gzip,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_compression_are_snake_case_names() {
        let file = RawFile {
            path: "raw/metrics.txt.gz".into(),
            kind: RawKind::MetricsScrapes,
            compression: Some(Compression::Gzip),
            ..RawFile::default()
        };
        let json = serde_json::to_value(&file).unwrap();
        assert_eq!(json["kind"], "metrics_scrapes");
        assert_eq!(json["compression"], "gzip");
        assert!(json.get("dropped").is_none() && json.get("error").is_none());
        let back: RawFile = serde_json::from_value(json).unwrap();
        assert_eq!(back, file);
    }
}
