//! Reports: the serde [`model`] of a run and one renderer per format.
//!
//! Renderers write into `impl Write`; they never open files, read clocks or
//! compute statistics — everything they print is already in the model.
//! Only the runner decides where output goes.
//!
//! [`render`] writes `report.json` (the lossless contract, checked against
//! `docs/report-schema.json`), `report.md` or `report.html`;
//! [`render_summary`] writes the end-of-run terminal summary. The Markdown,
//! HTML and terminal renderers share their rows and unit formatting through
//! `view`, so the three never disagree on a number.

mod chart;
pub mod csv;
mod document;
mod explain_model;
mod explain_view;
mod format;
mod history_model;
mod history_view;
mod html;
mod json;
pub mod junit;
mod llmd;
mod markdown;
pub mod model;
mod observed;
mod observed_view;
mod placement;
mod raw_model;
mod raw_view;
mod regression_model;
mod regression_view;
mod repeat_model;
mod repeat_view;
mod routing_model;
mod routing_view;
mod server_model;
mod server_view;
mod session_model;
mod session_view;
pub mod step_summary;
mod task_view;
mod terminal;
#[cfg(test)]
pub(crate) mod test_report;
mod trace_model;
mod trace_view;
mod validation_model;
mod validation_view;
mod view;

use std::io;

pub use explain_model::*;
pub use history_model::*;
pub use model::*;
pub use observed::*;
pub use raw_model::*;
pub use regression_model::*;
pub use repeat_model::*;
pub use routing_model::*;
pub use server_model::*;
pub use session_model::*;
pub use trace_model::*;
pub use validation_model::*;

/// A report file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Markdown,
    Html,
    /// Per phase, per model and per interval tables for spreadsheets.
    Csv,
    /// The llm-d Benchmark Report, v0.2.1, as JSON (which YAML readers
    /// read too).
    LlmD,
}

impl Format {
    /// The file extension the runner gives this format: "json", "md", "html".
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "md",
            Format::Html => "html",
            Format::Csv => "csv",
            Format::LlmD => "json",
        }
    }
}

/// A format name that is not one of the choices; the message lists them.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format `{0}`: expected one of json, md, markdown, html, csv, llm-d")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "md" | "markdown" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            "csv" => Ok(Format::Csv),
            "llm-d" | "llmd" => Ok(Format::LlmD),
            _ => Err(UnknownFormat(name.to_owned())),
        }
    }
}

/// Writes `report` in `format`.
pub fn render(report: &Report, format: Format, out: &mut dyn io::Write) -> io::Result<()> {
    match format {
        Format::Json => json::render(report, out),
        Format::Markdown => markdown::render(report, out),
        Format::Html => html::render(report, out),
        Format::Csv => csv::render(report, out),
        Format::LlmD => llmd::render(report, out),
    }
}

/// End-of-run summary for a terminal (plain text, within 100 columns):
/// verdict, requests and errors by kind, achieved vs target rps, latency
/// percentiles (from the intended send) and service time, streaming times,
/// phases, thresholds and generator health. Where the report files went is
/// the runner's to print.
/// `infercheck validate`'s result as Markdown.
pub fn render_validation(v: &Validation, out: &mut dyn io::Write) -> io::Result<()> {
    markdown::render_section(|doc| document::validation(v, 1, doc), out)
}

/// `infercheck compare`'s result as Markdown.
pub fn render_regression(r: &Regression, out: &mut dyn io::Write) -> io::Result<()> {
    markdown::render_section(|doc| document::regression(r, 1, doc), out)
}

/// The "Repeated Runs" table on its own, as Markdown.
pub fn render_repeats_markdown(r: &Repeats, out: &mut dyn io::Write) -> io::Result<()> {
    markdown::render_section(|doc| document::repeats(r, 1, doc), out)
}

/// `--repeat N`'s table as plain text for the terminal.
pub fn render_repeats(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    terminal::render_repeats(report, out)
}

pub fn render_summary(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    terminal::render(report, out)
}
