//! One run of a plan: resolve, pick the target, drive the engine beside
//! the aggregator loop, write the results, judge.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Failure;
use super::baseline;
use super::cpu::{CpuMeter, cores_available};
use super::drills::Drills;
use super::embedded::EmbeddedSim;
use super::observe::{Observation, Ready, Sources};
use super::output::RunDir;
use super::progress::Progress;
use super::remote_write::{RemoteWrite, RunLabels, Sent};
use super::signals::StopSignals;
use crate::aggregate::Aggregator;
use crate::analysis::{self, RunRecord};
use crate::cli::RunArgs;
use crate::exit;
use crate::history::History;
use anyhow::Context as _;

use crate::clock::Clock;
use crate::load::{self, Client, Event, InFlight, Step, WorkerThreads};
use crate::plan::{Overrides, Plan};
use crate::report::{DrainReport, ObservedReport, Report, Scope, StatsBlock, Target, TraceReport};
use crate::sim::SimConfig;
use crate::stats::Series;
use crate::traces::{RunFacts, TraceSession};

/// What a finished run produced.
#[derive(Debug)]
pub struct RunResult {
    pub exit_code: i32,
    pub report: Report,
    pub dir: PathBuf,
}

/// Outcomes buffered between the workers and the aggregator.
const EVENT_BUFFER: usize = 16 * 1024;
/// How often the aggregator loop takes the events waiting for it.
const EVENT_DRAIN_PERIOD: Duration = Duration::from_millis(5);
/// Seconds of run after which abort-on-fail starts judging.
const ABORT_GRACE: Duration = Duration::from_secs(5);

/// Runs the plan (`--repeat N`: N times, then the spread across them).
pub async fn run_plan(args: RunArgs) -> Result<RunResult, Failure> {
    if args.repeat > 1 {
        return super::repeat::run(args).await;
    }
    run_once(args).await
}

