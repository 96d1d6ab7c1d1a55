//! The synthetic run the report tests render: deterministic request
//! outcomes recorded into `MetricSet`s and summarised with
//! `StatsBlock::from_set`, as the aggregator does.

use std::time::Duration;

use infercheck::load::{ErrorKind, Outcome, Slot};
use infercheck::report::{
    self, GeneratorHealth, IntervalSummary, ModelReport, PhaseReport, Report, StatsBlock,
    StepReport, Summary, Target, ThresholdResult, ThresholdStatus, Tool, Verdict,
};
use infercheck::stats::{Histogram, MetricSet, Quantiles, Series};

// ---------------------------------------------------------------------------
// A deterministic synthetic run

/// A tiny LCG: the golden files need the same numbers on every machine and
/// with every version of `rand`.
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

struct StepSpec {
    label: &'static str,
    concurrency: Option<u64>,
    start_s: f64,
    duration_s: f64,
}

struct PhaseSpec {
    name: &'static str,
    load: &'static str,
    target_rps: Option<f64>,
    steps: Vec<StepSpec>,
}

/// What the synthetic target does with one request.
struct Shape {
    /// Extra wait before the first token (queueing under load).
    queue_ms: f64,
    /// Chance that the request fails, and how.
    error_rate: f64,
    error: ErrorKind,
    streaming: bool,
}

