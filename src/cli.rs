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
    Run(Box<RunArgs>),
    /// List the built-in plans.
    Plans,
    /// Serve the embedded vLLM-like simulator.
    ServeSim(Box<SimArgs>),
    /// Re-render a finished run's report.json.
    Report(ReportArgs),
    /// Check a Prometheus: every query of the chosen sets and every panel
    /// of the given dashboards returns data over the window (and if not,
    /// which metrics are missing and which have other labels), the rules'
    /// health, and each dashboard's response time as Grafana queries it.
    /// Exit 0 when everything passes, 4 when a check fails, 3 when
    /// Prometheus cannot be read, 2 when an input is invalid.
    Validate(ValidateArgs),
    /// Write the dashboards, alert rules (with their promtool tests and
    /// runbook), query sets, a Prometheus scrape-config snippet for
    /// infercheck's /metrics and Grafana provisioning files to a folder,
    /// from what the binary embeds.
    Assets(AssetsArgs),
    /// Judge a run against a baseline run: each headline metric's change
    /// with its confidence interval, against the tolerances of NEW's plan
    /// (`[regression]`). Exit 0 when nothing regressed, 4 when something
    /// did, 2 when the two runs are not comparable (unless --force).
    Compare(CompareArgs),
    /// List the runs of the history and the trend of their headline metrics.
    History(HistoryArgs),
}

#[derive(Clone, Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a report.json or a run folder.
    pub base: PathBuf,
    /// The run to judge: a report.json or a run folder. Several: repeated
    /// runs of the plan, judged together (each metric's mean and spread
    /// across them, the spread joining each change's interval), the last
    /// one's report standing for them.
    #[arg(required = true, num_args = 1..)]
    pub new: Vec<PathBuf>,
    /// Compare although the runs differ in plan, target, model or schema.
    #[arg(long)]
    pub force: bool,
    /// Output format: md or json.
    #[arg(long, default_value = "md")]
    pub format: Format,
    /// Also write the comparison as JUnit XML here.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
}

#[derive(Clone, Debug, Args)]
pub struct HistoryArgs {
    /// The history database (default: results/history.sqlite).
    #[arg(long, value_name = "PATH", default_value = "results/history.sqlite")]
    pub db: PathBuf,
    /// Only the runs of this plan.
    #[arg(long)]
    pub plan: Option<String>,
    /// At most this many runs, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct ValidateArgs {
    /// Prometheus base URL.
    #[arg(long, value_name = "URL")]
    pub prometheus: String,
    /// Grafana dashboard JSON files, or folders of them (repeatable).
    #[arg(long = "dashboards", value_name = "PATH")]
    pub dashboards: Vec<PathBuf>,
    /// Built-in query sets to check (queries/*.toml: vllm, sglang, tgi,
    /// llamacpp, triton, dcgm, node, router, infercheck; repeatable).
    #[arg(long = "query-set", value_name = "NAME")]
    pub query_sets: Vec<String>,
    /// How far back the data checks look.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub window: Duration,
    /// Leave the rules' health out.
    #[arg(long)]
    pub no_rules: bool,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Debug, Args)]
