//! Plan errors a user can act on: the file, line and column, what was
//! expected and what was found, and a hint (rustc style).

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("cannot read plan file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(Box<Located>),
    #[error("no plan file or built-in plan named `{name}`; built-in plans: {available}")]
    UnknownPlan { name: String, available: String },
    #[error("invalid option {option}: {message}")]
    Option {
        option: &'static str,
        message: String,
    },
}

/// An error at a place in a plan's source text.
#[derive(Debug)]
pub struct Located {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending source line and the caret span under it.
    pub source_line: String,
    pub caret: (usize, usize),
    pub hint: Option<String>,
}

impl Located {
    /// Locates `span` (byte offsets) in `source`; no span points at 1:1.
    pub fn new(file: &str, source: &str, span: Option<Range<usize>>, message: String) -> Self {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let source_line = source[line_start..line_end].to_owned();
        let column = source[line_start..start].chars().count() + 1;
        let width = source[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        Located {
            file: file.to_owned(),
            line: source[..start].matches('\n').count() + 1,
            column,
            hint: hint_for(&message),
            message,
            source_line,
            caret: (column - 1, width),
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Hints for the messages serde and our parsers produce most often.
fn hint_for(message: &str) -> Option<String> {
    if message.contains("unknown field") || message.contains("unknown variant") {
        Some("docs/plan-format.md lists every field of every table".into())
    } else if message.contains("missing field") {
        Some("this table needs the field named above; see docs/plan-format.md".into())
    } else {
        None
    }
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        writeln!(f, "{}", self.message)?;
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.column)?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        let (offset, width) = self.caret;
        write!(f, "{pad} | {}{}", " ".repeat(offset), "^".repeat(width))?;
        if let Some(hint) = &self.hint {
            write!(f, "\n{pad} = hint: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_column_and_caret() {
        let source = "name = \"x\"\n[[phases]]\nduration = \"5x\"\n";
        let start = source.find("\"5x\"").unwrap();
        let err = Located::new(
            "p.toml",
            source,
            Some(start..start + 4),
            "invalid duration \"5x\"".into(),
        );
        assert_eq!((err.line, err.column), (3, 12));
        let text = err.to_string();
        assert!(text.contains("--> p.toml:3:12"), "{text}");
        assert!(
            text.contains("3 | duration = \"5x\"\n  |            ^^^^"),
            "{text}"
        );
    }

    #[test]
    fn unknown_fields_get_a_hint() {
        let err = Located::new(
            "p.toml",
            "rat = 1",
            Some(0..3),
            "unknown field `rat`".into(),
        );
        assert!(err.to_string().contains("hint: docs/plan-format.md"));
    }
}
