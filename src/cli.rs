//! The command line. The only module that knows clap: it turns arguments
//! into plain [`Command`] values that tests can also build by hand.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::report::Format;

#[derive(Debug, Parser)]
#[command(
    name = "infercheck",
    version,
    about = "Load-test an LLM inference stack and check that its observability tells the truth"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan (a TOML file or a built-in name; default `smoke`).
    Run(RunArgs),
    /// List the built-in plans.
    Plans,
    /// Serve the embedded vLLM-like simulator.
    ServeSim(SimArgs),
    /// Re-render a finished run's report.json.
    Report(ReportArgs),
}

#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Plan file or built-in plan name (see `infercheck plans`).
    #[arg(default_value = "smoke")]
    pub plan: String,
    /// Base URL of the target (default: the plan's, else the embedded simulator).
    #[arg(long)]
    pub target: Option<String>,
    /// Model name to request, replacing the plan's models.
    #[arg(long)]
    pub model: Option<String>,
    /// Root folder for results; each run writes <out>/<run id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Multiply every phase duration (0.05 runs a 20-minute plan in 1 minute).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub duration_scale: f64,
    /// Do not print the live progress line.
    #[arg(long)]
    pub quiet: bool,
}

impl RunArgs {
    pub fn new(plan: &str, out: PathBuf) -> Self {
        RunArgs {
            plan: plan.into(),
            target: None,
            model: None,
            out,
            duration_scale: 1.0,
            quiet: true,
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Seed for token text and fault draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Base time to first token, e.g. 40ms.
    #[arg(long, default_value = "40ms", value_parser = parse_duration)]
    pub ttft: Duration,
    /// Base gap between output tokens, e.g. 10ms.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub per_token: Duration,
    /// Delay growth per additional running request (0.01 = +1%).
    #[arg(long, default_value_t = 0.01)]
    pub slowdown: f64,
    /// Requests decoding at once; more wait in the queue.
    #[arg(long, default_value_t = 256)]
    pub max_num_seqs: usize,
    /// Fraction of requests answered with an HTTP error (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status of injected errors.
    #[arg(long, default_value_t = 500)]
    pub error_status: u16,
}

#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// A report.json written by `infercheck run`.
    pub result: PathBuf,
    /// Output format: md, html or json.
    #[arg(long, default_value = "md")]
    pub format: Format,
}

fn parse_scale(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!(
            "invalid scale \"{text}\": expected a positive number like 0.05"
        )),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::plan::units::parse_duration(text)
}