/// One run of the plan, start to report.
pub(super) async fn run_once(args: RunArgs) -> Result<RunResult, Failure> {
    let plan = load_plan(&args)?;
    let plan = Arc::new(plan);
    // From here to the last file written, SIGINT and SIGTERM stop the run
    // (a second one at once).
    let signals = StopSignals::listen();
    let history_path = history_path(&args);
    let (baseline, no_baseline) = match &args.baseline {
        Some(spec) => match baseline::resolve(spec, &plan.name, &history_path)? {
            baseline::Found::Baseline(baseline) => {
                baseline::check_plan(&baseline, &plan, args.force_baseline)?;
                (Some(baseline), None)
            }
            baseline::Found::NotYet(why) => (None, Some(why)),
        },
        None => (None, None),
    };
    if plan.target.base_url.is_some() {
        super::preflight::check(&base_url_of(&plan), PREFLIGHT_TIMEOUT, &plan.target.access)
            .await
            .map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    }
    let traces = start_traces(&plan).await?;
    let otlp_endpoint = traces.as_ref().and_then(TraceSession::otlp_endpoint);
    let embedded = match &plan.target.base_url {
        Some(_) => None,
        None => Some(
            EmbeddedSim::start(
                embedded_config(&plan, &args, otlp_endpoint.clone()),
                plan.simulator
                    .as_ref()
                    .and_then(|s| s.backends)
                    .unwrap_or(1),
            )
            .map_err(|e| {
                Failure::new(
                    exit::COULD_NOT_RUN,
                    format!("cannot start the embedded simulator: {e}"),
                )
            })?,
        ),
    };
    let base_url = plan
        .target
        .base_url
        .clone()
        .or_else(|| embedded.as_ref().map(|s| s.base_url.clone()))
        .unwrap_or_default();
    let started = chrono::Utc::now();
    // Milliseconds and a random tag: runs of one plan started at once (a
    // history written by concurrent runs) get ids and folders of their own.
    let run_id = format!(
        "{}-{}-{:04x}",
        started.format("%Y%m%dT%H%M%S%3fZ"),
        plan.name,
        rand::random::<u16>()
    );
    let dir = RunDir::create(&args.out, &run_id).map_err(Failure::io)?;
    let client = Client::new(&plan, &base_url, plan.target.max_in_flight)
        .map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    dir.announce(
        args.quiet,
        &format!(
            "plan {} against {base_url} — results in {}",
            plan.name,
            dir.path.display()
        ),
    );
    if let (Some(endpoint), None) = (&otlp_endpoint, &embedded) {
        dir.announce(
            args.quiet,
            &format!("receiving spans (OTLP/HTTP) on {endpoint}/v1/traces"),
        );
    }
    let target = Target {
        base_url: base_url.clone(),
        api: plan.target.api.name().into(),
        stream: plan.target.stream,
        embedded_simulator: embedded.is_some(),
    };
    let sources = Sources {
        base_url: &base_url,
        dcgm_url: embedded.as_ref().and_then(|e| e.dcgm_url.as_deref()),
    };
    let remote_write = match &args.prometheus_remote_write {
        Some(url) => Some(
            RemoteWrite::start(url, remote_labels(&plan, &run_id, &target)).map_err(|e| {
                Failure::new(exit::USAGE, format!("--prometheus-remote-write: {e}"))
            })?,
        ),
        None => None,
    };
    let mut session = Session::new(plan.clone(), dir, !args.quiet, traces);
    session.drills =
        Drills::new(&plan, &session.steps, &base_url).map(|d| d.logging_to(session.dir.log(false)));
    session.remote_write = remote_write;
    let measured = session
        .measure(client, sources, &signals)
        .await
        .map_err(Failure::io)?;
    let write_failed = measured.write_failed.clone();
    // Stopping the simulator flushes its span exporter (into a receiver on
    // this runtime): wait for it off the async workers.
    let spans_flushed = embedded.is_some();
    let _ = tokio::task::spawn_blocking(move || drop(embedded)).await;
    let trace_report = session.check_traces(spans_flushed, args.quiet).await;
    let window = (
        started.timestamp(),
        (started + chrono::Duration::from_std(measured.elapsed).unwrap_or_default()).timestamp()
            + 1,
    );
    let drills = match session.drills.take() {
        Some(d) => d.finish(measured.elapsed.as_secs_f64()).await,
        None => (Vec::new(), Vec::new()),
    };
    let observed = session.finish_observing(window).await;
    let validation = super::validation::after_run(
        &plan,
        started,
        observed.as_ref().map(|(o, _)| o),
        drills,
        session.dir.log(args.quiet),
    )
    .await;
    let mut report = session.judge(
        run_id,
        started,
        target,
        measured,
        AfterLoad {
            traces: trace_report,
            observed,
            validation,
        },
    );
    if let Some(baseline) = &baseline {
        against_baseline(&mut report, baseline, args.force_baseline);
    }
    report.notes.extend(no_baseline);
    report.notes.extend(unverified_tls(&plan));
    if let Some(remote) = session.remote_write.take() {
        let sent = remote.finish(&report).await;
        report.notes.extend(remote_write_notes(&sent));
    }
    if !args.no_history {
        into_history(
            &mut report,
            &history_path,
            &session.dir.path,
            args.stack_version.as_deref(),
        );
    }
    if let Some(why) = &write_failed {
        report.verdict.reasons.insert(
            0,
            format!("the results folder stopped taking writes: {why}"),
        );
    }
    session.dir.finish_raw_data(&mut report);
    let files = match session.dir.write_reports(&report) {
        Ok(files) => files,
        Err(error) => return Err(unwritten_report(&report, write_failed, &error)),
    };
    for problem in super::ci_outputs::write(&report, &session.dir.path, args.junit.as_deref()) {
        eprintln!("infercheck: {problem}");
    }
    print_summary(&report, &files);
    Ok(RunResult {
        exit_code: report.verdict.exit_code,
        report,
        dir: session.dir.path.clone(),
    })
}

/// The reports could not be written: the summary goes to the terminal so
/// the measurement is not lost, and the failure names both what stopped
/// the load (if anything did) and what stopped the report.
fn unwritten_report(
    report: &Report,
    write_failed: Option<String>,
    error: &anyhow::Error,
) -> Failure {
    print_summary(report, &[]);
    let why = match write_failed {
        Some(first) => format!(
            "{first}; the load was stopped, and the report could not be written either: {error:#}"
        ),
        None => format!("{error:#}"),
    };
    Failure::new(exit::COULD_NOT_RUN, why)
}

/// The history's file in the results folder when `--history` names none.
const HISTORY_FILE: &str = "history.sqlite";
/// How long the target has to answer its pre-flight request.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);
/// Runs of the same plan the report's trend shows.
const TREND_RUNS: usize = 10;

