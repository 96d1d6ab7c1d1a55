//! The outputs a CI job reads after a judged run: the JUnit XML at the
//! path the user asked for (`--junit PATH`), and the GitHub Actions step
//! summary appended to `$GITHUB_STEP_SUMMARY` when the job defines it.
//!
//! Neither may fail the run: the report is already written and judged, so
//! a path that cannot be written comes back as a problem, in words, for
//! the runner to print; the exit code stays the verdict's.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::report::{Report, junit, step_summary};

/// The variable GitHub Actions names the step summary file in.
const STEP_SUMMARY_VAR: &str = "GITHUB_STEP_SUMMARY";

/// Writes the JUnit XML to `junit` when given (creating its folders) and
/// appends the step summary to `$GITHUB_STEP_SUMMARY` when that is set and
/// not empty. Returns what could not be written; empty when all went well.
/// `run_dir` is named under the summary, where the full report is.
pub fn write(report: &Report, run_dir: &Path, junit: Option<&Path>) -> Vec<String> {
    write_to(report, run_dir, junit, step_summary_file().as_deref())
}

/// [`write`] with the step summary file given rather than read from the
/// environment.
pub fn write_to(
    report: &Report,
    run_dir: &Path,
    junit: Option<&Path>,
    step_summary: Option<&Path>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = junit
        && let Err(e) = write_junit(report, path)
    {
        problems.push(format!(
            "cannot write the JUnit report to {}: {e}",
            path.display()
        ));
    }
    if let Some(path) = step_summary
        && let Err(e) = append_step_summary(report, run_dir, path)
    {
        problems.push(format!(
            "cannot append the step summary to {} (${STEP_SUMMARY_VAR}): {e}",
            path.display()
        ));
    }
    problems
}

/// `$GITHUB_STEP_SUMMARY`, unless unset or empty.
fn step_summary_file() -> Option<PathBuf> {
    std::env::var_os(STEP_SUMMARY_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn write_junit(report: &Report, path: &Path) -> std::io::Result<()> {
    let mut xml = Vec::new();
    junit::render(report, &mut xml)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, xml)
}

/// Appends, because every step of a job writes into the same file.
fn append_step_summary(report: &Report, run_dir: &Path, path: &Path) -> std::io::Result<()> {
    let mut text = Vec::new();
    step_summary::render(report, &mut text)?;
    writeln!(text, "Full report: `{}`", run_dir.display())?;
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    // Another step's summary may end without a line break.
    if file.metadata()?.len() > 0 {
        file.write_all(b"\n")?;
    }
    file.write_all(&text)
}
