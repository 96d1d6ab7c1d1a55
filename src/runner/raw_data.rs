//! The run folder's raw data (issue 13, "Raw Data"): what a later
//! re-analysis needs beside the report.
//!
//! - [`RunLog`]: `run.log`, every announcement line infercheck prints
//!   during a run with its wall-clock time (RFC 3339), then the terminal
//!   summary. Each line goes to the OS as it is written, so an interrupted
//!   or killed run keeps its log.
//! - [`RawArchive`]: the sources' raw data (`sample::raw`), gzip-compressed
//!   by a writer thread of its own: `raw/metrics.txt.gz` (every `/metrics`
//!   body scraped, after a header line) and `raw/prometheus.jsonl.gz`
//!   (every sampled query's series over the run's window). Sources hand
//!   records over a bounded channel and never wait: a record that finds
//!   the channel full is counted as dropped. Nothing is kept in memory but
//!   the records in the channel.
//! - [`write_spans`]: `raw/spans.otlp.json.gz`, the spans the trace
//!   look-ups found.
//!
//! Nothing here fails a run: a file that cannot be written is an `error`
//! on its [`RawFile`], remembered and reported.
//!
//! `raw/metrics.txt.gz` holds, per scrape, one header line
//! `# infercheck-scrape {"at":"<RFC 3339>","url":"…","bytes":N}` and then
//! exactly N bytes of body and a newline (a scrape that failed has
//! `"error"` instead of `"bytes"` and no body). The header is a comment of
//! the exposition format, so the file as a whole still reads as one.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use flate2::Compression as Level;
use flate2::write::GzEncoder;

use crate::report::{Compression, RawFile, RawKind};
use crate::sample::raw::{RawExport, RawScrape, RawSink, prometheus_value};
use crate::traces::FoundSpans;

pub const RUN_LOG: &str = "run.log";
pub const METRICS_SCRAPES: &str = "raw/metrics.txt.gz";
pub const PROMETHEUS_EXPORT: &str = "raw/prometheus.jsonl.gz";
pub const SPANS: &str = "raw/spans.otlp.json.gz";

/// How a scrape's header line starts.
pub const SCRAPE_HEADER: &str = "# infercheck-scrape ";

/// Records waiting for the writer thread: at most this many bodies are
/// held in memory at once.
const CHANNEL_RECORDS: usize = 64;

/// The wall clock as the log and the headers write it.
fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------- run.log

/// Where a run's announcements go: stderr (unless quiet) and `run.log`.
/// Cheap to clone; every clone appends to the same file.
#[derive(Clone, Debug)]
pub struct RunLog {
    quiet: bool,
    file: Option<Arc<Mutex<LogFile>>>,
}

#[derive(Debug)]
struct LogFile {
    /// `None` when it could not be created (`error` says why).
    out: Option<File>,
    path: PathBuf,
    lines: u64,
    /// The first write error; nothing is written after it.
    error: Option<String>,
}

/// A bare `quiet` flag: announcements on stderr only (unless quiet), no
/// run log.
impl From<bool> for RunLog {
    fn from(quiet: bool) -> RunLog {
        RunLog { quiet, file: None }
    }
}

impl RunLog {
    /// Creates `run.log` in `dir`. A file that cannot be created is
    /// remembered as the log's error; announcements still reach stderr.
    pub fn create(dir: &Path) -> RunLog {
        let path = dir.join(RUN_LOG);
        let (out, error) = match File::create(&path) {
            Ok(out) => (Some(out), None),
            Err(e) => (None, Some(format!("cannot create {}: {e}", path.display()))),
        };
        let file = LogFile {
            out,
            path,
            lines: 0,
            error,
        };
        RunLog {
            quiet: false,
            file: Some(Arc::new(Mutex::new(file))),
        }
    }

    /// The same log, printing to stderr unless `quiet`.
    pub fn quiet(&self, quiet: bool) -> RunLog {
        RunLog {
            quiet,
            file: self.file.clone(),
        }
    }

    /// Prints `infercheck: <line>` to stderr (unless quiet) and appends it
    /// to the run log with the wall-clock time.
    pub fn announce(&self, line: &str) {
        if !self.quiet {
            eprintln!("infercheck: {line}");
        }
        self.append(&format!("infercheck: {line}"));
    }

