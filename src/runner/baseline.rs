//! The baseline a run or `compare` is judged against: found (a path, a
//! run folder, or `latest` / `latest-pass` through the history), read,
//! checked to be comparable, and compared (`analysis::regression`).

use std::path::{Path, PathBuf};

use super::Failure;
use crate::analysis::regression::{self, BaselineSource};
use crate::exit;
use crate::history::{History, Select};
use crate::plan::Plan;
use crate::plan::regression::Tolerance;
use crate::report::{Regression, Report};

/// A baseline read and ready to compare with.
pub struct Baseline {
    pub report: Report,
    pub source: BaselineSource,
}

/// The report.json of `path`: the file itself, or the one in a run folder.
pub fn report_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("report.json")
    } else {
        path.to_owned()
    }
}

/// Reads a report, or says which file could not be read (exit 3).
pub fn read(path: &Path) -> Result<Report, Failure> {
    super::output::read_report(&report_path(path)).map_err(Failure::io)
}

/// What `--baseline` found.
pub enum Found {
    Baseline(Box<Baseline>),
    /// `latest` / `latest-pass` with no such run yet (a first run, a
    /// fresh volume): the run goes on uncompared, and says so.
    NotYet(String),
}

/// Finds and reads the baseline `spec` names for plan `plan`: a path, or
/// `latest` / `latest-pass` through the history at `history`.
pub fn resolve(spec: &str, plan: &str, history: &Path) -> Result<Found, Failure> {
    let select = match spec {
        "latest" => Some(Select::Latest),
        "latest-pass" => Some(Select::LatestPass),
        _ => None,
    };
    let path = match select {
        None => report_path(Path::new(spec)),
        Some(select) => match from_history(select, plan, history)? {
            Ok(path) => path,
            Err(why) => {
                return Ok(Found::NotYet(format!(
                    "Not compared with a baseline: --baseline {spec} found {why}; this run is recorded and can be the next run's baseline."
                )));
            }
        },
    };
    let report = read(&path)?;
    Ok(Found::Baseline(Box::new(Baseline {
        report,
        source: BaselineSource {
            selected_by: spec.to_owned(),
            path: path.display().to_string(),
        },
    })))
}

/// The report path of the history's newest matching run, or why there is
/// none (no history yet, no such run).
fn from_history(
    select: Select,
    plan: &str,
    history: &Path,
) -> Result<Result<PathBuf, String>, Failure> {
    if !history.exists() {
        return Ok(Err(format!("no run history at {} yet", history.display())));
    }
    let db = History::open(history).map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    let entry = db
        .find(plan, select, None)
        .map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    Ok(entry.map(|e| e.report_path).ok_or_else(|| {
        format!(
            "no {}run of plan `{plan}` in the history at {}",
            if select == Select::LatestPass {
                "passing "
            } else {
                ""
            },
            history.display()
        )
    }))
}

/// Before any request: a baseline of another plan, target or model is
/// refused unless forced. Returns the differences compared past.
pub fn check_plan(baseline: &Baseline, plan: &Plan, force: bool) -> Result<Vec<String>, Failure> {
    let base = &baseline.report;
    let mut differences = Vec::new();
    if base.plan_name != plan.name {
        differences.push(format!(
            "the baseline ran plan `{}`, this run `{}`",
            base.plan_name, plan.name
        ));
    }
    let target = match &plan.target.base_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => "the embedded simulator".to_owned(),
    };
    let base_target = regression::target_identity(base);
    if base_target != target {
        differences.push(format!(
            "the baseline's target was {base_target}, this run's {target}"
        ));
    }
    let mut models: Vec<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    models.sort();
    let mut base_models: Vec<String> = base.models.iter().map(|m| m.model.clone()).collect();
    base_models.sort();
    if models != base_models {
        differences.push(format!(
            "the baseline requested {}, this run {}",
            base_models.join(", "),
            models.join(", ")
        ));
    }
    refuse_unless(force, &baseline.source.path, differences)
}

/// The differences, or the refusal naming them (exit 2).
pub fn refuse_unless(
    force: bool,
    path: &str,
    differences: Vec<String>,
) -> Result<Vec<String>, Failure> {
    if differences.is_empty() || force {
        return Ok(differences);
    }
    Err(Failure::new(
        exit::PLAN_INVALID,
        format!(
            "the baseline {path} is not comparable: {}; pass --force-baseline (compare: --force) to compare anyway",
            differences.join("; ")
        ),
    ))
}

/// The tolerances a finished report was run with (its plan's
/// `[regression]`), or the defaults for a report from before them.
pub fn tolerances(report: &Report) -> Vec<Tolerance> {
    report
        .plan
        .get("regression")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_else(crate::plan::regression::defaults)
}

/// `now` against the baseline, after the run: every difference (schema
/// included) refused unless forced.
pub fn compare(baseline: &Baseline, now: &Report, force: bool) -> Result<Regression, Failure> {
    let forced = refuse_unless(
        force,
        &baseline.source.path,
        regression::mismatches(&baseline.report, now),
    )?;
    Ok(regression::compare(
        &baseline.report,
        now,
        &tolerances(now),
        baseline.source.clone(),
        forced,
    ))
}
