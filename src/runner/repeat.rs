//! `--repeat N`: the plan run N times, one after another, each a run of
//! its own (folder, history entry, baseline comparison); then each
//! metric's spread across them (`analysis::repeats`) is added to the last
//! run's report, whose files are written again with it. The exit code is
//! the worst of the runs'.

use super::Failure;
use super::execute::{RunResult, run_once};
use crate::cli::RunArgs;
use crate::report::{Format, Report};

pub async fn run(args: RunArgs) -> Result<RunResult, Failure> {
    let mut reports = Vec::new();
    let mut last = None;
    let mut exit_code = crate::exit::OK;
    for i in 1..=args.repeat {
        if !args.quiet {
            eprintln!("infercheck: run {i} of {}", args.repeat);
        }
        let one = RunArgs {
            repeat: 1,
            ..args.clone()
        };
        let result = run_once(one).await?;
        exit_code = worst(exit_code, result.exit_code);
        reports.push(result.report.clone());
        last = Some(result);
    }
    let mut result = last.expect("--repeat is at least 1");
    result.report.repeats = Some(crate::analysis::repeats::summarize(&reports));
    rewrite(&result.dir, &result.report)?;
    let mut out = std::io::stdout().lock();
    let _ = crate::report::render_repeats(&result.report, &mut out);
    result.exit_code = exit_code;
    Ok(result)
}

/// The more severe of two exit codes (invalid 5 > could not run 3 >
/// failed 4 > ok 0 is not an order: a run that could not run or was
/// invalid outranks a failure).
fn worst(a: i32, b: i32) -> i32 {
    let rank = |code: i32| match code {
        0 => 0,
        4 => 1,
        5 => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Writes the last run's report files again, now with the spread.
fn rewrite(dir: &std::path::Path, report: &Report) -> Result<(), Failure> {
    for format in [Format::Json, Format::Markdown, Format::Html] {
        let path = dir.join(format!("report.{}", format.extension()));
        let written = std::fs::File::create(&path).and_then(|file| {
            let mut out = std::io::BufWriter::new(file);
            crate::report::render(report, format, &mut out)?;
            std::io::Write::flush(&mut out)
        });
        written.map_err(|e| {
            Failure::new(
                crate::exit::COULD_NOT_RUN,
                format!("cannot write {}: {e}", path.display()),
            )
        })?;
    }
    Ok(())
}