pub struct AssetsArgs {
    /// The folder to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Plan file or built-in plan name (see `infercheck plans`).
    #[arg(default_value = "smoke")]
    pub plan: String,
    /// Base URL of the target (default: the plan's, else the embedded simulator).
    #[arg(long, env = "INFERCHECK_TARGET")]
    pub target: Option<String>,
    /// Model name to request, replacing the plan's models.
    #[arg(long, env = "INFERCHECK_MODEL")]
    pub model: Option<String>,
    /// Every phase: a constant arrival rate (50, "50/s", "3000/m").
    #[arg(long, env = "INFERCHECK_RATE", value_parser = parse_rate,
          conflicts_with_all = ["concurrency", "users"], help_heading = "Plan overrides")]
    pub rate: Option<f64>,
    /// Every phase: exactly this many requests in flight.
    #[arg(long, env = "INFERCHECK_CONCURRENCY", value_parser = parse_count,
          conflicts_with = "users", help_heading = "Plan overrides")]
    pub concurrency: Option<usize>,
    /// Every phase: this many virtual users (closed loop, no think time).
    #[arg(long, env = "INFERCHECK_USERS", value_parser = parse_count,
          help_heading = "Plan overrides")]
    pub users: Option<usize>,
    /// Users started (and stopped) per second, as Locust's --spawn-rate.
    #[arg(long, env = "INFERCHECK_SPAWN_RATE", value_parser = parse_rate,
          help_heading = "Plan overrides")]
    pub spawn_rate: Option<f64>,
    /// Every phase's duration ("30s", "5m"); with --requests, its longest.
    #[arg(long, env = "INFERCHECK_DURATION", value_parser = parse_duration_text,
          help_heading = "Plan overrides")]
    pub duration: Option<String>,
    /// Every phase stops after this many requests.
    #[arg(long, env = "INFERCHECK_REQUESTS", value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Plan overrides")]
    pub requests: Option<u64>,
    /// Set any plan field: --set target.timeout=30s, --set
    /// phases.0.load.rate=20, --set 'phases.*.max_tokens=128' (repeatable;
    /// applied after the flags above, in order).
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::plan::overrides::parse_set,
          help_heading = "Plan overrides")]
    pub set: Vec<crate::plan::overrides::Override>,
    /// The overrides above whose value came from the environment (their
    /// ids), so the report names the variable. Filled by `main`.
    #[arg(skip)]
    pub from_env: Vec<String>,
    /// Root folder for results; each run writes <out>/<run id>/.
    #[arg(long, default_value = "results")]
    pub out: PathBuf,
    /// Multiply every phase duration (0.05 runs a 20-minute plan in 1 minute).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub duration_scale: f64,
    /// Do not print the live progress line.
    #[arg(long)]
    pub quiet: bool,
    /// Check trace coverage through an embedded OTLP/HTTP receiver listening
    /// here (e.g. 127.0.0.1:4318); point the target's OTLP exporter at it.
    #[arg(long, value_name = "ADDR")]
    pub otlp_listen: Option<SocketAddr>,
    /// Sample the plan's queries from this Prometheus server (default: read
    /// the target's /metrics directly).
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// Serve infercheck's own /metrics here while the run lasts.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Also sample this process's memory and CPU (e.g. the server's pid).
    #[arg(long, value_name = "PID")]
    pub target_pid: Option<u32>,
    /// The embedded simulator's configuration when the plan names no target
    /// (library callers and tests; it serves the plan's models). Not a flag.
    #[arg(skip)]
    pub simulator: Option<Box<crate::sim::SimConfig>>,
    /// Judge the run against a baseline: a report.json or run folder,
    /// `latest` (the plan's last run in the history) or `latest-pass` (its
    /// last passing run).
    #[arg(long, value_name = "PATH|latest|latest-pass")]
    pub baseline: Option<String>,
    /// Compare with a baseline of another plan, target, model or schema.
    #[arg(long)]
    pub force_baseline: bool,
    /// The run history database (default: <out>/history.sqlite).
    #[arg(long, value_name = "PATH")]
    pub history: Option<PathBuf>,
    /// Do not record this run in the history.
    #[arg(long)]
    pub no_history: bool,
    /// The version of the stack under test (e.g. its `git describe`),
    /// recorded in the history.
    #[arg(long, value_name = "TEXT")]
    pub stack_version: Option<String>,
    /// Also write JUnit XML here (each threshold and regression a case).
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Send the per-second client series live, and the headline results at
    /// the end, to this Prometheus remote-write endpoint.
    #[arg(long, value_name = "URL")]
    pub prometheus_remote_write: Option<String>,
    /// Run the plan this many times; the report gives each metric's mean
    /// and spread across the runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
}

