//! `infercheck compare BASE NEW [NEW...]`: NEW judged against BASE with
//! the tolerances of NEW's plan (several NEW: repeated runs, judged
//! together with their spread). Exit 0 when nothing regressed, 4 when
//! something did, 2 when the runs are not comparable (unless `--force`),
//! 3 when a report cannot be read.

use std::io::Write;

use super::Failure;
use super::baseline::{self, Baseline};
use crate::analysis::regression::BaselineSource;
use crate::exit;
use crate::report::Format;

pub fn compare(args: &crate::cli::CompareArgs) -> Result<i32, Failure> {
    let base_path = baseline::report_path(&args.base);
    let base = Baseline {
        report: baseline::read(&base_path)?,
        source: BaselineSource {
            selected_by: "the command line".to_owned(),
            path: base_path.display().to_string(),
        },
    };
    let runs = args
        .new
        .iter()
        .map(|path| baseline::read(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut now = runs.last().cloned().expect("clap requires one NEW");
    if runs.len() > 1 {
        now.repeats = Some(crate::analysis::repeats::summarize(&runs));
    }
    let regression = baseline::compare(&base, &now, args.force)?;
    let regressed = regression.regressed().count() > 0;
    write(&regression, args.format)?;
    if let (Some(repeats), Format::Markdown) = (&now.repeats, args.format) {
        let _ = crate::report::render_repeats_markdown(repeats, &mut std::io::stdout().lock());
    }
    if let Some(path) = &args.junit {
        crate::analysis::regression::judge(&mut now.verdict, &regression);
        now.regression = Some(regression);
        let new_path = baseline::report_path(args.new.last().expect("clap requires one NEW"));
        let new_dir = new_path.parent().unwrap_or(std::path::Path::new("."));
        for problem in super::ci_outputs::write(&now, new_dir, Some(path)) {
            eprintln!("infercheck: {problem}");
        }
    }
    Ok(if regressed {
        exit::THRESHOLDS_FAILED
    } else {
        exit::OK
    })
}

fn write(regression: &crate::report::Regression, format: Format) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Json => serde_json::to_writer_pretty(&mut out, regression)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        Format::Markdown => crate::report::render_regression(regression, &mut out),
        other => {
            return Err(Failure::new(
                exit::USAGE,
                format!("compare writes md or json, not {}", other.extension()),
            ));
        }
    };
    written.map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))
}
