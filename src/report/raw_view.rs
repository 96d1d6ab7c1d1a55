//! "Raw Data": the files the run folder keeps for a later re-analysis, as
//! one table row each (path, what it holds, size, records, compression),
//! and a line for every file that is incomplete.
//!
//! Pure: rows from `report.raw_data`, no I/O.

use super::format::count;
use super::model::Report;
use super::raw_model::RawFile;
use super::view::{Table, fact};

/// Said under the table: where the paths start and how to read the files.
pub(crate) const RAW_NOTE: &str = "Paths are relative to the run folder. \
     `zcat` reads the gzip files; each scrape in raw/metrics.txt.gz follows a \
     `# infercheck-scrape {…}` header line giving its time, URL and length.";

/// The table; `None` when the run kept no raw data (an old report).
pub(crate) fn table(report: &Report) -> Option<Table> {
    if report.raw_data.is_empty() {
        return None;
    }
    let mut table = Table::new(&["File", "Holds", "Size", "Records", "Compression"]);
    table.rows = report.raw_data.iter().map(cells).collect();
    Some(table)
}

fn cells(file: &RawFile) -> Vec<String> {
    vec![
        file.path.clone(),
        file.description.clone(),
        format!("{} bytes", count(file.bytes)),
        format!("{} {}", count(file.records), file.kind.records()),
        file.compression.map_or("none", |c| c.name()).to_owned(),
    ]
}

/// One line per file that is incomplete: records dropped or a write error.
pub(crate) fn problems(report: &Report) -> Vec<super::view::Fact> {
    report
        .raw_data
        .iter()
        .filter(|f| f.dropped > 0 || f.error.is_some())
        .map(|f| {
            let mut what = Vec::new();
            if f.dropped > 0 {
                what.push(format!(
                    "{} {} not kept",
                    count(f.dropped),
                    f.kind.records()
                ));
            }
            if let Some(e) = &f.error {
                what.push(format!("write error: {e}"));
            }
            fact(&format!("⚠️ {} is incomplete", f.path), what.join("; "))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::report_with;
    use crate::report::{Compression, RawKind};

    fn raw(path: &str, kind: RawKind, bytes: u64, records: u64) -> RawFile {
        RawFile {
            path: path.into(),
            kind,
            description: format!("{path} holds"),
            bytes,
            records,
            compression: path.ends_with(".gz").then_some(Compression::Gzip),
            ..RawFile::default()
        }
    }

    #[test]
    fn each_file_is_a_row_with_its_size_and_records() {
        let mut report = report_with(Vec::new());
        assert_eq!(table(&report), None);
        report.raw_data = vec![
            raw("run.log", RawKind::RunLog, 812, 9),
            raw("raw/metrics.txt.gz", RawKind::MetricsScrapes, 123_456, 24),
        ];
        let t = table(&report).unwrap();
        assert_eq!(t.headers.len(), 5);
        assert_eq!(
            t.rows[0],
            ["run.log", "run.log holds", "812 bytes", "9 lines", "none"]
        );
        assert_eq!(
            t.rows[1],
            [
                "raw/metrics.txt.gz",
                "raw/metrics.txt.gz holds",
                "123,456 bytes",
                "24 scrapes",
                "gzip"
            ]
        );
        assert!(problems(&report).is_empty());
    }

    #[test]
    fn an_incomplete_file_says_what_it_lacks() {
        let mut report = report_with(Vec::new());
        let mut file = raw("raw/metrics.txt.gz", RawKind::MetricsScrapes, 10, 3);
        file.dropped = 2;
        file.error = Some("No space left on device".into());
        report.raw_data = vec![file];
        let lines = problems(&report);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].label, "⚠️ raw/metrics.txt.gz is incomplete");
        assert_eq!(
            lines[0].value,
            "2 scrapes not kept; write error: No space left on device"
        );
    }
}
