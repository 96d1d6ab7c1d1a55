//! Result files of a run: results/<run id>/ with intervals.jsonl appended
//! and flushed every second (an interrupted run loses nothing), and the
//! reports written once at the end.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::report::{self, Format, IntervalSummary, Report};

/// One line of intervals.jsonl: the client's second, and the server-side
/// values sampled in it (`null`: a gap).
#[derive(serde::Serialize)]
struct IntervalLine<'a> {
    #[serde(flatten)]
    interval: &'a IntervalSummary,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sampled: &'a BTreeMap<String, Option<f64>>,
}

pub struct RunDir {
    pub path: PathBuf,
    intervals: File,
}

impl RunDir {
    pub fn create(root: &Path, run_id: &str) -> anyhow::Result<RunDir> {
        let path = root.join(run_id);
        fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the results folder {}", path.display()))?;
        let file = path.join("intervals.jsonl");
        let intervals =
            File::create(&file).with_context(|| format!("cannot create {}", file.display()))?;
        Ok(RunDir { path, intervals })
    }

    /// Appends one interval as a JSON line and hands it to the OS at once.
    pub fn append_interval(
        &mut self,
        interval: &IntervalSummary,
        sampled: &BTreeMap<String, Option<f64>>,
    ) -> anyhow::Result<()> {
        let line = IntervalLine { interval, sampled };
        let mut line = serde_json::to_vec(&line).context("cannot encode an interval")?;
        line.push(b'\n');
        self.intervals.write_all(&line).with_context(|| {
            format!(
                "cannot append to {}",
                self.path.join("intervals.jsonl").display()
            )
        })
    }

    /// Writes report.json, report.md and report.html; returns their paths.
    pub fn write_reports(&self, report: &Report) -> anyhow::Result<Vec<PathBuf>> {
        let formats = [
            ("report.json", Format::Json),
            ("report.md", Format::Markdown),
            ("report.html", Format::Html),
        ];
        formats
            .into_iter()
            .map(|(name, format)| self.write_one(report, name, format))
            .collect()
    }

    fn write_one(&self, report: &Report, name: &str, format: Format) -> anyhow::Result<PathBuf> {
        let path = self.path.join(name);
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = BufWriter::new(file);
        report::render(report, format, &mut out)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }
}

pub fn read_report(path: &Path) -> anyhow::Result<Report> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an infercheck report.json", path.display()))
}
