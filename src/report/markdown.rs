//! `report.md`: the report as the Markdown tables users write by hand
//! today (examples/000 and 001), for a PR or a wiki page.
//!
//! Owns only Markdown syntax and escaping; the sections come from
//! [`super::document`] and every number and row from [`super::view`], so
//! the Markdown, HTML and terminal renderers agree.
//! It must not compute statistics, open files or read clocks.

use std::io::{self, Write};

use super::document::{Block, document};
use super::model::Report;
use super::view::{self, Fact, Table};

/// Writes the whole report.
pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    header(report, out)?;
    for block in document(report) {
        write_block(&block, out)?;
    }
    footer(report, out)
}

/// One section on its own, as a command prints it: `build` adds its
/// blocks at heading level 1.
pub(crate) fn render_section(
    build: impl FnOnce(&mut Vec<Block>),
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut doc = Vec::new();
    build(&mut doc);
    for block in &doc {
        write_block(block, out)?;
    }
    Ok(())
}

fn write_block(block: &Block, out: &mut dyn Write) -> io::Result<()> {
    match block {
        Block::Heading(level, title) => {
            let hashes = "#".repeat(usize::from(*level));
            writeln!(out, "{hashes} {}", text(title))?;
            writeln!(out)
        }
        Block::Facts(list) => {
            facts(list, out)?;
            writeln!(out)
        }
        Block::List(items) => {
            for item in items {
                writeln!(out, "- {}", text(item))?;
            }
            writeln!(out)
        }
        Block::Note(note) => {
            writeln!(out, "> {note}")?;
            writeln!(out)
        }
        Block::Table(t) => table(t, out),
        Block::Charts(..) | Block::HistoryChart => Ok(()),
    }
}

/// Neutralises text from the model for Markdown: a `<` that could open an
/// HTML tag becomes `&lt;` (so a plan named `<script>` stays text), `|`
/// is escaped so it cannot split a table cell, and line breaks become
/// spaces so they cannot end a list item or a row. Everything else is left
/// as written, so targets such as "< 950ms" read naturally in the source.
pub(crate) fn text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '<' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || "/!?".contains(*n)) =>
            {
                out.push_str("&lt;");
            }
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}

fn table(t: &Table, out: &mut dyn Write) -> io::Result<()> {
    let row = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().map(|c| text(c)).collect();
        format!("| {} |", cells.join(" | "))
    };
    writeln!(out, "{}", row(&t.headers))?;
    // The separator of examples/001: left-aligned columns.
    writeln!(out, "|{}", " :--- |".repeat(t.headers.len()))?;
    for cells in &t.rows {
        writeln!(out, "{}", row(cells))?;
    }
    writeln!(out)
}

fn facts(list: &[Fact], out: &mut dyn Write) -> io::Result<()> {
    for f in list {
        if f.value.is_empty() {
            writeln!(out, "- **{}**", text(&f.label))?;
        } else {
            writeln!(out, "- **{}**: {}", text(&f.label), text(&f.value))?;
        }
        sub_list(&f.details, out)?;
    }
    Ok(())
}

fn sub_list(items: &[String], out: &mut dyn Write) -> io::Result<()> {
    for item in items {
        writeln!(out, "  - {}", text(item))?;
    }
    Ok(())
}

fn header(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let (run_id, started, target) = view::run_line(report);
    writeln!(out, "# infercheck report — {}", text(&report.plan_name))?;
    writeln!(out)?;
    writeln!(
        out,
        "**Run** {} · **Started** {} · **Target** {}",
        text(&run_id),
        text(&started),
        text(&target)
    )?;
    writeln!(out)
}

fn footer(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let streaming = if report.target.stream {
        "streaming"
    } else {
        "not streaming"
    };
    writeln!(out, "---")?;
    writeln!(
        out,
        "*{} {} · report schema v{} · API {}, {}*",
        text(&report.tool.name),
        text(&report.tool.version),
        report.schema_version,
        text(&report.target.api),
        streaming
    )
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn text_escapes_only_what_markdown_would_misread() {
        let cases = [
            ("stress-sweep", "stress-sweep"),
            ("< 950ms", "< 950ms"),
            (
                "<script>alert(1)</script>",
                "&lt;script>alert(1)&lt;/script>",
            ),
            ("<!-- hidden -->", "&lt;!-- hidden -->"),
            ("a | b", "a \\| b"),
            ("two\nlines", "two lines"),
        ];
        for (raw, want) in cases {
            assert_eq!(text(raw), want, "{raw}");
        }
    }
}
