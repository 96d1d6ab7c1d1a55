//! The runs the report tests render, taken through the real path: a plan
//! resolved from TOML, its steps and open-loop arrivals from the real
//! schedule, a deterministic stream of engine events (`load::Event`)
//! folded by the real `Aggregator` with its per-second intervals,
//! server-side readings summarised by the real `SampledStore` into
//! `sample::observed_report`, trace look-ups analysed by the real
//! `traces::Coverage`, and the report built by `analysis::build_report`.
//!
//! Nothing here computes a figure, a threshold, a placement or a verdict:
//! change the analysis and the goldens change. Only the target's
//! behaviour is synthetic (an LCG, so the numbers are the same on every
//! machine and with every version of `rand`).

use std::sync::OnceLock;
use std::time::Duration;

use infercheck::aggregate::Aggregator;
use infercheck::analysis::{RunRecord, build_report};
use infercheck::load::{Event, Step, StepLoad, plan_steps};
use infercheck::otlp::{ReceivedSpan, SpanStatus};
use infercheck::outcome::{ErrorKind, Outcome, Slot};
use infercheck::plan::{Overrides, Plan, resolve_source};
use infercheck::report::{Report, Target};
use infercheck::sample::{AfterRun, Reading, SampledStore, observed_report};
use infercheck::stats::distribution::micros;
use infercheck::stats::{Aggregate, Histogram, Series};
use infercheck::traces::{Coverage, Lookup, Names, TracedRequest};

/// A tiny LCG: the golden files need the same numbers everywhere.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ms(v: f64) -> Duration {
    Duration::from_micros((v * 1000.0) as u64)
}

/// What the synthetic target does with the requests of one step.
#[derive(Clone, Copy)]
struct Shape {
    /// Extra wait before the first token (queueing under load), at most.
    queue_ms: f64,
    /// Chance that a request fails, and how.
    error_rate: f64,
    error: ErrorKind,
    streaming: bool,
}

/// One request sent at `intended_ms` on the run clock; its inter-token
/// gaps go into `itl` (the worker's histogram for its step and model).
fn request(
    rng: &mut Lcg,
    slot: Slot,
    intended_ms: f64,
    shape: Shape,
    itl: &mut Histogram,
) -> Outcome {
    let lag = if rng.unit() < 0.02 {
        12.0 + 10.0 * rng.unit()
    } else {
        0.2 + 1.5 * rng.unit()
    };
    let sent = intended_ms + lag;
    let ttft = 35.0 + shape.queue_ms * rng.unit() + 30.0 * rng.unit();
    let tokens = 24 + (rng.unit() * 40.0) as u32;
    let per_token = if slot.model == 0 { 9.0 } else { 7.5 } + 1.5 * rng.unit();
    let first = sent + ttft;
    let last = first + per_token * f64::from(tokens - 1);
    let failed = rng.unit() < shape.error_rate;
    let end = match (failed, shape.error) {
        (true, ErrorKind::Timeout) => sent + 5_000.0,
        (true, _) => sent + 20.0 + 10.0 * rng.unit(),
        (false, _) => last + 1.5,
    };
    let streamed = shape.streaming && !failed;
    if streamed {
        for _ in 1..tokens {
            itl.record(micros(ms(per_token * (0.8 + 0.4 * rng.unit()))));
        }
    }
    Outcome {
        slot,
        intended: ms(intended_ms),
        sent: ms(sent),
        first_token: streamed.then(|| ms(first)),
        last_token: streamed.then(|| ms(last)),
        end: ms(end),
        output_tokens: if failed { 0 } else { tokens },
        tokens_from_usage: rng.unit() > 0.01,
        itl_from_usage: streamed,
        prompt_tokens: (!failed).then_some(16),
        status: match (failed, shape.error) {
            (true, ErrorKind::Http5xx) => 503,
            (true, _) => 0,
            (false, _) => 200,
        },
        error: failed.then_some(shape.error),
        in_flight: 0,
        worker_was_ready: true,
        trace_id: 0,
        other_model: false,
        checks_run: 0,
        checks_failed: 0,
        turn: 0,
        last_turn: false,
        session_start: Duration::ZERO,
    }
}

fn pick_model(rng: &mut Lcg, weights: &[f64]) -> u16 {
    let mut x = rng.unit();
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i as u16;
        }
        x -= w;
    }
    (weights.len() - 1) as u16
}

