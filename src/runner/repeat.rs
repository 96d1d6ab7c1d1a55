//! `--repeat N`: the plan run N times, one after another, each a run of
//! its own (folder, history entry); then each metric's spread across them
//! (`analysis::repeats`) goes into the last run's report. A baseline is
//! found once, before the first run (so `latest-pass` never picks one of
//! the repeats), and the runs are judged against it together, in the last
//! run's report, where the spread across the runs joins each change's
//! interval. That report's files, history entry and JUnit are written
//! again; the exit code is the worst of the runs' and the comparison's.

use super::Failure;
use super::baseline::{self, Found};
use super::execute::{
    RunResult, against_baseline, history_path, into_history, load_plan, run_once,
};
use crate::cli::RunArgs;
use crate::report::{Format, Report};

pub async fn run(args: RunArgs) -> Result<RunResult, Failure> {
    let plan = load_plan(&args)?;
    let history = history_path(&args);
    let found = match &args.baseline {
        Some(spec) => Some(baseline::resolve(spec, &plan.name, &history)?),
        None => None,
    };
    if let Some(Found::Baseline(b)) = &found {
        baseline::check_plan(b, &plan, args.force_baseline)?;
    }
    let mut reports = Vec::new();
    let mut last = None;
    let mut exit_code = crate::exit::OK;
    for i in 1..=args.repeat {
        if !args.quiet {
            eprintln!("infercheck: run {i} of {}", args.repeat);
        }
        let one = RunArgs {
            repeat: 1,
            baseline: None,
            junit: None,
            ..args.clone()
        };
        let result = run_once(one).await?;
        exit_code = worst(exit_code, result.exit_code);
        let interrupted = result.report.verdict.outcome == crate::report::Outcome::Interrupted;
        reports.push(result.report.clone());
        last = Some(result);
        if interrupted {
            // A stop signal (or abort-on-fail) ends the set, not one run.
            break;
        }
    }
    let mut result = last.expect("--repeat is at least 1");
    let report = &mut result.report;
    report.repeats = Some(crate::analysis::repeats::summarize(&reports));
    match found {
        Some(Found::Baseline(b)) => against_baseline(report, &b, args.force_baseline),
        Some(Found::NotYet(why)) => report.notes.push(why),
        None => {}
    }
    if !args.no_history {
        into_history(report, &history, &result.dir, args.stack_version.as_deref());
    }
    rewrite(&result.dir, report)?;
    for problem in super::ci_outputs::write(report, &result.dir, args.junit.as_deref()) {
        eprintln!("infercheck: {problem}");
    }
    let mut out = std::io::stdout().lock();
    let _ = crate::report::render_repeats(report, &mut out);
    result.exit_code = worst(exit_code, report.verdict.exit_code);
    Ok(result)
}

/// The more severe of two exit codes: could not run (3) and invalid (5)
/// outrank failed (4), which outranks ok (0).
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