/// Simulates one request sent at `intended_ms`.
fn request(rng: &mut Lcg, slot: Slot, intended_ms: f64, shape: &Shape) -> (Outcome, bool) {
    let late = rng.unit() < 0.02;
    let lag = if late {
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
    let outcome = Outcome {
        slot,
        intended: ms(intended_ms),
        sent: ms(sent),
        first_token: streamed.then(|| ms(first)),
        last_token: streamed.then(|| ms(last)),
        end: ms(end),
        output_tokens: if failed { 0 } else { tokens },
        tokens_from_usage: rng.unit() > 0.01,
        status: match (failed, shape.error) {
            (true, ErrorKind::Http5xx) => 503,
            (true, _) => 0,
            (false, _) => 200,
        },
        error: failed.then_some(shape.error),
        in_flight: 1,
        worker_was_ready: true,
        trace_id: 0,
    };
    (outcome, late)
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

/// An open-loop step: one arrival every 1/rate seconds.
fn open_step(
    rng: &mut Lcg,
    slot: Slot,
    step: &StepSpec,
    rate: f64,
    shape: &Shape,
    weights: &[f64],
) -> Vec<(Outcome, bool)> {
    let n = (step.duration_s * rate) as usize;
    (0..n)
        .map(|i| {
            let slot = Slot {
                model: pick_model(rng, weights),
                ..slot
            };
            request(rng, slot, (step.start_s + i as f64 / rate) * 1000.0, shape)
        })
        .collect()
}

/// A closed-loop step: `c` users, each sending again as soon as its last
/// request ended, until the step's end.
fn closed_step(
    rng: &mut Lcg,
    slot: Slot,
    step: &StepSpec,
    shape: &Shape,
    weights: &[f64],
) -> Vec<(Outcome, bool)> {
    let end_ms = (step.start_s + step.duration_s) * 1000.0;
    let mut all = Vec::new();
    for user in 0..step.concurrency.unwrap_or(1) {
        let mut t = step.start_s * 1000.0 + user as f64 * 3.0;
        while t < end_ms {
            let slot = Slot {
                model: pick_model(rng, weights),
                ..slot
            };
            let (outcome, late) = request(rng, slot, t, shape);
            t = outcome.end.as_secs_f64() * 1000.0;
            all.push((outcome, late));
        }
    }
    all
}

/// Every group the report summarises, filled by `MetricSet::record`.
#[derive(Default)]
struct Sets {
    overall: MetricSet,
    phases: Vec<MetricSet>,
    steps: Vec<Vec<MetricSet>>,
    models: Vec<MetricSet>,
    phase_models: Vec<Vec<MetricSet>>,
}

fn record_all(outcomes: &[(Outcome, bool)], phases: &[PhaseSpec], models: usize) -> Sets {
    let mut sets = Sets {
        phases: vec![MetricSet::default(); phases.len()],
        steps: phases
            .iter()
            .map(|p| vec![MetricSet::default(); p.steps.len()])
            .collect(),
        models: vec![MetricSet::default(); models],
        phase_models: vec![vec![MetricSet::default(); models]; phases.len()],
        ..Sets::default()
    };
    for (o, late) in outcomes {
        let (p, s, m) = (
            o.slot.phase as usize,
            o.slot.step as usize,
            o.slot.model as usize,
        );
        sets.overall.record(o, *late);
        sets.phases[p].record(o, *late);
        sets.steps[p][s].record(o, *late);
        sets.models[m].record(o, *late);
        sets.phase_models[p][m].record(o, *late);
    }
    sets
}

/// One summary per second of the run, as the aggregator streams them.
fn intervals(
    outcomes: &[(Outcome, bool)],
    phases: &[PhaseSpec],
    run_s: f64,
) -> Vec<IntervalSummary> {
    let phase_at = |t: f64| {
        phases
            .iter()
            .rev()
            .find(|p| p.steps[0].start_s < t)
            .unwrap_or(&phases[0])
    };
    (1..=run_s.ceil() as u64)
        .map(|second| {
            let t = second as f64;
            let mut set = MetricSet::default();
            let mut in_flight = 0;
            for (o, late) in outcomes {
                let (sent, end) = (o.sent.as_secs_f64(), o.end.as_secs_f64());
                if end > t - 1.0 && end <= t {
                    set.record(o, *late);
                }
                in_flight += u64::from(sent <= t && end > t);
            }
            interval(t, phase_at(t), &set, in_flight)
        })
        .collect()
}

fn interval(t: f64, phase: &PhaseSpec, set: &MetricSet, in_flight: u64) -> IntervalSummary {
    let q = |h: &Histogram, q: f64| h.quantile(q).map(|v| v as f64 / 1000.0);
    IntervalSummary {
        t,
        duration_s: 1.0,
        phase: phase.name.to_owned(),
        requests: set.requests,
        ok: set.ok,
        errors: set.error_count(),
        rps: set.requests as f64,
        target_rps: phase.target_rps,
        in_flight,
        output_tokens: set.output_tokens,
        latency_p50_ms: q(&set.latency, 0.50),
        latency_p95_ms: q(&set.latency, 0.95),
        latency_p99_ms: q(&set.latency, 0.99),
        ttft_p95_ms: q(&set.ttft, 0.95),
        schedule_lag_p99_ms: q(&set.schedule_lag, 0.99),
    }
}

fn phase_reports(
    specs: &[PhaseSpec],
    sets: &Sets,
    models: &[(&str, f64)],
    ivals: &[IntervalSummary],
) -> Vec<PhaseReport> {
    specs
        .iter()
        .enumerate()
        .map(|(p, spec)| {
            let secs: f64 = spec.steps.iter().map(|s| s.duration_s).sum();
            let steps = spec
                .steps
                .iter()
                .zip(&sets.steps[p])
                .map(|(s, set)| StepReport {
                    label: s.label.to_owned(),
                    concurrency: s.concurrency,
                    stats: StatsBlock::from_set(set, s.duration_s, spec.target_rps),
                    gpu_util_avg: None,
                    vram_max_bytes: None,
                });
            let in_phase = ivals.iter().filter(|i| i.phase == spec.name);
            PhaseReport {
                name: spec.name.to_owned(),
                load: spec.load.to_owned(),
                planned_duration_s: secs,
                stats: StatsBlock::from_set(&sets.phases[p], secs, spec.target_rps),
                steps: steps.collect(),
                models: model_reports(models, &sets.phase_models[p], secs),
                peak_concurrency: in_phase.map(|i| i.in_flight).max().unwrap_or(0),
            }
        })
        .collect()
}

/// A threshold of a plan: (scope, expression, label, target), labelled
/// the way `plan::threshold` labels it.
type ThresholdSpec = (&'static str, &'static str, &'static str, &'static str);

/// The value a threshold measures in `scope`, as `analysis` looks it up.
fn measured(r: &Report, scope: &str, metric: &str) -> Option<f64> {
    let stats = match scope {
        "run" => &r.overall,
        s if s.starts_with("model ") => &r.models.iter().find(|m| s.ends_with(&m.model))?.stats,
        s => &r.phases.iter().find(|p| p.name == s)?.stats,
    };
    let p = |q: Option<Quantiles>, stat: fn(&Quantiles) -> f64| q.map(|q| stat(&q));
    match metric {
        "p95(latency)" => p(stats.latency_ms, |q| q.p95),
        "p99(latency)" => p(stats.latency_ms, |q| q.p99),
        "p95(ttft)" => p(stats.ttft_ms, |q| q.p95),
        "p95(itl)" => p(stats.itl_ms, |q| q.p95),
        "error_rate" => Some(stats.error_rate),
        "timeout_rate" => Some(stats.timeout_rate),
        "peak_rps" => {
            let seconds = r
                .intervals
                .iter()
                .filter(|i| scope == "run" || i.phase == scope);
            seconds.map(|i| i.rps).reduce(f64::max)
        }
        other => panic!("the fixture does not measure {other}"),
    }
}

/// A bound in the metric's unit: "1500ms" and "1.5s" → 1500, "1%" → 0.01.
fn bound(text: &str) -> f64 {
    let num = |s: &str| s.parse::<f64>().unwrap();
    match (
        text.strip_suffix("ms"),
        text.strip_suffix('s'),
        text.strip_suffix('%'),
    ) {
        (Some(v), _, _) => num(v),
        (None, Some(v), _) => num(v) * 1000.0,
        (None, None, Some(v)) => num(v) / 100.0,
        (None, None, None) => num(text),
    }
}

/// Formats a value as `plan::threshold::format_value` does.
fn shown(metric: &str, v: f64) -> String {
    match metric {
        m if m.contains('(') && v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        m if m.contains('(') && v >= 100.0 => format!("{v:.0}ms"),
        m if m.contains('(') => format!("{v:.1}ms"),
        m if m.ends_with("_rate") => format!("{:.2}%", v * 100.0),
        _ => format!("{v:.1}"),
    }
}

/// A threshold result as `analysis::evaluate` makes it.
fn threshold(r: &Report, (scope, expression, label, target): ThresholdSpec) -> ThresholdResult {
    let parts: Vec<&str> = expression.split_whitespace().collect();
    let (metric, op, limit) = (parts[0], parts[1], bound(parts[2]));
    let achieved = measured(r, scope, metric);
    let holds = |v: f64| match op {
        "<" => v < limit,
        ">=" => v >= limit,
        _ => panic!("the fixture does not know {op}"),
    };
    ThresholdResult {
        expression: expression.to_owned(),
        scope: scope.to_owned(),
        label: label.to_owned(),
        target: target.to_owned(),
        achieved,
        achieved_display: achieved.map_or_else(|| "no data".to_owned(), |v| shown(metric, v)),
        status: match achieved {
            None => ThresholdStatus::NoData,
            Some(v) if holds(v) => ThresholdStatus::Pass,
            Some(_) => ThresholdStatus::Fail,
        },
    }
}

fn verdict(thresholds: &[ThresholdResult], generator: &GeneratorHealth) -> Verdict {
    let mut reasons: Vec<String> = generator.reasons.clone();
    reasons.extend(
        thresholds
            .iter()
            .filter(|t| t.status != ThresholdStatus::Pass)
            .map(|t| {
                format!(
                    "{} [{}]: achieved {}, target {}",
                    t.expression, t.scope, t.achieved_display, t.target
                )
            }),
    );
    let (outcome, exit_code) = if !generator.valid {
        (report::Outcome::Invalid, 5)
    } else if thresholds.iter().any(|t| t.status != ThresholdStatus::Pass) {
        (report::Outcome::Fail, 4)
    } else {
        (report::Outcome::Pass, 0)
    };
    Verdict {
        outcome,
        exit_code,
        reasons,
    }
}

/// Everything a scenario decides; `assemble` derives the rest.
struct Scenario {
    plan_name: &'static str,
    phases: Vec<PhaseSpec>,
    models: Vec<(&'static str, f64)>,
    outcomes: Vec<(Outcome, bool)>,
    stream: bool,
    /// Generator CPU in cores, sampled once a second.
    cpu_cores: f64,
    generator_reasons: Vec<String>,
    thresholds: &'static [ThresholdSpec],
}

fn assemble(sc: Scenario) -> Report {
    let run_s: f64 = sc
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| s.duration_s)
        .sum();
    let sets = record_all(&sc.outcomes, &sc.phases, sc.models.len());
    let ivals = intervals(&sc.outcomes, &sc.phases, run_s);
    let overall = StatsBlock::from_set(&sets.overall, run_s, None);
    let phases = phase_reports(&sc.phases, &sets, &sc.models, &ivals);
    let models = model_reports(&sc.models, &sets.models, run_s);
    let cpu = cpu_series(run_s, sc.cpu_cores);
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Tool {
            name: "infercheck".to_owned(),
            version: "0.1.0".to_owned(),
        },
        run_id: format!("20250930T140000Z-{}", sc.plan_name),
        started_at: "2025-09-30T14:00:00Z".to_owned(),
        ended_at: "2025-09-30T14:01:30Z".to_owned(),
        duration_s: run_s,
        plan_name: sc.plan_name.to_owned(),
        plan: serde_json::json!({ "name": sc.plan_name, "phases": sc.phases.iter().map(|p| p.name).collect::<Vec<_>>() }),
        target: Target {
            base_url: "http://127.0.0.1:8000".to_owned(),
            api: "openai-chat".to_owned(),
            stream: sc.stream,
            embedded_simulator: true,
        },
        verdict: Verdict {
            outcome: report::Outcome::Pass,
            exit_code: 0,
            reasons: Vec::new(),
        },
        summary: summary(&overall, &phases, &ivals, &sc.phases),
        generator: generator(&overall, &cpu, sc.generator_reasons),
        overall,
        phases,
        models,
        thresholds: Vec::new(),
        intervals: ivals,
        series: vec![cpu],
        traces: None,
        notes: Vec::new(),
        observed: None,
    };
    report.thresholds = sc
        .thresholds
        .iter()
        .map(|t| threshold(&report, *t))
        .collect();
    report.verdict = verdict(&report.thresholds, &report.generator);
    report.notes = notes(&report.overall);
    report
}

fn model_reports(models: &[(&str, f64)], sets: &[MetricSet], secs: f64) -> Vec<ModelReport> {
    let report = |((name, weight), set): (&(&str, f64), &MetricSet)| ModelReport {
        model: (*name).to_owned(),
        weight: *weight,
        stats: StatsBlock::from_set(set, secs, None),
    };
    models.iter().zip(sets).map(report).collect()
}

/// The generator's CPU, sampled once a second around `cores`.
fn cpu_series(run_s: f64, cores: f64) -> Series {
    let mut cpu = Series::new("generator_cpu", "cores");
    for second in 1..=run_s as u64 {
        cpu.push(second as f64, cores + 0.02 * (second % 7) as f64);
    }
    cpu
}

/// The caveat `analysis` writes when tokens were counted from chunks.
fn notes(overall: &StatsBlock) -> Vec<String> {
    let counted = overall.tokens_counted_from_chunks;
    let note = format!(
        "{counted} successful requests carried no `usage` from the server: \
         their output tokens were counted from content chunks."
    );
    if counted > 0 { vec![note] } else { Vec::new() }
}

fn summary(
    overall: &StatsBlock,
    phases: &[PhaseReport],
    ivals: &[IntervalSummary],
    specs: &[PhaseSpec],
) -> Summary {
    let errors: u64 = overall.errors.values().sum();
    Summary {
        requests: overall.requests,
        ok: overall.ok,
        errors,
        peak_concurrency: phases.iter().map(|p| p.peak_concurrency).max().unwrap_or(0),
        peak_rps: ivals.iter().map(|i| i.rps).fold(0.0, f64::max),
        achieved_rps: overall.rps,
        peak_target_rps: specs.iter().filter_map(|p| p.target_rps).reduce(f64::max),
    }
}

fn generator(overall: &StatsBlock, cpu: &Series, reasons: Vec<String>) -> GeneratorHealth {
    GeneratorHealth {
        valid: reasons.is_empty(),
        reasons,
        cpu_cores_avg: cpu.mean().unwrap_or(0.0),
        cpu_cores_max: cpu.max().unwrap_or(0.0),
        cores_available: 2,
        schedule_lag_p99_ms: overall.schedule_lag_ms.map(|q| q.p99),
        late_sends: overall.late_sends,
        unsent_arrivals: 0,
    }
}

// ---------------------------------------------------------------------------
// The cases

const MODELS: [(&str, f64); 2] = [("llama-3.1-8b-instruct", 0.7), ("qwen2.5-7b-instruct", 0.3)];

fn slot(phase: u16, step: u16) -> Slot {
    Slot {
        phase,
        step,
        model: 0,
    }
}

fn step(label: &'static str, concurrency: Option<u64>, start_s: f64, duration_s: f64) -> StepSpec {
    StepSpec {
        label,
        concurrency,
        start_s,
        duration_s,
    }
}

fn shape(queue_ms: f64, error_rate: f64, error: ErrorKind, streaming: bool) -> Shape {
    Shape {
        queue_ms,
        error_rate,
        error,
        streaming,
    }
}

/// Pass, fail (p99, error rate) and no data (ITL is not recorded per
/// request), at run, phase and model scope; "P95 TTFT" and "P95 ITL" have
/// no fixed HTTP Metrics row.
const SWEEP_THRESHOLDS: [ThresholdSpec; 10] = [
    ("run", "p95(latency) < 1500ms", "P95 Latency", "< 1.5s"),
    ("run", "p99(latency) < 1s", "P99 Latency", "< 1s"),
    ("run", "error_rate < 1%", "Error Rate", "< 1%"),
    ("run", "timeout_rate < 2%", "Timeout Rate", "< 2%"),
    ("run", "p95(ttft) < 800ms", "P95 TTFT", "< 800ms"),
    ("run", "p95(itl) < 50ms", "P95 ITL", "< 50ms"),
    ("warmup", "p95(latency) < 1s", "P95 Latency", "< 1s"),
    ("warmup", "error_rate < 2%", "Error Rate", "< 2%"),
    ("sweep", "peak_rps >= 20", "Peak QPS", ">= 20"),
    (
        "model qwen2.5-7b-instruct",
        "p95(latency) < 900ms",
        "P95 Latency",
        "< 900ms",
    ),
];

/// Two phases (a constant-rate warmup and a 3-level concurrency sweep), two
/// models, streaming, 5xx errors in the warmup and timeouts at the top of
/// the sweep, and [`SWEEP_THRESHOLDS`].
pub fn sweep_case() -> Report {
    let warmup = step("constant", None, 0.0, 30.0);
    let sweep = [
        step("c=4", Some(4), 30.0, 20.0),
        step("c=8", Some(8), 50.0, 20.0),
        step("c=16", Some(16), 70.0, 20.0),
    ];
    let mut rng = Lcg(0x1e19_2111_a069_dcb7);
    let weights = MODELS.map(|m| m.1);
    let warm_shape = shape(20.0, 0.01, ErrorKind::Http5xx, true);
    let mut outcomes = open_step(&mut rng, slot(0, 0), &warmup, 10.0, &warm_shape, &weights);
    for (i, level) in sweep.iter().enumerate() {
        // Latency grows with concurrency through queueing, as in examples/001.
        let c = level.concurrency.unwrap() as f64;
        let shape = shape(
            40.0 * (c - 2.0),
            if c >= 16.0 { 0.03 } else { 0.0 },
            ErrorKind::Timeout,
            true,
        );
        outcomes.extend(closed_step(
            &mut rng,
            slot(1, i as u16),
            level,
            &shape,
            &weights,
        ));
    }
    let phases = vec![
        PhaseSpec {
            name: "warmup",
            load: "constant 10 req/s",
            target_rps: Some(10.0),
            steps: vec![warmup],
        },
        PhaseSpec {
            name: "sweep",
            load: "sweep concurrency 4, 8, 16",
            target_rps: None,
            steps: sweep.into(),
        },
    ];
    assemble(Scenario {
        plan_name: "staging-sweep",
        phases,
        models: MODELS.to_vec(),
        outcomes,
        stream: true,
        cpu_cores: 0.30,
        generator_reasons: Vec::new(),
        thresholds: &SWEEP_THRESHOLDS,
    })
}

/// One non-streaming constant-rate phase, one model, no errors, thresholds
/// met, but the generator was CPU-bound: the run is INVALID.
pub fn invalid_case() -> Report {
    let smoke = step("constant", None, 0.0, 10.0);
    let mut rng = Lcg(0x0eea_b3e4_0d04_d2d4);
    let quiet = shape(10.0, 0.0, ErrorKind::Http5xx, false);
    let outcomes = open_step(&mut rng, slot(0, 0), &smoke, 5.0, &quiet, &[1.0]);
    let cpu_bound = "the generator used 1.96 of 2 cores on average: it was CPU-bound, \
                     so the target's limits were not measured";
    assemble(Scenario {
        plan_name: "smoke",
        phases: vec![PhaseSpec {
            name: "smoke",
            load: "constant 5 req/s",
            target_rps: Some(5.0),
            steps: vec![smoke],
        }],
        models: vec![MODELS[0]],
        outcomes,
        stream: false,
        cpu_cores: 1.90,
        generator_reasons: vec![cpu_bound.to_owned()],
        thresholds: &[
            ("run", "p95(latency) < 2s", "P95 Latency", "< 2s"),
            ("run", "error_rate < 1%", "Error Rate", "< 1%"),
        ],
    })
}

pub fn cases() -> [(&'static str, Report); 2] {
    [
        ("sweep_fail", sweep_case()),
        ("smoke_invalid", invalid_case()),
    ]
}

// ---------------------------------------------------------------------------
// Helpers