/// Everything one step sent, with its workers' ITL per model.
struct StepRun {
    outcomes: Vec<Outcome>,
    itl: Vec<Histogram>,
}

/// The requests of one step starting at `start_ms`: the schedule's
/// arrivals for an open step, `users` back-to-back senders for a closed
/// one (each sends again when its last request ended).
fn run_step(
    rng: &mut Lcg,
    slot: Slot,
    step: &Step,
    start_ms: f64,
    shape: Shape,
    weights: &[f64],
) -> StepRun {
    let mut itl = vec![Histogram::new(); weights.len()];
    let mut outcomes = Vec::new();
    let end_ms = start_ms + step.duration.as_secs_f64() * 1000.0;
    let mut send = |rng: &mut Lcg, at_ms: f64, outcomes: &mut Vec<Outcome>| {
        let model = pick_model(rng, weights);
        let o = request(
            rng,
            Slot { model, ..slot },
            at_ms,
            shape,
            &mut itl[usize::from(model)],
        );
        outcomes.push(o);
        o.end.as_secs_f64() * 1000.0
    };
    match &step.load {
        StepLoad::Open(arrivals) => {
            for at in arrivals.iter(step.duration) {
                send(rng, start_ms + at.as_secs_f64() * 1000.0, &mut outcomes);
            }
        }
        StepLoad::Closed { users, .. } => {
            for user in 0..*users {
                let mut t = start_ms + user as f64 * 3.0;
                while t < end_ms {
                    t = send(rng, t, &mut outcomes);
                }
            }
        }
        StepLoad::Pause => {}
    }
    StepRun { outcomes, itl }
}

/// What the synthetic run produced.
struct Recorded {
    events: Vec<(f64, Event)>,
    outcomes: Vec<Outcome>,
    elapsed_s: f64,
}