/// The plan with the command line's overrides, resolved.
pub(super) fn load_plan(args: &RunArgs) -> Result<Plan, Failure> {
    let overrides = Overrides {
        target: args.target.clone(),
        model: args.model.clone(),
        duration_scale: args.duration_scale,
        otlp_listen: args.otlp_listen,
        observe: crate::plan::ObserveOverrides {
            prometheus: args.prometheus.clone(),
            metrics_listen: args.metrics_listen,
            target_pid: args.target_pid,
        },
        edits: args.plan_edits(),
    };
    crate::plan::load(&args.plan, &overrides).map_err(|e| Failure::new(exit::PLAN_INVALID, e))
}

/// `--history`, or the results folder's history file.
pub(super) fn history_path(args: &RunArgs) -> PathBuf {
    args.history
        .clone()
        .unwrap_or_else(|| args.out.join(HISTORY_FILE))
}

fn base_url_of(plan: &Plan) -> String {
    plan.target.base_url.clone().unwrap_or_default()
}

/// A note for each back-end reached without verifying its certificate.
fn unverified_tls(plan: &Plan) -> Vec<String> {
    let mut backends = vec![
        ("the target", &plan.target.access),
        ("Prometheus", &plan.observe.access),
    ];
    if let Some(traces) = &plan.traces {
        backends.push(("the trace backend", &traces.access));
    }
    backends
        .into_iter()
        .filter_map(|(what, access)| access.unverified_warning(what))
        .collect()
}

/// The report judged against its baseline: the Regression table, and a
/// regressed metric fails the run.
pub(super) fn against_baseline(report: &mut Report, baseline: &baseline::Baseline, force: bool) {
    match baseline::compare(baseline, report, force) {
        Ok(regression) => {
            crate::analysis::regression::judge(&mut report.verdict, &regression);
            report.regression = Some(regression);
        }
        Err(refused) => report.notes.push(format!(
            "Not compared with the baseline: {}",
            refused.message
        )),
    }
}

/// Records the finished run in the history and reads back its plan's
/// trend; a history that cannot be written is said, never fatal to the
/// results already measured.
pub(super) fn into_history(
    report: &mut Report,
    path: &std::path::Path,
    dir: &std::path::Path,
    stack: Option<&str>,
) {
    let recorded = History::open(path).and_then(|db| {
        db.record(report, &dir.join("report.json"), stack)?;
        db.trend(&report.plan_name, TREND_RUNS)
    });
    match recorded {
        Ok(trend) => report.history = Some(trend),
        Err(error) => {
            eprintln!("infercheck: the run history was not written: {error}");
            report
                .notes
                .push(format!("The run history was not written: {error}"));
        }
    }
}