impl RunArgs {
    pub fn new(plan: &str, out: PathBuf) -> Self {
        RunArgs {
            plan: plan.into(),
            target: None,
            model: None,
            rate: None,
            concurrency: None,
            users: None,
            spawn_rate: None,
            duration: None,
            requests: None,
            set: Vec::new(),
            from_env: Vec::new(),
            out,
            duration_scale: 1.0,
            quiet: true,
            otlp_listen: None,
            prometheus: None,
            metrics_listen: None,
            target_pid: None,
            simulator: None,
            baseline: None,
            force_baseline: false,
            history: None,
            no_history: false,
            stack_version: None,
            junit: None,
            prometheus_remote_write: None,
            repeat: 1,
        }
    }
}

#[derive(Clone, Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Seed for token text, fault draws and trace ids.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// A model to serve (repeat for several; each is 1.5x slower than the
    /// one before). Default: sim-llama-8b.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Shortest prefill: a first token comes no sooner after scheduling.
    #[arg(long, value_parser = parse_duration)]
    pub ttft: Option<Duration>,
    /// A decode step with one request in the batch (the gap between tokens).
    #[arg(long, value_parser = parse_duration)]
    pub per_token: Option<Duration>,
    /// Prefill cost per uncached prompt token, e.g. 15us.
    #[arg(long, value_parser = parse_duration)]
    pub prefill_per_token: Option<Duration>,
    /// Step growth per further request in the batch (0.01 = +1%).
    #[arg(long)]
    pub slowdown: Option<f64>,
    /// Requests in a batch at once; more wait in the queue.
    #[arg(long)]
    pub max_num_seqs: Option<usize>,
    /// KV-cache blocks per engine (16 tokens each); running out preempts.
    #[arg(long)]
    pub kv_blocks: Option<u32>,
    /// Export vllm:gpu_cache_usage_perc and time_per_output_token_seconds
    /// (older vLLM) instead of kv_cache_usage_perc (= --metric-naming vllm-legacy).
    #[arg(long)]
    pub legacy_metric_names: bool,
    /// Whose metric names /metrics uses: vllm, vllm-legacy or sglang.
    #[arg(long, value_parser = parse_metric_naming)]
    pub metric_naming: Option<crate::sim::MetricNaming>,
    /// Serve simulated DCGM exporter metrics on this address.
    #[arg(long)]
    pub dcgm_listen: Option<SocketAddr>,
    /// OTLP/HTTP endpoint for spans (default: OTEL_EXPORTER_OTLP_ENDPOINT).
    #[arg(long)]
    pub otlp_endpoint: Option<String>,
    /// Run N engines behind a router on --listen (router mode).
    #[arg(long, default_value_t = 1)]
    pub backends: usize,
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Faults injected by `serve-sim` (all also settable at run time through
/// `POST /admin/faults`).
#[derive(Clone, Debug, Default, Args)]
pub struct FaultArgs {
    /// Fraction of requests answered with an HTTP error (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status of injected errors (500, 503, 429, ...).
    #[arg(long, default_value_t = 500)]
    pub error_status: u16,
    /// Freeze the whole server this long after start...
    #[arg(long, value_parser = parse_duration, requires = "stall_for")]
    pub stall_after: Option<Duration>,
    /// ...for this long.
    #[arg(long, value_parser = parse_duration)]
    pub stall_for: Option<Duration>,
    /// Slow every engine step this long after start...
    #[arg(long, value_parser = parse_duration, requires = "spike_for")]
    pub spike_after: Option<Duration>,
    /// ...for this long...
    #[arg(long, value_parser = parse_duration)]
    pub spike_for: Option<Duration>,
    /// ...by this factor.
    #[arg(long, default_value_t = 5.0)]
    pub spike_factor: f64,
    /// Fraction of streams closed early without [DONE].
    #[arg(long, default_value_t = 0.0)]
    pub truncate_rate: f64,
    /// Fraction of streams ended by an SSE error event.
    #[arg(long, default_value_t = 0.0)]
    pub error_event_rate: f64,
    /// Fraction of streams whose connection is dropped mid-stream.
    #[arg(long, default_value_t = 0.0)]
    pub disconnect_rate: f64,
    /// Fraction of streams carrying one malformed SSE chunk.
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Fraction of child spans not exported.
    #[arg(long, default_value_t = 0.0)]
    pub span_drop_rate: f64,
    /// Fraction of whole traces not exported.
    #[arg(long, default_value_t = 0.0)]
    pub trace_drop_rate: f64,
    /// Keep decoding after the client disconnects (orphaned work).
    #[arg(long)]
    pub orphan_on_disconnect: bool,
    /// Answer /metrics this much later.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub metrics_delay: Duration,
    /// Fraction of /metrics scrapes answered 500.
    #[arg(long, default_value_t = 0.0)]
    pub metrics_error_rate: f64,
    /// Crash after this many completion requests.
    #[arg(long)]
    pub crash_after: Option<u64>,
    /// Delay of the first request to each model (weights loading).
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub cold_start: Duration,
    /// Answer 503 to a request that arrives while this many wait (load
    /// shedding past capacity).
    #[arg(long)]
    pub shed_when_waiting: Option<u64>,
    /// Share of generated tokens the generation-token counter leaves out
    /// (under-reporting metrics).
    #[arg(long, default_value_t = 0.0)]
    pub token_underreport: f64,
}

#[derive(Clone, Debug, Args)]
pub struct ReportArgs {
    /// A report.json written by `infercheck run`.
    pub result: PathBuf,
    /// Output format: md, html, json, csv or llm-d.
    #[arg(long, default_value = "md")]
    pub format: Format,
    /// For csv: the folder to write phases.csv, models.csv and
    /// intervals.csv into (default: print all three to stdout).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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
    crate::units::parse_duration(text)
}

/// A duration checked here, kept as written for the plan's text.
fn parse_duration_text(text: &str) -> Result<String, String> {
    crate::units::parse_duration(text).map(|_| text.trim().to_owned())
}

fn parse_rate(text: &str) -> Result<f64, String> {
    crate::units::parse_rate(text)
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "expected a whole number of at least 1, got \"{text}\""
        )),
    }
}