    /// Appends `text` to the run log only, each of its lines after the
    /// wall-clock time (the terminal summary).
    pub fn append(&self, text: &str) {
        let Some(file) = &self.file else { return };
        let at = now_rfc3339();
        let mut record = String::with_capacity(text.len() + 32);
        for line in text.lines() {
            record.push_str(&at);
            record.push(' ');
            record.push_str(line);
            record.push('\n');
        }
        lock(file).write(&record);
    }

    /// The log as a raw-data entry (`None` without a file).
    pub fn entry(&self, run_dir: &Path) -> Option<RawFile> {
        let file = lock(self.file.as_ref()?);
        Some(RawFile {
            path: RUN_LOG.to_owned(),
            kind: RawKind::RunLog,
            description: "every line infercheck announced during the run, after its \
                          wall-clock time (RFC 3339), then the terminal summary"
                .to_owned(),
            bytes: size(&run_dir.join(RUN_LOG)),
            records: file.lines,
            compression: None,
            dropped: 0,
            error: file.error.clone(),
        })
    }
}

impl LogFile {
    /// One `write` per record: the lines reach the OS at once.
    fn write(&mut self, record: &str) {
        let Some(out) = self.out.as_mut().filter(|_| self.error.is_none()) else {
            return;
        };
        match out.write_all(record.as_bytes()) {
            Ok(()) => self.lines += record.lines().count() as u64,
            Err(e) => self.error = Some(format!("cannot append to {}: {e}", self.path.display())),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it leaves whole lines; keep logging.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn size(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

// ---------------------------------------------------------------- raw/*.gz

/// A gzip file written record by record, each record flushed (a sync
/// flush: everything up to it decompresses even if the run is killed).
struct GzFile {
    rel: &'static str,
    kind: RawKind,
    out: Option<GzEncoder<BufWriter<File>>>,
    records: u64,
    dropped: u64,
    error: Option<String>,
}

impl GzFile {
    /// Creates `rel` under `run_dir` (and its folder).
    fn create(run_dir: &Path, rel: &'static str, kind: RawKind) -> GzFile {
        let path = run_dir.join(rel);
        let opened = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| File::create(&path));
        let (out, error) = match opened {
            Ok(f) => (
                Some(GzEncoder::new(BufWriter::new(f), Level::default())),
                None,
            ),
            Err(e) => (None, Some(format!("cannot create {}: {e}", path.display()))),
        };
        GzFile {
            rel,
            kind,
            out,
            records: 0,
            dropped: 0,
            error,
        }
    }

    /// Writes one record (`parts` back to back), flushed, and counts it.
    fn record(&mut self, parts: &[&[u8]]) {
        if self.write(parts) {
            self.records += 1;
        }
    }

    /// Writes `parts` back to back and flushes them; false when they
    /// could not be written (counted as dropped).
    fn write(&mut self, parts: &[&[u8]]) -> bool {
        let Some(out) = self.out.as_mut() else {
            self.dropped += 1;
            return false;
        };
        let written = parts
            .iter()
            .try_for_each(|p| out.write_all(p))
            .and_then(|()| out.flush());
        match written {
            Ok(()) => true,
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    fn fail(&mut self, e: io::Error) {
        self.dropped += 1;
        self.out = None;
        self.error
            .get_or_insert_with(|| format!("cannot write {}: {e}", self.rel));
    }

    /// Ends the gzip stream; the file as a raw-data entry.
    fn finish(mut self, run_dir: &Path, description: String) -> RawFile {
        if let Some(out) = self.out.take() {
            let ended = out.finish().and_then(|mut w| w.flush());
            if let Err(e) = ended {
                self.error
                    .get_or_insert_with(|| format!("cannot write {}: {e}", self.rel));
            }
        }
        RawFile {
            path: self.rel.to_owned(),
            kind: self.kind,
            description,
            bytes: size(&run_dir.join(self.rel)),
            records: self.records,
            compression: Some(Compression::Gzip),
            dropped: self.dropped,
            error: self.error,
        }
    }
}

/// What the writer thread is handed.
enum Record {
    Scrape(RawScrape),
    Export(RawExport),
    /// No more records: finish the files.
    Close,
}

/// Records that found the channel full, by file.
#[derive(Debug, Default)]
struct Dropped {
    scrapes: AtomicU64,
    exports: AtomicU64,
}

/// The sources' raw data, written to the run folder as it comes by a
/// writer thread; a [`RawSink`] for `sample`.
#[derive(Debug)]
pub struct RawArchive {
    tx: SyncSender<Record>,
    /// `None` once finished, or when no thread could be started (then
    /// there are no files: every record finds the channel closed).
    writer: Mutex<Option<JoinHandle<Vec<RawFile>>>>,
    dropped: Dropped,
}

impl RawArchive {
    /// Starts the writer thread for `run_dir`. Files are created when
    /// their first record comes: a run without scrapes has no
    /// `raw/metrics.txt.gz`.
    pub fn start(run_dir: &Path) -> RawArchive {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_RECORDS);
        let dir = run_dir.to_owned();
        let spawned = std::thread::Builder::new()
            .name("infercheck-raw".into())
            .spawn(move || Writer::new(dir).run(rx));
        RawArchive {
            tx,
            writer: Mutex::new(spawned.ok()),
            dropped: Dropped::default(),
        }
    }

    fn send(&self, record: Record, dropped: &AtomicU64) {
        match self.tx.try_send(record) {
            Ok(()) => {}
            // Relaxed: a count read once, after the writer has stopped.
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Stops the writer once it has written every record handed over so
    /// far, and returns the files it wrote (later records are dropped and
    /// counted). Blocks for as long as the writer needs to catch up.
    pub fn finish(&self) -> Vec<RawFile> {
        let Some(writer) = lock(&self.writer).take() else {
            return Vec::new();
        };
        let _ = self.tx.send(Record::Close);
        let mut files = writer.join().unwrap_or_default();
        for file in &mut files {
            let dropped = match file.kind {
                RawKind::MetricsScrapes => &self.dropped.scrapes,
                RawKind::PrometheusExport => &self.dropped.exports,
                _ => continue,
            };
            file.dropped += dropped.load(Ordering::Relaxed);
        }
        files
    }
}

impl RawSink for RawArchive {
    fn scrape(&self, scrape: RawScrape) {
        self.send(Record::Scrape(scrape), &self.dropped.scrapes);
    }

    fn export(&self, export: RawExport) {
        self.send(Record::Export(export), &self.dropped.exports);
    }
}

/// The writer thread's state: each file once its first record came.
struct Writer {
    dir: PathBuf,
    scrapes: Option<GzFile>,
    exports: Option<GzFile>,
    /// Distinct URLs scraped, scrapes without a body; queries exported,
    /// queries Prometheus did not answer, the export's steps.
    urls: Vec<String>,
    failed_scrapes: u64,
    queries: u64,
    failed_queries: u64,
    steps: Vec<f64>,
}

/// The most distinct URLs named in the scrapes' description.
const URLS_NAMED: usize = 8;

impl Writer {
    fn new(dir: PathBuf) -> Writer {
        Writer {
            dir,
            scrapes: None,
            exports: None,
            urls: Vec::new(),
            failed_scrapes: 0,
            queries: 0,
            failed_queries: 0,
            steps: Vec::new(),
        }
    }

    fn run(mut self, rx: Receiver<Record>) -> Vec<RawFile> {
        // Ends on Close, or when every sender is gone.
        while let Ok(record) = rx.recv() {
            match record {
                Record::Scrape(s) => self.scrape(s),
                Record::Export(e) => self.export(e),
                Record::Close => break,
            }
        }
        self.finish()
    }

    fn scrape(&mut self, scrape: RawScrape) {
        if self.urls.len() < URLS_NAMED && !self.urls.contains(&scrape.url) {
            self.urls.push(scrape.url.clone());
        }
        let at = scrape
            .at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut header = serde_json::json!({"at": at, "url": scrape.url});
        // A body is followed by a newline; a failed scrape has none.
        let (body, end): (&str, &[u8]) = match &scrape.body {
            Ok(body) => {
                header["bytes"] = body.len().into();
                (body, b"\n")
            }
            Err(error) => {
                self.failed_scrapes += 1;
                header["error"] = error.as_str().into();
                ("", b"")
            }
        };
        let header = format!("{SCRAPE_HEADER}{header}\n");
        let dir = &self.dir;
        self.scrapes
            .get_or_insert_with(|| GzFile::create(dir, METRICS_SCRAPES, RawKind::MetricsScrapes))
            .record(&[header.as_bytes(), body.as_bytes(), end]);
    }

    fn export(&mut self, export: RawExport) {
        self.queries += 1;
        if !self.steps.contains(&export.step_s) {
            self.steps.push(export.step_s);
        }
        let dir = &self.dir;
        let file = self.exports.get_or_insert_with(|| {
            GzFile::create(dir, PROMETHEUS_EXPORT, RawKind::PrometheusExport)
        });
        let mut line = serde_json::json!({
            "name": export.name,
            "query": export.query,
            "step_s": export.step_s,
        });
        let series = match export.series {
            Ok(series) => series,
            Err(error) => {
                self.failed_queries += 1;
                line["error"] = error.into();
                // An error line is not a series: it is not counted as one.
                file.write(&[line.to_string().as_bytes(), b"\n"]);
                return;
            }
        };
        for s in series {
            let values: Vec<(f64, String)> = s
                .values
                .iter()
                .map(|(t, v)| (*t, prometheus_value(*v)))
                .collect();
            line["metric"] = serde_json::json!(s.metric);
            line["values"] = serde_json::json!(values);
            file.record(&[line.to_string().as_bytes(), b"\n"]);
        }
    }

    fn finish(self) -> Vec<RawFile> {
        let mut files = Vec::new();
        if let Some(f) = self.scrapes {
            let failed = match self.failed_scrapes {
                0 => String::new(),
                n => format!("; {n} answered no body (header only)"),
            };
            let description = format!(
                "every /metrics body scraped from {}, each after a header line with its \
                 wall-clock time and URL{failed}",
                self.urls.join(", ")
            );
            files.push(f.finish(&self.dir, description));
        }
        if let Some(f) = self.exports {
            let steps: Vec<String> = self.steps.iter().map(|s| format!("{s}s")).collect();
            let failed = match self.failed_queries {
                0 => String::new(),
                n => format!("; {n} not answered (an error line each)"),
            };
            let description = format!(
                "every sampled query's series over the run's window as Prometheus exported \
                 them (range queries, step {}), one JSON line per series, {} queries{failed}",
                steps.join(", "),
                self.queries
            );
            files.push(f.finish(&self.dir, description));
        }
        files
    }
}

/// Writes the spans the look-ups found to `raw/spans.otlp.json.gz` under
/// `run_dir`; `None` when none was found.
pub fn write_spans(run_dir: &Path, found: &FoundSpans) -> Option<RawFile> {
    if found.traces() == 0 {
        return None;
    }
    let mut file = GzFile::create(run_dir, SPANS, RawKind::Spans);
    if let Some(out) = file.out.as_mut() {
        let written = found.write_otlp_json_lines(out).and_then(|_| out.flush());
        if let Err(e) = written {
            file.fail(e);
        }
    }
    let description = format!(
        "the spans of the {} traces the trace look-ups found, as OTLP JSON: one TracesData \
         per trace per line",
        found.traces()
    );
    let mut entry = file.finish(run_dir, description);
    entry.records = if entry.error.is_none() {
        found.spans() as u64
    } else {
        0
    };
    Some(entry)
}

/// `intervals.jsonl` as a raw-data entry.
pub fn intervals_entry(run_dir: &Path, lines: u64) -> RawFile {
    RawFile {
        path: "intervals.jsonl".to_owned(),
        kind: RawKind::Intervals,
        description: "one JSON line per second of the run: the client's figures and the \
                      server-side values sampled in it"
            .to_owned(),
        bytes: size(&run_dir.join("intervals.jsonl")),
        records: lines,
        compression: None,
        dropped: 0,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read as _;

    use super::*;
    use crate::sample::raw::RawSeries;

    fn gunzip(path: &Path) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    fn scrape(url: &str, body: Result<&str, &str>) -> RawScrape {
        RawScrape {
            at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            url: url.into(),
            body: body.map(str::to_owned).map_err(str::to_owned),
        }
    }

    #[test]
    fn the_run_log_has_every_line_after_its_time() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::create(dir.path());
        log.quiet(true).announce("plan p against http://x");
        log.append("summary\n\n  row");
        let text = fs::read_to_string(dir.path().join(RUN_LOG)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        for line in &lines {
            let (at, _) = line.split_once(' ').unwrap();
            assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{line}");
        }
        assert!(lines[0].ends_with(" infercheck: plan p against http://x"));
        assert!(lines[3].ends_with("   row"));
        let entry = log.entry(dir.path()).unwrap();
        assert_eq!((entry.records, entry.bytes), (4, text.len() as u64));
        assert_eq!(entry.error, None);
        assert!(RunLog::from(true).entry(dir.path()).is_none());
    }

    #[test]
    fn a_log_that_cannot_be_written_says_so_and_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        let log = RunLog::create(&missing);
        log.quiet(true).announce("still fine");
        let entry = log.entry(&missing).unwrap();
        assert_eq!(entry.records, 0);
        assert!(entry.error.unwrap().starts_with("cannot create"));
    }

    #[test]
    fn scrapes_and_exports_are_written_as_they_come() {
        let dir = tempfile::tempdir().unwrap();
        let archive = RawArchive::start(dir.path());
        archive.scrape(scrape("http://a/metrics", Ok("up 1\n")));
        archive.scrape(scrape("http://b/metrics", Err("HTTP 503")));
        let series = |v: f64| RawSeries {
            metric: BTreeMap::from([("job".to_owned(), "sim".to_owned())]),
            values: vec![(1_700_000_000.0, v), (1_700_000_001.0, f64::NAN)],
        };
        archive.export(RawExport {
            name: "running".into(),
            query: "sum(vllm:num_requests_running)".into(),
            step_s: 1.0,
            series: Ok(vec![series(2.0), series(3.5)]),
        });
        archive.export(RawExport {
            name: "kv".into(),
            query: "x".into(),
            step_s: 1.0,
            series: Err("timeout".into()),
        });
        let files = archive.finish();
        assert_eq!(files.len(), 2);
        let (scrapes, exports) = (&files[0], &files[1]);
        assert_eq!(
            (scrapes.kind, scrapes.records),
            (RawKind::MetricsScrapes, 2)
        );
        assert!(
            scrapes.description.contains("1 answered no body"),
            "{scrapes:?}"
        );
        let text = gunzip(&dir.path().join(METRICS_SCRAPES));
        assert_eq!(
            text,
            "# infercheck-scrape {\"at\":\"2023-11-14T22:13:20.000Z\",\"bytes\":5,\"url\":\"http://a/metrics\"}\n\
             up 1\n\n\
             # infercheck-scrape {\"at\":\"2023-11-14T22:13:20.000Z\",\"error\":\"HTTP 503\",\"url\":\"http://b/metrics\"}\n"
        );
        assert_eq!(scrapes.bytes, size(&dir.path().join(METRICS_SCRAPES)));
        assert_eq!(
            (exports.kind, exports.records),
            (RawKind::PrometheusExport, 2)
        );
        let lines: Vec<serde_json::Value> = gunzip(&dir.path().join(PROMETHEUS_EXPORT))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "two series and an error line");
        assert_eq!(
            lines[1]["values"][0],
            serde_json::json!([1_700_000_000.0, "3.5"])
        );
        assert_eq!(lines[1]["values"][1][1], "NaN");
        assert_eq!(lines[1]["metric"]["job"], "sim");
        assert_eq!(lines[2]["error"], "timeout");
        assert!(exports.description.contains("2 queries; 1 not answered"));
        // Once finished, nothing more is written and a second finish is empty.
        archive.scrape(scrape("http://a/metrics", Ok("late")));
        assert!(archive.finish().is_empty());
    }

    #[test]
    fn no_records_no_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(RawArchive::start(dir.path()).finish().is_empty());
        assert!(!dir.path().join("raw").exists());
        assert!(write_spans(dir.path(), &FoundSpans::default()).is_none());
    }

    #[test]
    fn a_folder_that_cannot_hold_the_files_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, "").unwrap();
        let archive = RawArchive::start(&not_a_dir);
        archive.scrape(scrape("http://a/metrics", Ok("up 1\n")));
        let files = archive.finish();
        assert_eq!((files[0].records, files[0].dropped), (0, 1));
        assert!(
            files[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("cannot create")
        );
    }
}
