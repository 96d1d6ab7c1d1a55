//! Result files of a run: results/<run id>/ with intervals.jsonl appended
//! and flushed every second (an interrupted run loses nothing), run.log
//! appended as each announcement is made, the raw data (`raw_data`)
//! written as it comes, and the reports written once at the end.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::Context;

use super::raw_data::{self, RawArchive, RunLog};
use crate::report::{self, Format, IntervalSummary, RawFile, Report};
use crate::sample::raw::RawSink;
use crate::traces::FoundSpans;

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
    /// Lines appended to intervals.jsonl.
    intervals_written: u64,
    /// Bytes of those lines: the file's length while writes succeed.
    intervals_bytes: u64,
    /// Set by the first failed append; nothing more is appended after it.
    intervals_failed: bool,
    log: RunLog,
    /// The sources' raw data, started by the first [`RunDir::raw_sink`].
    raw: OnceLock<Arc<RawArchive>>,
    /// Raw files already complete (the spans).
    kept: Vec<RawFile>,
}

impl RunDir {
    pub fn create(root: &Path, run_id: &str) -> anyhow::Result<RunDir> {
        let path = root.join(run_id);
        fs::create_dir_all(&path)
            .with_context(|| format!("cannot create the results folder {}", path.display()))?;
        let file = path.join("intervals.jsonl");
        let intervals =
            File::create(&file).with_context(|| format!("cannot create {}", file.display()))?;
        Ok(RunDir {
            log: RunLog::create(&path),
            path,
            intervals,
            intervals_written: 0,
            intervals_bytes: 0,
            intervals_failed: false,
            raw: OnceLock::new(),
            kept: Vec::new(),
        })
    }

    /// Prints `infercheck: <line>` to stderr unless `quiet`, and appends it
    /// to run.log with the wall-clock time (a write error is remembered
    /// and reported in the Raw Data section, never raised).
    pub fn announce(&self, quiet: bool, line: &str) {
        self.log.quiet(quiet).announce(line);
    }

    /// The run log, to hand to what announces on its own (the drills, the
    /// validator, the trace look-ups).
    pub fn log(&self, quiet: bool) -> RunLog {
        self.log.quiet(quiet)
    }

    /// Where the samplers hand their raw data (`sample::Prepared::keep_raw`);
    /// the writer thread starts on the first call.
    pub fn raw_sink(&self) -> Arc<dyn RawSink> {
        self.raw
            .get_or_init(|| Arc::new(RawArchive::start(&self.path)))
            .clone()
    }

    /// Writes the spans the trace look-ups found (raw/spans.otlp.json.gz).
    pub fn keep_spans(&mut self, found: &FoundSpans) {
        self.kept.extend(raw_data::write_spans(&self.path, found));
    }

    /// After the last announcement, before the reports are written: the
    /// raw data writer stopped, the terminal summary appended to run.log,
    /// and `report.raw_data` listing every file with its final size.
    pub fn finish_raw_data(&mut self, report: &mut Report) {
        if let Some(archive) = self.raw.get() {
            self.kept.extend(archive.finish());
        }
        let mut summary = Vec::new();
        if report::render_summary(report, &mut summary).is_ok() {
            self.log.append(&String::from_utf8_lossy(&summary));
        }
        let mut files: Vec<RawFile> = std::mem::take(&mut self.kept);
        files.extend(self.log.entry(&self.path));
        files.push(raw_data::intervals_entry(
            &self.path,
            self.intervals_written,
        ));
        files.sort_by_key(|f| f.kind);
        report.raw_data = files;
    }

    /// Appends one interval as a JSON line and hands it to the OS at once.
    /// A failed write (disk full, file size limit, I/O error) cuts the file
    /// back to its last whole line, so it stays valid JSON Lines, and is
    /// returned once; later appends are skipped.
    pub fn append_interval(
        &mut self,
        interval: &IntervalSummary,
        sampled: &BTreeMap<String, Option<f64>>,
    ) -> anyhow::Result<()> {
        if self.intervals_failed {
            return Ok(());
        }
        let line = IntervalLine { interval, sampled };
        let mut line = serde_json::to_vec(&line).context("cannot encode an interval")?;
        line.push(b'\n');
        if let Err(error) = self.intervals.write_all(&line) {
            self.intervals_failed = true;
            let _ = self.intervals.set_len(self.intervals_bytes);
            let file = self.path.join("intervals.jsonl");
            return Err(anyhow::Error::new(error).context(format!(
                "cannot append to {} (kept: its first {} seconds, whole lines)",
                file.display(),
                self.intervals_written
            )));
        }
        self.intervals_written += 1;
        self.intervals_bytes += line.len() as u64;
        Ok(())
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