fn remote_labels(plan: &Plan, run_id: &str, target: &Target) -> RunLabels {
    RunLabels {
        run_id: run_id.to_owned(),
        plan: plan.name.clone(),
        target: target.base_url.clone(),
        model: plan
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

fn remote_write_notes(sent: &Sent) -> Vec<String> {
    let mut notes = vec![format!(
        "Prometheus remote write: {} samples in {} requests.",
        sent.samples, sent.requests
    )];
    notes.extend(
        sent.errors
            .iter()
            .map(|e| format!("Prometheus remote write failed: {e}")),
    );
    notes
}

fn print_summary(report: &Report, files: &[PathBuf]) {
    let mut out = std::io::stdout().lock();
    let _ = crate::report::render_summary(report, &mut out);
    for file in files {
        let _ =
            std::io::Write::write_all(&mut out, format!("wrote {}\n", file.display()).as_bytes());
    }
}

/// A run in progress: the aggregator loop's state.
struct Session {
    plan: Arc<Plan>,
    steps: Vec<Vec<Step>>,
    aggregator: Aggregator,
    dir: RunDir,
    progress: Progress,
    cpu: CpuMeter,
    cpu_series: Series,
    /// Trace coverage state, when the plan has a `[traces]` table.
    traces: Option<TraceSession>,
    /// Server-side sampling, started with the load.
    observation: Option<Observation>,
    /// The plan's fault drills, injected as their phases start and end.
    drills: Option<Drills>,
    /// `--prometheus-remote-write`: each closed second sent live.
    remote_write: Option<super::remote_write::RemoteWrite>,
    /// The run clock's zero on the wall clock (remote-write timestamps).
    started_wall: chrono::DateTime<chrono::Utc>,
}

/// What was learnt after the load: trace coverage, the sampled server
/// side, the validator's checks.
struct AfterLoad {
    traces: Option<TraceReport>,
    observed: Option<(ObservedReport, Vec<Series>)>,
    validation: Option<crate::report::Validation>,
}

/// How the load ended.
struct Measured {
    elapsed: Duration,
    interrupted: bool,
    aborted_by: Option<String>,
    /// The drain window after the load, when the server was sampled.
    drain: Option<DrainReport>,
    /// Why the results folder stopped taking intervals, which stopped the
    /// load (the run is then interrupted: exit 3).
    write_failed: Option<String>,
}

impl Session {
    fn new(
        plan: Arc<Plan>,
        dir: RunDir,
        show_progress: bool,
        traces: Option<TraceSession>,
    ) -> Self {
        let steps = load::plan_steps(&plan);
        Session {
            aggregator: Aggregator::new(&plan, &steps),
            progress: Progress::new(show_progress, plan.total_duration()),
            steps,
            plan,
            dir,
            cpu: CpuMeter::new(),
            cpu_series: Series::new("generator_cpu", "cores"),
            traces,
            observation: None,
            drills: None,
            remote_write: None,
            started_wall: chrono::Utc::now(),
        }
    }

    /// Prepares sampling the server side (before the run clock starts).
    async fn prepare_observing(&self, sources: Sources<'_>) -> Ready {
        let raw = Some(self.dir.raw_sink());
        let ready = Ready::prepare_keeping(&self.plan, sources, raw).await;
        for error in ready.startup_errors() {
            self.dir.announce(false, error);
        }
        if let Some(addr) = ready.metrics_addr() {
            let line = format!("serving its own metrics on http://{addr}/metrics");
            self.dir.announce(false, &line);
        }
        ready
    }

    /// After the load: gaps filled, alerts read, the report's section.
    async fn finish_observing(
        &mut self,
        window: (i64, i64),
    ) -> Option<(ObservedReport, Vec<Series>)> {
        Some(self.observation.take()?.finish(window).await)
    }

    /// Drives the engine and folds its events until the last request is
    /// done; closes an interval every second; stops early on Ctrl-C or a
    /// failing threshold under abort-on-fail.
    async fn measure(
        &mut self,
        client: Client,
        sources: Sources<'_>,
        signals: &StopSignals,
    ) -> anyhow::Result<Measured> {
        // Everything that takes time to start starts before the run clock:
        // the first tickets are due at its zero.
        let ready = self.prepare_observing(sources).await;
        let threads = Arc::new(
            WorkerThreads::per_core().context("cannot start the engine's worker threads")?,
        );
        let clock = Clock::start();
        self.started_wall = chrono::Utc::now();
        self.observation = Some(ready.start(clock.at(Duration::ZERO)));
        let cancel = CancellationToken::new();
        let in_flight = Arc::new(InFlight::default());
        let (tx, mut rx) = mpsc::channel(EVENT_BUFFER);
        let drive = load::drive(
            self.plan.clone(),
            client,
            clock,
            cancel.clone(),
            in_flight.clone(),
            threads.clone(),
            tx,
        );
        let engine = tokio::spawn(drive);
        let mut ticker =
            tokio::time::interval_at(clock.at(Duration::from_secs(1)), Duration::from_secs(1));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut interrupted, mut aborted_by, mut write_failed) = (false, None, None);
        let mut drain = tokio::time::interval(EVENT_DRAIN_PERIOD);
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Events are drained on a short tick rather than awaited:
                // a receiver that is not waiting is never woken, so workers
                // hand outcomes over without a cross-thread wake-up each.
                _ = drain.tick() => {
                    if self.drain_events(&mut rx, &clock) {
                        break;
                    }
                }
                _ = ticker.tick() => {
                    self.drain_events(&mut rx, &clock);
                    if let Err(error) = self.close_interval(clock.now(), in_flight.get()) {
                        // Results can no longer be flushed: stop the load rather
                        // than keep sending unrecorded requests.
                        let why = format!("{error:#}");
                        self.dir.announce(false, &format!(
                            "{why}: stopping the load and writing the partial report"
                        ));
                        write_failed = Some(why);
                        interrupted = true;
                        cancel.cancel();
                    }
                    if aborted_by.is_none() && let Some(why) = self.abort_reason(clock.now()) {
                        aborted_by = Some(why);
                        interrupted = true;
                        cancel.cancel();
                    }
                }
                name = signals.stopped(), if !interrupted => {
                    self.dir.announce(false, &format!(
                        "{name}: stopping the load and writing the partial report (a second signal exits at once)"
                    ));
                    interrupted = true;
                    cancel.cancel();
                }
            }
        }
        let _ = engine.await;
        let elapsed = clock.now();
        // Stopping the threads joins them: do it off the async workers.
        let _ = tokio::task::spawn_blocking(move || drop(threads)).await;
        if let Err(error) = self.close_interval(elapsed, 0) {
            write_failed.get_or_insert(format!("{error:#}"));
            interrupted = true;
        }
        self.progress.finish();
        let drain = self.drain_server(&clock, elapsed, interrupted).await;
        Ok(Measured {
            elapsed,
            interrupted,
            aborted_by,
            drain,
            write_failed,
        })
    }

    /// The drain window after the load (none when the run was interrupted:
    /// the partial report is written at once).
    async fn drain_server(
        &mut self,
        clock: &Clock,
        load_end: Duration,
        interrupted: bool,
    ) -> Option<DrainReport> {
        let observation = self.observation.as_mut()?;
        let timeout = self.plan.observe.drain_timeout;
        if interrupted || timeout.is_zero() {
            return Some(DrainReport {
                timeout_s: timeout.as_secs_f64(),
                load_end_s: load_end.as_secs_f64(),
                skipped: Some(if interrupted {
                    "the run was interrupted".to_owned()
                } else {
                    "drain_timeout is 0".to_owned()
                }),
                ..DrainReport::default()
            });
        }
        let report = observation
            .drain(load_end.as_secs_f64(), timeout, || {
                clock.now().as_secs_f64()
            })
            .await;
        Some(report)
    }

    /// Folds every waiting event into the aggregator; true once the engine
    /// has hung up and nothing is left.
    fn drain_events(&mut self, rx: &mut mpsc::Receiver<Event>, clock: &Clock) -> bool {
        loop {
            match rx.try_recv() {
                Ok(event) => {
                    if let (Some(traces), Event::Outcome(outcome)) = (&mut self.traces, &event) {
                        traces.record(outcome, clock);
                    }
                    if let Some(drills) = &mut self.drills {
                        drills.on_event(&event);
                    }
                    if let Some(observation) = &self.observation {
                        observation.on_event(&event, &self.plan);
                    }
                    self.aggregator.record(event)
                }
                Err(mpsc::error::TryRecvError::Empty) => return false,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
    }

    fn close_interval(&mut self, now: Duration, in_flight: u64) -> anyhow::Result<()> {
        if let Some(cores) = self.cpu.sample() {
            self.cpu_series.push(now.as_secs_f64(), cores);
        }
        let interval = self.aggregator.close_interval(now, in_flight);
        if interval.duration_s >= 0.99 {
            self.progress.update(&interval);
        }
        if let Some(remote) = &self.remote_write {
            let wall = self.started_wall + chrono::Duration::from_std(now).unwrap_or_default();
            remote.interval(&interval, wall.timestamp_millis());
        }
        let sampled = match &mut self.observation {
            Some(observation) => observation.interval(&interval),
            None => Default::default(),
        };
        self.dir.append_interval(&interval, &sampled)
    }

    /// Under abort-on-fail, the first run-scope threshold failing on the
    /// statistics so far (NO DATA does not abort: data may still come).
    fn abort_reason(&self, now: Duration) -> Option<String> {
        if !self.plan.abort_on_fail || now < ABORT_GRACE {
            return None;
        }
        let stats = StatsBlock::from_set(&self.aggregator.overall(), now.as_secs_f64(), None);
        self.plan
            .thresholds
            .iter()
            .map(|t| analysis::evaluate(t, Scope::Run, &stats, None))
            .find(|r| r.status == crate::report::ThresholdStatus::Fail)
            .map(|r| format!("{} (achieved {})", r.expression, r.achieved_display))
    }

    /// After the load: the trace look-ups and their analysis.
    async fn check_traces(&mut self, spans_flushed: bool, quiet: bool) -> Option<TraceReport> {
        let traces = self.traces.take()?;
        let phases: Vec<String> = self.plan.phases.iter().map(|p| p.name.clone()).collect();
        let models: Vec<String> = self.plan.models.iter().map(|m| m.name.clone()).collect();
        let facts = RunFacts {
            phases: &phases,
            models: &models,
            spans_flushed,
        };
        let log = self.dir.log(quiet);
        let announce = |line: String| log.announce(&line);
        let (report, found) = traces.finish_keeping_spans(facts, &announce).await;
        self.dir.keep_spans(&found);
        Some(report)
    }

    fn judge(
        &self,
        run_id: String,
        started: chrono::DateTime<chrono::Utc>,
        target: Target,
        measured: Measured,
        AfterLoad {
            traces,
            observed,
            validation,
        }: AfterLoad,
    ) -> Report {
        let (observed, sampled_series) = match observed {
            Some((mut report, series)) => {
                report.drain = measured.drain;
                (Some(report), series)
            }
            None => (None, Vec::new()),
        };
        let ended = started + chrono::Duration::from_std(measured.elapsed).unwrap_or_default();
        let record = RunRecord {
            plan: &self.plan,
            steps: &self.steps,
            aggregator: &self.aggregator,
            run_id,
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ended_at: ended.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            elapsed_s: measured.elapsed.as_secs_f64(),
            target,
            interrupted: measured.interrupted,
            aborted_by: measured.aborted_by,
            generator_cpu: self.cpu_series.clone(),
            cores_available: cores_available(),
            traces,
            observed,
            sampled_series,
            validation,
        };
        analysis::build_report(&record)
    }
}

/// The embedded simulator serves the plan's models (the first at the
/// default speed, each further one slower), with the caller's settings if
/// any, and exports its spans to the embedded OTLP receiver if one runs.
fn embedded_config(plan: &Plan, args: &RunArgs, otlp_endpoint: Option<String>) -> SimConfig {
    let names: Vec<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    let mut config = args
        .simulator
        .as_deref()
        .cloned()
        .unwrap_or_default()
        .serving(&names);
    if let Some(settings) = &plan.simulator {
        apply_settings(&mut config, settings);
    }
    // Its simulated GPUs are sampled like a DCGM exporter's.
    if config.dcgm_listen.is_none() {
        config.dcgm_listen = Some(([127, 0, 0, 1], 0).into());
    }
    if otlp_endpoint.is_some() {
        config.otlp_endpoint = otlp_endpoint;
    }
    config
}

/// The plan's `[simulator]` settings, over the defaults.
fn apply_settings(config: &mut SimConfig, s: &crate::plan::simulator::SimulatorSettings) {
    fn set<T>(field: &mut T, value: Option<T>) {
        if let Some(v) = value {
            *field = v;
        }
    }
    set(&mut config.max_num_seqs, s.max_num_seqs);
    set(&mut config.kv_blocks, s.kv_blocks);
    set(&mut config.ttft, s.ttft);
    set(&mut config.per_token, s.per_token);
    set(&mut config.slowdown_per_running, s.slowdown);
    set(&mut config.seed, s.seed);
    set(&mut config.faults.error_rate, s.error_rate);
    set(
        &mut config.faults.orphan_on_disconnect,
        s.orphan_on_disconnect,
    );
    if s.shed_when_waiting.is_some() {
        config.faults.shed_when_waiting = s.shed_when_waiting;
    }
    if let Some(naming) = s
        .metric_naming
        .as_deref()
        .and_then(crate::sim::MetricNaming::parse)
    {
        config.metric_naming = naming;
    }
    set(
        &mut config.telemetry_faults.running_underreport,
        s.running_underreport,
    );
    set(
        &mut config.telemetry_faults.queue_time_misreport,
        s.queue_time_misreport,
    );
    if let Some((after, length, factor)) = s.spike {
        config.faults.latency_spike = Some(crate::sim::Spike {
            after: Duration::from_secs_f64(after),
            length: Duration::from_secs_f64(length),
            factor,
        });
    }
}

/// The trace session, when the plan checks trace coverage.
async fn start_traces(plan: &Plan) -> Result<Option<TraceSession>, Failure> {
    let Some(trace_plan) = &plan.traces else {
        return Ok(None);
    };
    TraceSession::start(trace_plan)
        .await
        .map(Some)
        .map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_plans_metric_namings_are_the_simulators() {
        let sim: Vec<&str> = crate::sim::MetricNaming::ALL
            .iter()
            .map(|n| n.name())
            .collect();
        assert_eq!(sim, crate::plan::simulator::METRIC_NAMINGS);
    }
}
