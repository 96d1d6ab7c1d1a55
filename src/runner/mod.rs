//! The runner: turns a [`Command`] into work and an exit code. It owns the
//! run's I/O — result files, the terminal, signals — and is the only place
//! that decides where output goes. Statistics come from `aggregate`,
//! judgement from `analysis`, text from `report`.

mod assets;
mod baseline;
pub mod ci_outputs;
mod compare_cmd;
mod cpu;
mod drills;
mod embedded;
mod execute;
mod history_cmd;
mod observe;
mod output;
mod own_metrics;
pub mod preflight;
mod progress;
mod raw_data;
mod remote_write;
mod repeat;
mod signals;
mod validate_cmd;
mod validation;

use std::io::Write;
use std::time::Duration;

pub use execute::{RunResult, run_plan};

use crate::cli::Command;
use crate::exit;

/// Runs one command and returns the process exit code. Errors are
/// printed to stderr with their whole context chain.
pub async fn run(command: Command) -> i32 {
    let result = match command {
        Command::Run(args) => run_plan(*args).await.map(|r| r.exit_code),
        Command::Plans => list_plans(),
        Command::ServeSim(args) => serve_sim(args).await,
        Command::Report(args) => rerender(&args),
        Command::Validate(args) => validate_cmd::validate(&args).await,
        Command::Assets(args) => write_assets(&args),
        Command::Compare(args) => compare_cmd::compare(&args),
        Command::History(args) => history_cmd::history(&args),
    };
    result.unwrap_or_else(|error| {
        eprintln!("error: {}", error.message);
        error.code
    })
}

/// An error that stops a command, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, error: impl std::fmt::Display) -> Self {
        Failure {
            code,
            message: error.to_string(),
        }
    }

    /// "could not run", with the whole chain of an anyhow error.
    pub fn io(error: anyhow::Error) -> Self {
        Failure {
            code: exit::COULD_NOT_RUN,
            message: format!("{error:#}"),
        }
    }
}

fn list_plans() -> Result<i32, Failure> {
    let mut out = std::io::stdout().lock();
    let mut suite = "";
    for plan in crate::plan::BUILTIN {
        if plan.suite != suite {
            let gap = if suite.is_empty() { "" } else { "\n" };
            let _ = writeln!(out, "{gap}{}:", plan.suite);
            suite = plan.suite;
        }
        let _ = writeln!(out, "{:<21} {}", plan.name, plan.description());
    }
    Ok(exit::OK)
}

async fn serve_sim(args: Box<crate::cli::SimArgs>) -> Result<i32, Failure> {
    let config = sim_config(&args);
    crate::sim::serve_until_ctrl_c(args.listen, config, args.backends)
        .await
        .map_err(|e| {
            Failure::new(
                exit::COULD_NOT_RUN,
                format!("cannot serve on {}: {e}", args.listen),
            )
        })?;
    Ok(exit::OK)
}

fn write_assets(args: &crate::cli::AssetsArgs) -> Result<i32, Failure> {
    let written =
        assets::write(&args.out, args.force).map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    let mut out = std::io::stdout().lock();
    for path in &written {
        let _ = writeln!(out, "{}", path.display());
    }
    Ok(exit::OK)
}

/// `infercheck report`: a finished run's report.json in another format, to
/// stdout; with `--out DIR` (csv only) as one file per table, whose paths
/// are printed.
fn rerender(args: &crate::cli::ReportArgs) -> Result<i32, Failure> {
    use crate::report::Format;
    let report = output::read_report(&args.result).map_err(Failure::io)?;
    match (&args.out, args.format) {
        (Some(dir), Format::Csv) => write_csv_tables(&report, dir),
        (Some(_), format) => Err(Failure::new(
            exit::USAGE,
            format!(
                "--out is for --format csv (one file per table); --format {} prints to stdout",
                format.extension()
            ),
        )),
        (None, format) => {
            let mut out = std::io::stdout().lock();
            crate::report::render(&report, format, &mut out)
                .map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
            Ok(exit::OK)
        }
    }
}

/// `DIR/phases.csv`, `DIR/models.csv` and `DIR/intervals.csv`.
fn write_csv_tables(report: &crate::report::Report, dir: &std::path::Path) -> Result<i32, Failure> {
    use crate::report::csv::{Table, render_table};
    let cannot = |path: &std::path::Path, e: std::io::Error| {
        Failure::new(
            exit::COULD_NOT_RUN,
            format!("cannot write {}: {e}", path.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| cannot(dir, e))?;
    let mut stdout = std::io::stdout().lock();
    for table in Table::ALL {
        let path = dir.join(table.file_name());
        let mut text = Vec::new();
        render_table(report, table, &mut text).map_err(|e| cannot(&path, e))?;
        std::fs::write(&path, text).map_err(|e| cannot(&path, e))?;
        let _ = writeln!(stdout, "{}", path.display());
    }
    Ok(exit::OK)
}

/// The simulator configuration the `serve-sim` flags describe.
fn sim_config(args: &crate::cli::SimArgs) -> crate::sim::SimConfig {
    let defaults = crate::sim::SimConfig::default().serving(&args.models);
    let f = &args.faults;
    let window = |after: Option<Duration>, length: Option<Duration>| Some((after?, length?));
    let faults = crate::sim::Faults {
        error_rate: f.error_rate,
        error_status: f.error_status,
        stall: window(f.stall_after, f.stall_for)
            .map(|(after, length)| crate::sim::Stall { after, length }),
        latency_spike: window(f.spike_after, f.spike_for).map(|(after, length)| {
            crate::sim::Spike {
                after,
                length,
                factor: f.spike_factor,
            }
        }),
        truncate_rate: f.truncate_rate,
        error_event_rate: f.error_event_rate,
        disconnect_rate: f.disconnect_rate,
        malformed_rate: f.malformed_rate,
        span_drop_rate: f.span_drop_rate,
        trace_drop_rate: f.trace_drop_rate,
        orphan_on_disconnect: f.orphan_on_disconnect,
        metrics_delay: f.metrics_delay,
        metrics_error_rate: f.metrics_error_rate,
        crash_after: f.crash_after,
        cold_start: f.cold_start,
        shed_when_waiting: f.shed_when_waiting,
        token_underreport: f.token_underreport,
    };
    crate::sim::SimConfig {
        seed: args.seed,
        ttft: args.ttft.unwrap_or(defaults.ttft),
        per_token: args.per_token.unwrap_or(defaults.per_token),
        prefill_per_token: args.prefill_per_token.unwrap_or(defaults.prefill_per_token),
        slowdown_per_running: args.slowdown.unwrap_or(defaults.slowdown_per_running),
        max_num_seqs: args.max_num_seqs.unwrap_or(defaults.max_num_seqs),
        kv_blocks: args.kv_blocks.unwrap_or(defaults.kv_blocks),
        metric_naming: match (args.metric_naming, args.legacy_metric_names) {
            (Some(naming), _) => naming,
            (None, true) => crate::sim::MetricNaming::VllmLegacy,
            (None, false) => defaults.metric_naming,
        },
        dcgm_listen: args.dcgm_listen,
        otlp_endpoint: args.otlp_endpoint.clone(),
        faults,
        ..defaults
    }
}