impl RunArgs {
    /// The plan edits the override flags stand for, each labelled as the
    /// user gave it: `--rate 50`, or `INFERCHECK_RATE=50` from the
    /// environment.
    pub fn plan_edits(&self) -> Vec<crate::plan::overrides::Override> {
        let flags = crate::plan::overrides::LoadFlags {
            rate: self.rate,
            concurrency: self.concurrency,
            users: self.users,
            spawn_rate: self.spawn_rate,
            duration: self.duration.clone(),
            requests: self.requests,
        };
        let label = |flag: &str, value: &str| {
            let id = flag.replace('-', "_");
            if self.from_env.contains(&id) {
                format!("INFERCHECK_{}={value}", id.to_uppercase())
            } else {
                format!("--{flag} {value}")
            }
        };
        let mut edits = flags.edits(label);
        edits.extend(self.set.iter().cloned());
        edits
    }
}

/// The ids of `run`'s arguments whose value came from the environment.
pub fn run_args_from_env(matches: &clap::ArgMatches) -> Vec<String> {
    let Some(("run", run)) = matches.subcommand() else {
        return Vec::new();
    };
    run.ids()
        .filter(|id| run.value_source(id.as_str()) == Some(clap::parser::ValueSource::EnvVariable))
        .map(|id| id.as_str().to_owned())
        .collect()
}

fn parse_metric_naming(text: &str) -> Result<crate::sim::MetricNaming, String> {
    crate::sim::MetricNaming::parse(text).ok_or_else(|| {
        let names: Vec<&str> = crate::sim::MetricNaming::ALL
            .iter()
            .map(|n| n.name())
            .collect();
        format!("expected one of {}", names.join(", "))
    })
}