/// Every event of the plan's steps in run-clock order, as the engine
/// sends them: StepStarted, outcomes as they end, the step's ITL and
/// StepFinished when its last request is done.
fn record(plan: &Plan, steps: &[Vec<Step>], shape: fn(usize, usize) -> Shape) -> Recorded {
    let mut rng = Lcg(0x1f2e_3d4c);
    let weights: Vec<f64> = plan.models.iter().map(|m| m.weight).collect();
    let (mut events, mut all) = (Vec::new(), Vec::new());
    let mut start_ms = 0.0;
    for (p, phase_steps) in steps.iter().enumerate() {
        for (s, step) in phase_steps.iter().enumerate() {
            let (phase, index) = (p as u16, s as u16);
            let slot = Slot {
                phase,
                step: index,
                model: 0,
                task: 0,
            };
            events.push((
                start_ms,
                Event::StepStarted {
                    phase,
                    step: index,
                    at: ms(start_ms),
                },
            ));
            let run = run_step(&mut rng, slot, step, start_ms, shape(p, s), &weights);
            let last_ms = run
                .outcomes
                .iter()
                .map(|o| o.end.as_secs_f64() * 1000.0)
                .fold(start_ms, f64::max);
            for o in &run.outcomes {
                events.push((o.end.as_secs_f64() * 1000.0, Event::Outcome(*o)));
            }
            for (model, histogram) in run.itl.into_iter().enumerate() {
                let slot = Slot {
                    model: model as u16,
                    ..slot
                };
                events.push((last_ms, Event::Itl { slot, histogram }));
            }
            events.push((
                last_ms,
                Event::StepFinished {
                    phase,
                    step: index,
                    at: ms(last_ms),
                    unsent: 0,
                },
            ));
            all.extend(run.outcomes);
            // Closed steps do not overlap: the next starts when this is done.
            let planned = start_ms + step.duration.as_secs_f64() * 1000.0;
            start_ms = if step.concurrency().is_some() {
                last_ms.max(planned)
            } else {
                planned
            };
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let elapsed_s = events.last().map_or(0.0, |(t, _)| t / 1000.0);
    Recorded {
        events,
        outcomes: all,
        elapsed_s,
    }
}

/// Requests in flight at `t_ms` (sent, not yet ended), the send included.
fn in_flight(outcomes: &[Outcome], t: Duration) -> u32 {
    outcomes.iter().filter(|o| o.sent <= t && o.end > t).count() as u32
}

/// Folds the events into the real aggregator, closing an interval every
/// second of the run clock and the last, partial one at the end.
fn aggregate(plan: &Plan, steps: &[Vec<Step>], recorded: Recorded) -> Aggregator {
    let mut agg = Aggregator::new(plan, steps);
    let mut next_second = 1.0;
    for (t_ms, event) in recorded.events {
        while t_ms / 1000.0 > next_second {
            let now = Duration::from_secs_f64(next_second);
            agg.close_interval(now, u64::from(in_flight(&recorded.outcomes, now)));
            next_second += 1.0;
        }
        let event = match event {
            Event::Outcome(o) => Event::Outcome(Outcome {
                in_flight: in_flight(&recorded.outcomes, o.sent).max(1),
                ..o
            }),
            other => other,
        };
        agg.record(event);
    }
    agg.close_interval(Duration::from_secs_f64(recorded.elapsed_s), 0);
    agg
}

/// The generator's CPU, sampled once a second around `cores`.
fn cpu_series(run_s: f64, cores: f64) -> Series {
    let mut cpu = Series::new("generator_cpu", "cores");
    for second in 1..=run_s as u64 {
        cpu.push(second as f64, cores + 0.02 * (second % 7) as f64);
    }
    cpu
}

/// Server-side readings, one a second, as a direct scrape of the target
/// and its DCGM exporter delivers them, and the host's.
fn sampled(
    aggregator: &Aggregator,
    run_s: f64,
) -> (infercheck::report::ObservedReport, Vec<Series>) {
    let mut store = SampledStore::default();
    let gib = 1024.0 * 1024.0 * 1024.0;
    for (i, second) in aggregator
        .intervals
        .iter()
        .filter(|i| i.duration_s >= 0.99)
        .enumerate()
    {
        let load = second.in_flight as f64;
        let values: [(&str, &str, Option<f64>, Aggregate, &str); 8] = [
            (
                "gpu_util",
                "ratio",
                Some((0.3 + 0.03 * load).min(0.97)),
                Aggregate::Max,
                "scrape",
            ),
            (
                "vram_used",
                "bytes",
                Some(15.0 * gib + 0.05 * gib * load),
                Aggregate::Max,
                "scrape",
            ),
            (
                "vram_free",
                "bytes",
                Some(9.0 * gib - 0.05 * gib * load),
                Aggregate::Min,
                "scrape",
            ),
            (
                "kv_usage",
                "ratio",
                Some((0.04 * load).min(1.0)),
                Aggregate::Max,
                "scrape",
            ),
            (
                "queue_depth",
                "count",
                Some((load - 8.0).max(0.0)),
                Aggregate::Max,
                "scrape",
            ),
            // A custom query that the target stopped exporting halfway.
            (
                "router_backlog",
                "count",
                (i < 20).then_some((load / 4.0).floor()),
                Aggregate::Max,
                "scrape",
            ),
            (
                "cpu_load",
                "cores",
                Some(0.4 + 0.02 * load),
                Aggregate::Avg,
                "host",
            ),
            ("memory_used", "ratio", Some(0.52), Aggregate::Max, "host"),
        ];
        for (name, unit, value, aggregate, source) in values {
            store.add(Reading {
                name: name.to_owned(),
                unit,
                t: second.t,
                value,
                aggregate,
                query_latency_ms: None,
                source,
            });
        }
    }
    let _ = run_s;
    let sources = vec![
        "scrape http://127.0.0.1:8000/metrics, http://127.0.0.1:9400/metrics".to_owned(),
        "host".to_owned(),
    ];
    let gpu = Some("GPU: not available (libnvidia-ml.so.1 not found)".to_owned());
    let report = observed_report(
        &store,
        sources,
        Duration::from_secs(1),
        AfterRun::default(),
        gpu,
    );
    (report, store.series())
}

/// The spans the target's trace backend holds for one traced request:
/// engine → queue, prefill, decode, each child dropped with `drop_rate`;
/// `None` when the whole trace was lost (`lost_rate`).
fn spans(
    rng: &mut Lcg,
    o: &Outcome,
    trace_id: u128,
    drop_rate: f64,
    lost_rate: f64,
) -> Option<Vec<ReceivedSpan>> {
    if rng.unit() < lost_rate {
        return None;
    }
    let nanos = |d: Duration| d.as_nanos() as u64;
    let (start, end) = (
        nanos(o.sent) + 300_000,
        nanos(o.end).saturating_sub(200_000),
    );
    let first = o.first_token.map_or(end, nanos);
    let span = |id: u64, parent: Option<u64>, name: &str, from: u64, to: u64| ReceivedSpan {
        trace_id,
        span_id: id,
        parent_span_id: parent,
        name: name.to_owned(),
        service_name: "vllm".to_owned(),
        start_unix_nanos: from,
        end_unix_nanos: to.max(from),
        status: SpanStatus::Unset,
        attributes: Vec::new(),
    };
    let queued = start + (first - start) / 3;
    let mut all = vec![span(1, None, "engine", start, end)];
    let children = [
        ("queue", start, queued),
        ("prefill", queued, first),
        ("decode", first, end),
    ];
    for (i, (name, from, to)) in children.into_iter().enumerate() {
        if rng.unit() >= drop_rate {
            all.push(span(2 + i as u64, Some(1), name, from, to));
        }
    }
    Some(all)
}

/// Every request's trace looked up in a backend that lost some, analysed
/// by the real coverage analysis; the session's facts around it.
fn traces(
    plan: &Plan,
    outcomes: &[Outcome],
    drop_rate: f64,
    lost_rate: f64,
) -> infercheck::report::TraceReport {
    let required = plan
        .traces
        .as_ref()
        .map(|t| t.required_spans.clone())
        .unwrap_or_default();
    let phases: Vec<String> = plan.phases.iter().map(|p| p.name.clone()).collect();
    let models: Vec<String> = plan.models.iter().map(|m| m.name.clone()).collect();
    let mut coverage = Coverage::new(Names {
        required_spans: &required,
        phases: &phases,
        models: &models,
    });
    let mut rng = Lcg(0xdead_beef);
    for (i, o) in outcomes.iter().enumerate() {
        let trace_id = 0x00c0_ffee_0000_0000_0000_0000_0000_0000 + i as u128 + 1;
        let request = TracedRequest {
            trace_id,
            phase: o.slot.phase,
            model: o.slot.model,
            error: o.error,
            latency: o.latency(),
            service_time: o.service_time(),
        };
        let lookup = match spans(&mut rng, o, trace_id, drop_rate, lost_rate) {
            Some(spans) => Lookup::Found(spans),
            None => Lookup::Missing,
        };
        coverage.add(&request, &lookup);
    }
    let mut report = coverage.finish(false);
    report.backend = "embedded OTLP receiver".to_owned();
    report.endpoint = "http://127.0.0.1:4318".to_owned();
    report.sample_fraction = 1.0;
    report.traced_requests = outcomes.len() as u64;
    report
}

/// What a case decides; the real path derives the rest.
struct Case {
    plan: &'static str,
    shape: fn(usize, usize) -> Shape,
    /// Generator CPU in cores, sampled once a second.
    cpu_cores: f64,
    /// (child span drop rate, lost trace rate), when traces are checked.
    traces: Option<(f64, f64)>,
    sampled: bool,
}

fn run(case: Case) -> Report {
    let plan = resolve_source("plan.toml", case.plan, None, &Overrides::default())
        .unwrap_or_else(|e| panic!("the fixture's plan: {e}"));
    let steps = plan_steps(&plan);
    let recorded = record(&plan, &steps, case.shape);
    let outcomes = recorded.outcomes.clone();
    let elapsed_s = recorded.elapsed_s;
    let aggregator = aggregate(&plan, &steps, recorded);
    let (observed, sampled_series) = match case.sampled {
        true => {
            let (report, series) = sampled(&aggregator, elapsed_s);
            (Some(report), series)
        }
        false => (None, Vec::new()),
    };
    let traces = case
        .traces
        .map(|(drop, lost)| traces(&plan, &outcomes, drop, lost));
    let record = RunRecord {
        plan: &plan,
        steps: &steps,
        aggregator: &aggregator,
        run_id: format!("20250930T140000Z-{}", plan.name),
        started_at: "2025-09-30T14:00:00.000Z".to_owned(),
        ended_at: "2025-09-30T14:01:30.000Z".to_owned(),
        elapsed_s,
        target: Target {
            base_url: "http://127.0.0.1:8000".to_owned(),
            api: plan.target.api.name().to_owned(),
            stream: plan.target.stream,
            embedded_simulator: plan.target.base_url.is_none(),
        },
        interrupted: false,
        aborted_by: None,
        generator_cpu: cpu_series(elapsed_s, case.cpu_cores),
        cores_available: 2,
        traces,
        observed,
        sampled_series,
        validation: None,
    };
    build_report(&record)
}

// ---------------------------------------------------------------------------
// The cases

/// A release check against two models: a warm-up, then a concurrency
/// sweep that queues, with thresholds of every kind and scope — request
/// statistics that pass, fail and have no data; sampled values on fixed
/// rows (`max(gpu_util)`, `max(queue_depth)`) and off them (`avg(gpu_util)`,
/// `max(kv_usage)`, a custom query that lost its series); trace coverage.
const SWEEP_PLAN: &str = r#"
name = "staging-sweep"
thresholds = [
    "p95(latency) < 1500ms", "p99(latency) < 1s", "error_rate < 1%", "timeout_rate < 2%",
    "p95(ttft) < 800ms", "p95(itl) < 50ms", "p99(tpot) < 20ms",
    "max(gpu_util) < 80%", "avg(gpu_util) < 60%", "max(kv_usage) < 50%",
    "max(queue_depth) < 10", "max(router_backlog) < 5", "max(gpu_temp) < 80",
    "trace_coverage >= 95%", "missing_spans == 0",
]

[target]
stream = true

[[models]]
name = "llama-3.1-8b-instruct"
weight = 70

[[models]]
name = "qwen2.5-7b-instruct"
weight = 30
thresholds = ["error_rate < 2%"]

[[phases]]
name = "warmup"
duration = "30s"
load = { type = "constant", rate = 10 }
thresholds = ["p95(latency) < 1s", "peak_rps >= 15"]

[[phases]]
name = "sweep"
load = { type = "sweep", levels = [4, 8, 16], step_duration = "20s" }

[traces]
required_spans = ["engine", "queue", "prefill", "decode"]

[[observe.query]]
name = "router_backlog"
promql = "sum(router_queue_depth)"
unit = "count"
aggregate = "max"
"#;

fn sweep_shape(phase: usize, step: usize) -> Shape {
    match (phase, step) {
        (0, _) => Shape {
            queue_ms: 20.0,
            error_rate: 0.01,
            error: ErrorKind::Http5xx,
            streaming: true,
        },
        (_, level) => Shape {
            queue_ms: 60.0 * (1 << level) as f64,
            error_rate: 0.01 * level as f64,
            error: ErrorKind::Timeout,
            streaming: true,
        },
    }
}

/// A case's report, built once per test process (a debug build spends a
/// while encoding the lossless histograms) and cloned for each test.
fn once(cell: &'static OnceLock<Report>, case: fn() -> Case) -> Report {
    cell.get_or_init(|| run(case())).clone()
}

/// The sweep: fails some thresholds, so the verdict is FAIL (exit 4).
pub(crate) fn sweep_case() -> Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    once(&REPORT, || Case {
        plan: SWEEP_PLAN,
        shape: sweep_shape,
        cpu_cores: 0.4,
        traces: Some((0.02, 0.03)),
        sampled: true,
    })
}

/// A smoke run whose generator was CPU-bound (INVALID, exit 5), not
/// streaming; its traces are checked without a trace threshold, so the
/// Trace Coverage row shows the figure and no status.
const SMOKE_PLAN: &str = r#"
name = "smoke"
thresholds = ["p95(latency) < 2s", "error_rate < 1%"]

[target]
stream = false

[[phases]]
name = "smoke"
duration = "20s"
load = { type = "constant", rate = 5 }

[traces]
"#;

fn smoke_shape(_: usize, _: usize) -> Shape {
    Shape {
        queue_ms: 10.0,
        error_rate: 0.0,
        error: ErrorKind::Http5xx,
        streaming: false,
    }
}

pub(crate) fn invalid_case() -> Report {
    static REPORT: OnceLock<Report> = OnceLock::new();
    once(&REPORT, || Case {
        plan: SMOKE_PLAN,
        shape: smoke_shape,
        cpu_cores: 1.95,
        traces: Some((0.0, 0.1)),
        sampled: false,
    })
}

/// Every case, by the name of its golden folder.
pub(crate) fn cases() -> Vec<(&'static str, Report)> {
    vec![
        ("sweep_fail", sweep_case()),
        ("smoke_invalid", invalid_case()),
    ]
}
