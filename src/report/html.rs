//! `report.html`: one self-contained page — the sections of
//! [`super::document`] as HTML, plus the inline SVG charts of
//! [`super::chart`] (latency and throughput over time, p95 against
//! concurrency).
//!
//! The page loads nothing: inline CSS, no scripts, no fonts, no external
//! references, so it can be attached to a ticket or opened offline. Every
//! string from the model goes through [`esc`]. Like every renderer it must
//! not compute statistics, open files or read clocks; rows and numbers
//! come from [`super::view`].

use std::fmt::Write as _;
use std::io::{self, Write};

use super::chart;
use super::document::{Block, document};
use super::model::Report;
use super::view::{self, Fact, Table};

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:64rem;\
padding:0 1rem;color:#212529;line-height:1.45}\
h1{font-size:1.6rem}h2{border-bottom:1px solid #dee2e6;padding-bottom:.2rem;margin-top:2rem}\
table{border-collapse:collapse;margin:.6rem 0 1rem}\
th,td{border:1px solid #dee2e6;padding:.25rem .6rem;text-align:left;font-variant-numeric:tabular-nums}\
th{background:#f1f3f5}.pass{color:#2b8a3e}.fail{color:#c92a2a}.warn{color:#e67700}\
.meta,.note,footer{color:#495057;font-size:.9rem}.verdict{font-size:1.15rem;font-weight:600}\
svg{display:block;margin:.5rem 0 1rem;max-width:100%;height:auto}\
svg text{font-size:11px;fill:#495057}svg .title{font-size:13px;font-weight:600;fill:#212529}\
svg .grid{stroke:#e9ecef}svg .axis{stroke:#868e96}";

/// Writes the whole page.
pub(crate) fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut page = String::with_capacity(64 * 1024);
    head(report, &mut page);
    for block in document(report) {
        write_block(&block, report, &mut page);
    }
    footer(report, &mut page);
    out.write_all(page.as_bytes())
}

fn write_block(block: &Block, report: &Report, page: &mut String) {
    match block {
        Block::Heading(level, title) => {
            let _ = writeln!(page, "<h{level}>{}</h{level}>", esc(title));
        }
        Block::Facts(list) => facts(list, page),
        Block::List(items) => self::list(items, page),
        Block::Note(note) => {
            let _ = writeln!(page, "<p class=\"note\">{}</p>", esc(note));
        }
        Block::Table(t) => table(t, page),
        Block::HistoryChart => super::history_view::draw_chart(report, page),
        Block::Charts(title, kinds) => {
            if !kinds.iter().any(|k| chart::has_data(*k, report)) {
                return;
            }
            if let Some(title) = title {
                let _ = writeln!(page, "<h3>{}</h3>", esc(title));
            }
            for kind in kinds {
                chart::draw(*kind, report, page);
            }
        }
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn esc(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// The colour class of a cell that holds a PASS/FAIL mark.
fn mark_class(cell: &str) -> Option<&'static str> {
    if cell.starts_with('✅') {
        Some("pass")
    } else if cell.starts_with('❌') {
        Some("fail")
    } else if cell.starts_with('⚠') || cell.starts_with('⏹') {
        Some("warn")
    } else {
        None
    }
}

fn table(t: &Table, page: &mut String) {
    page.push_str("<table>\n<thead><tr>");
    for h in &t.headers {
        let _ = write!(page, "<th>{}</th>", esc(h));
    }
    page.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        page.push_str("<tr>");
        for cell in row {
            match mark_class(cell) {
                Some(class) => _ = write!(page, "<td class=\"{class}\">{}</td>", esc(cell)),
                None => _ = write!(page, "<td>{}</td>", esc(cell)),
            }
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n");
}

/// "Label: value" items; a value that starts with a PASS/FAIL mark is
/// coloured like the table cells, and a fact's details nest under it.
fn facts(items: &[Fact], page: &mut String) {
    page.push_str("<ul>\n");
    for f in items {
        let value = match mark_class(&f.value) {
            Some(class) => format!("<span class=\"{class}\">{}</span>", esc(&f.value)),
            None => esc(&f.value),
        };
        if f.value.is_empty() {
            let _ = write!(page, "<li><strong>{}</strong>", esc(&f.label));
        } else {
            let _ = write!(page, "<li><strong>{}</strong>: {value}", esc(&f.label));
        }
        if !f.details.is_empty() {
            page.push('\n');
            list(&f.details, page);
        }
        page.push_str("</li>\n");
    }
    page.push_str("</ul>\n");
}

fn list(items: &[String], page: &mut String) {
    if items.is_empty() {
        return;
    }
    page.push_str("<ul>\n");
    for item in items {
        let _ = writeln!(page, "<li>{}</li>", esc(item));
    }
    page.push_str("</ul>\n");
}

fn head(report: &Report, page: &mut String) {
    let title = esc(&format!("infercheck report — {}", report.plan_name));
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let (run_id, started, target) = view::run_line(report);
    let _ = writeln!(
        page,
        "<p class=\"meta\">Run <code>{}</code> · Started {} · Target {}</p>",
        esc(&run_id),
        esc(&started),
        esc(&target)
    );
}

fn footer(report: &Report, page: &mut String) {
    let streaming = if report.target.stream {
        "streaming"
    } else {
        "not streaming"
    };
    let _ = writeln!(
        page,
        "<footer>{} {} · report schema v{} · API {}, {}</footer>\n</body>\n</html>",
        esc(&report.tool.name),
        esc(&report.tool.version),
        report.schema_version,
        esc(&report.target.api),
        streaming
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        let cases = [
            ("plain", "plain"),
            (
                "<script>alert('x')</script>",
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
            ),
            ("a & \"b\"", "a &amp; &quot;b&quot;"),
        ];
        for (raw, want) in cases {
            assert_eq!(esc(raw), want);
        }
    }
}
