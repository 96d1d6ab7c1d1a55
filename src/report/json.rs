//! `report.json`: the model itself, pretty-printed. It is the lossless
//! contract (`docs/report-schema.json`) that `infercheck report` and other
//! tools read back, so it must not add, drop or reshape anything: no
//! presentation logic belongs here.

use std::io::{self, Write};

use super::model::Report;

pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    // A trailing newline, so `cat` and diff tools treat it as a text file.
    out.write_all(b"\n")
}
