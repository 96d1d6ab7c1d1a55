//! Integration tests: report renderers. A realistic run is simulated here
//! (synthetic request outcomes recorded into `MetricSet`s and summarised
//! with `StatsBlock::from_set`, as the aggregator does), then rendered:
//! Markdown and the terminal summary are pinned by golden files in
//! tests/golden/<case>/ (regenerate with INFERCHECK_BLESS=1 and review the
//! diff), HTML is checked at the parse level, JSON by round trip and
//! against docs/report-schema.json.

use std::path::PathBuf;
use std::time::Duration;

use infercheck::load::{ErrorKind, Outcome, Slot};
use infercheck::report::{
    self, Format, GeneratorHealth, IntervalSummary, ModelReport, PhaseReport, Report, StatsBlock,
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
    let model_reports = |sets: &[MetricSet], secs: f64| -> Vec<ModelReport> {
        let stats = |(i, (name, weight)): (usize, &(&str, f64))| ModelReport {
            model: (*name).to_owned(),
            weight: *weight,
            stats: StatsBlock::from_set(&sets[i], secs, None),
        };
        models.iter().enumerate().map(stats).collect()
    };
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
                });
            let in_phase = ivals.iter().filter(|i| i.phase == spec.name);
            PhaseReport {
                name: spec.name.to_owned(),
                load: spec.load.to_owned(),
                planned_duration_s: secs,
                stats: StatsBlock::from_set(&sets.phases[p], secs, spec.target_rps),
                steps: steps.collect(),
                models: model_reports(&sets.phase_models[p], secs),
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
    let models = sc
        .models
        .iter()
        .zip(&sets.models)
        .map(|((name, weight), set)| ModelReport {
            model: (*name).to_owned(),
            weight: *weight,
            stats: StatsBlock::from_set(set, run_s, None),
        })
        .collect();
    let mut cpu = Series::new("generator_cpu", "cores");
    for second in 1..=run_s as u64 {
        cpu.push(second as f64, sc.cpu_cores + 0.02 * (second % 7) as f64);
    }
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
        notes: Vec::new(),
    };
    report.thresholds = sc
        .thresholds
        .iter()
        .map(|t| threshold(&report, *t))
        .collect();
    report.verdict = verdict(&report.thresholds, &report.generator);
    if report.overall.tokens_counted_from_chunks > 0 {
        report.notes.push(format!(
            "{} successful requests carried no `usage` from the server: their output tokens were counted from content chunks.",
            report.overall.tokens_counted_from_chunks
        ));
    }
    report
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
fn sweep_case() -> Report {
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
fn invalid_case() -> Report {
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

fn cases() -> [(&'static str, Report); 2] {
    [
        ("sweep_fail", sweep_case()),
        ("smoke_invalid", invalid_case()),
    ]
}

// ---------------------------------------------------------------------------
// Helpers

fn render(report: &Report, format: Format) -> String {
    let mut out = Vec::new();
    report::render(report, format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn summary_text(report: &Report) -> String {
    let mut out = Vec::new();
    report::render_summary(report, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// Compares `actual` with tests/golden/<case>/<file>; with
/// INFERCHECK_BLESS=1 rewrites the file instead (review the diff).
fn golden(case: &str, file: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(case)
        .join(file);
    if std::env::var("INFERCHECK_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with INFERCHECK_BLESS=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs at line {}:\n  expected: {:?}\n  actual:   {:?}\nrerun with INFERCHECK_BLESS=1 and review the diff",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

/// The Markdown under `heading`, up to the next heading of the same or a
/// higher level.
fn section(markdown: &str, heading: &str) -> String {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let start = markdown
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{markdown}"));
    let mut lines = markdown[start..].lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        let depth = line.chars().take_while(|c| *c == '#').count();
        if depth > 0 && depth <= level && line.chars().nth(depth) == Some(' ') {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------
// Markdown and terminal: golden files

#[test]
fn markdown_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "report.md", &render(&report, Format::Markdown));
    }
}

#[test]
fn summary_matches_golden_files() {
    for (case, report) in cases() {
        golden(case, "summary.txt", &summary_text(&report));
    }
}

#[test]
fn summary_fits_100_columns_even_with_long_text() {
    let mut long = sweep_case();
    long.plan_name = "a-plan-name-that-goes-on-and-on-".repeat(4);
    long.verdict.reasons.push("word ".repeat(60));
    long.thresholds[0].label = "P95 Tokens/s per Request over a very long scope".to_owned();
    long.phases[0].load = "closed 500 users, think 1s–3s, with a long description".to_owned();
    for report in [sweep_case(), invalid_case(), long] {
        let text = summary_text(&report);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} chars: {line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn summary_shows_verdict_rates_latency_streaming_thresholds_and_generator() {
    let text = summary_text(&sweep_case());
    for needle in [
        "FAIL (exit 4)",
        "target 10 req/s",
        "(from intended send)",
        "service time p95",
        "TTFT p50",
        "TPOT p95",
        "NO DATA",
        "PASS ",
        "timeout ",
        "http_5xx ",
        "of 2 cores",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    let text = summary_text(&invalid_case());
    assert!(
        text.contains("INVALID (exit 5)") && text.contains("CPU-bound"),
        "{text}"
    );
    assert!(
        !text.contains("TTFT"),
        "no streaming line without streaming:\n{text}"
    );
}

#[test]
fn markdown_http_metrics_take_targets_from_run_scope_thresholds() {
    let md = render(&sweep_case(), Format::Markdown);
    let http = section(&md, "### HTTP Metrics");
    assert!(
        http.contains("intended send time (coordinated-omission corrected)"),
        "{http}"
    );
    assert!(http.contains("| Metric | Target | Achieved | Status |"));
    let rows: Vec<&str> = http
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(2)
        .collect();
    let labels: Vec<&str> = rows
        .iter()
        .map(|r| r.split(" | ").next().unwrap().trim_start_matches("| "))
        .collect();
    let want = [
        "P50 Latency",
        "P95 Latency",
        "P99 Latency",
        "P95 Service Time",
        "Error Rate",
        "Timeout Rate",
        "Peak QPS",
        "Achieved QPS",
        "P95 TTFT",
        "P95 ITL",
    ];
    assert_eq!(
        labels, want,
        "fixed rows, then the run-scope thresholds not shown yet"
    );
    let row = |label: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("| {label} |")))
            .unwrap()
            .to_string()
    };
    assert!(
        row("P95 Latency").starts_with("| P95 Latency | < 1.5s |")
            && row("P95 Latency").ends_with("| ✅ PASS |")
    );
    assert!(
        row("P99 Latency").ends_with("| ❌ FAIL |"),
        "{}",
        row("P99 Latency")
    );
    assert!(
        row("P50 Latency").starts_with("| P50 Latency | — |")
            && row("P50 Latency").ends_with("| — |")
    );
    assert_eq!(
        row("P95 ITL"),
        "| P95 ITL | < 50ms | no data | ⚠️ NO DATA |"
    );
    // Phase thresholds stay in their phase: the warmup's "< 1s" is not a run row.
    assert!(!http.contains("< 2%") || http.contains("| Timeout Rate | < 2% |"));
    assert!(section(&md, "### Phase 1: warmup").contains("| P95 Latency | < 1s |"));
}

#[test]
fn markdown_sweep_table_has_the_shape_of_examples_001() {
    let md = render(&sweep_case(), Format::Markdown);
    let phase = section(&md, "### Phase 2: sweep (1m, sweep concurrency 4, 8, 16)");
    let table: Vec<&str> = phase
        .lines()
        .skip_while(|l| !l.starts_with("| Concurrency"))
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(
        table[0],
        "| Concurrency | RPS | p95 Latency (s) | Avg GPU Util % | Max Mem (MiB) |"
    );
    assert_eq!(table[1], "| :--- | :--- | :--- | :--- | :--- |");
    assert_eq!(table.len(), 5, "{table:?}");
    for (row, level) in table[2..].iter().zip(["4", "8", "16"]) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells[0], level);
        assert!(
            cells[1].contains('.') && cells[1].split('.').nth(1).unwrap().len() == 2,
            "RPS with 2 decimals: {row}"
        );
        assert!(
            cells[2].parse::<f64>().is_ok_and(|s| s > 0.1 && s < 5.0),
            "p95 in seconds: {row}"
        );
        assert_eq!(&cells[3..], ["—", "—"]);
    }
    let warmup = section(&md, "### Phase 1: warmup");
    assert!(
        !warmup.contains("| Concurrency |"),
        "one-step phases have no sweep table"
    );
}

#[test]
fn markdown_has_every_section_of_a_full_run() {
    let md = render(&sweep_case(), Format::Markdown);
    let headings = [
        "# infercheck report — staging-sweep",
        "## Executive Summary",
        "## Performance Results",
        "### HTTP Metrics",
        "### Errors",
        "## Test Phases",
        "### Phase 1: warmup (30s, constant 10 req/s)",
        "## Streaming UX",
        "## Per-Model Breakdown",
        "### Model Thresholds",
        "## Generator Health",
        "## Notes",
    ];
    let mut at = 0;
    for heading in headings {
        let found = md[at..]
            .find(&format!("{heading}\n"))
            .unwrap_or_else(|| panic!("{heading:?} missing or out of order"));
        at += found;
    }
    assert!(md.contains("(embedded simulator)"));
    assert!(
        section(&md, "### Errors").contains("| timeout |")
            && section(&md, "### Errors").contains("| http_5xx |")
    );
    assert!(section(&md, "## Streaming UX").contains("| Metric | Average | p95 | Best Case |"));
    assert!(
        section(&md, "## Streaming UX").contains("| ITL | — | — | — |"),
        "ITL has no data here"
    );
    assert!(
        section(&md, "## Executive Summary")
            .contains("- **Overall Result**: ❌ FAIL — 3 of 10 thresholds not met")
    );
}

#[test]
fn markdown_leaves_out_sections_without_data() {
    let md = render(&invalid_case(), Format::Markdown);
    for absent in [
        "### Errors",
        "## Streaming UX",
        "## Per-Model Breakdown",
        "## Notes",
        "#### Stress Sweep",
    ] {
        assert!(!md.contains(absent), "{absent:?} in:\n{md}");
    }
    assert!(md.contains("- **Overall Result**: ⚠️ INVALID"));
    assert!(section(&md, "## Generator Health").contains("CPU-bound"));
}

#[test]
fn markdown_escapes_html_and_pipes_from_the_model() {
    let mut report = invalid_case();
    report.plan_name = "<script>alert(1)</script>".to_owned();
    report
        .notes
        .push("a | b <img src=x onerror=alert(1)>".to_owned());
    let md = render(&report, Format::Markdown);
    assert!(!md.contains("<script") && !md.contains("<img"), "{md}");
    assert!(md.contains("# infercheck report — &lt;script>alert(1)&lt;/script>"));
    assert!(md.contains("- a \\| b &lt;img"));
}

// ---------------------------------------------------------------------------
// HTML: parse-level checks

/// Checks that every element opened is closed, in order, the way an HTML
/// parser would need it for this page (no optional end tags are used).
fn assert_well_formed(html: &str) {
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("every tag ends") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(closing) = tag.strip_prefix('/') {
            assert_eq!(
                open.pop().as_deref(),
                Some(closing),
                "</{closing}> closes something else"
            );
        } else if !tag.ends_with('/') && !VOID.contains(&name.as_str()) {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
}

#[test]
fn html_is_one_well_formed_self_contained_page() {
    for (case, report) in cases() {
        let html = render(&report, Format::Html);
        assert!(
            html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
            "{case}"
        );
        assert!(
            html.contains("<meta charset=\"utf-8\">") && html.contains("<style>"),
            "{case}"
        );
        assert_well_formed(&html);
        // Nothing is fetched: no scripts, stylesheets, fonts, images or links.
        for banned in [
            "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import", "=\"http",
            "='http",
        ] {
            assert!(!html.contains(banned), "{case}: {banned:?} found");
        }
    }
}

#[test]
fn html_has_the_markdown_tables() {
    let html = render(&sweep_case(), Format::Html);
    let tables = [
        "<th>Metric</th><th>Target</th><th>Achieved</th><th>Status</th>",
        "<th>Error Kind</th><th>Requests</th><th>Share of Requests</th>",
        "<th>Concurrency</th><th>RPS</th><th>p95 Latency (s)</th><th>Avg GPU Util %</th><th>Max Mem (MiB)</th>",
        "<th>Metric</th><th>Average</th><th>p95</th><th>Best Case</th>",
        "<th>Model</th><th>Weight</th><th>Requests</th>",
    ];
    for header in tables {
        assert!(html.contains(header), "{header}");
    }
    assert!(html.contains(
        "<td>P95 Latency</td><td>&lt; 1.5s</td><td>951ms</td><td class=\"pass\">✅ PASS</td>"
    ));
    assert!(
        html.contains("<td class=\"fail\">❌ FAIL</td>")
            && html.contains("<td class=\"warn\">⚠️ NO DATA</td>")
    );
    assert!(html.contains("intended send time (coordinated-omission corrected)"));
    for heading in [
        "Executive Summary",
        "Test Phases",
        "Streaming UX",
        "Per-Model Breakdown",
        "Generator Health",
        "Notes",
    ] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
}

#[test]
fn html_draws_latency_throughput_and_sweep_charts() {
    let html = render(&sweep_case(), Format::Html);
    let svgs: Vec<&str> = html
        .split("<svg ")
        .skip(1)
        .map(|s| &s[..s.find("</svg>").unwrap()])
        .collect();
    assert_eq!(
        svgs.len(),
        3,
        "latency and rps over time, p95 vs concurrency"
    );
    let axes = [
        ("run time (s)", "latency (ms)"),
        ("run time (s)", "requests/s"),
        ("concurrency", "p95 latency (s)"),
    ];
    for (svg, (x, y)) in svgs.iter().zip(axes) {
        assert!(
            svg.contains(&format!(">{x}</text>")) && svg.contains(&format!(">{y}</text>")),
            "{x} / {y}"
        );
        assert!(svg.contains("<polyline"), "a line is drawn");
    }
    assert_eq!(
        svgs[0].matches("<polyline").count(),
        3,
        "p50, p95, p99 without gaps"
    );
    assert!(
        svgs[1].contains("stroke-dasharray"),
        "the target rate is drawn dashed"
    );
    assert_eq!(
        svgs[2].matches("<circle").count(),
        3,
        "one dot per sweep level"
    );
    let one_phase = render(&invalid_case(), Format::Html);
    assert_eq!(
        one_phase.matches("<svg ").count(),
        2,
        "no sweep, no sweep chart"
    );
}

#[test]
fn html_escapes_every_text_from_the_model() {
    let mut report = sweep_case();
    report.plan_name = "<script>alert(\"x\")</script>".to_owned();
    report.phases[1].name = "sweep <b>&</b>".to_owned();
    report.notes.push("<img src=x onerror=alert(1)>".to_owned());
    report.verdict.reasons.push("'quoted' <i>".to_owned());
    let html = render(&report, Format::Html);
    for raw in ["<script", "<b>", "<img", "<i>"] {
        assert!(!html.contains(raw), "{raw} not escaped");
    }
    let title = "infercheck report — &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;";
    assert!(
        html.contains(&format!("<title>{title}</title>"))
            && html.contains(&format!("<h1>{title}</h1>"))
    );
    assert!(
        html.contains("sweep &lt;b&gt;&amp;&lt;/b&gt;: p95 latency vs concurrency"),
        "chart titles too"
    );
    assert!(html.contains("<li>&#39;quoted&#39; &lt;i&gt;</li>"));
    assert_well_formed(&html);
}

// ---------------------------------------------------------------------------
// JSON: the lossless contract

#[test]
fn json_round_trips_to_an_equal_report() {
    for (case, report) in cases() {
        let json = render(&report, Format::Json);
        assert!(
            json.ends_with("}\n"),
            "{case}: pretty JSON with a trailing newline"
        );
        let back: Report = serde_json::from_slice(json.as_bytes()).unwrap();
        assert_eq!(back, report, "{case}");
        let latency = back.overall.histogram("latency_us").unwrap().unwrap();
        assert_eq!(
            latency.len(),
            report.overall.ok,
            "{case}: histograms survive the trip"
        );
    }
}

fn schema() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/report-schema.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The published schema lets readers ignore unknown fields (adding an
/// optional field does not bump schema_version); this copy forbids them,
/// so a field added to the model but not documented fails the test.
fn strict(mut schema: serde_json::Value) -> serde_json::Value {
    fn close(node: &mut serde_json::Value) {
        match node {
            serde_json::Value::Object(map) => {
                if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    map.insert("additionalProperties".to_owned(), false.into());
                }
                map.values_mut().for_each(close);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(close),
            _ => {}
        }
    }
    close(&mut schema);
    schema
}

fn violations(validator: &jsonschema::Validator, instance: &serde_json::Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn json_matches_the_documented_schema() {
    let schema = schema();
    jsonschema::meta::validate(&schema).expect("docs/report-schema.json is valid draft 2020-12");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let validator = jsonschema::draft202012::new(&strict(schema)).unwrap();
    for (case, report) in cases() {
        let json: serde_json::Value = serde_json::from_str(&render(&report, Format::Json)).unwrap();
        assert_eq!(
            violations(&validator, &json),
            Vec::<String>::new(),
            "{case}"
        );
    }
}

#[test]
fn json_schema_rejects_what_the_model_cannot_hold() {
    let validator = jsonschema::draft202012::new(&strict(schema())).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&render(&sweep_case(), Format::Json)).unwrap();
    type Breakage = fn(&mut serde_json::Value);
    let breakages: [(&str, Breakage); 6] = [
        ("no schema_version", |r| {
            _ = r.as_object_mut().unwrap().remove("schema_version")
        }),
        ("another schema_version", |r| r["schema_version"] = 2.into()),
        ("an unknown outcome", |r| {
            r["verdict"]["outcome"] = "great".into()
        }),
        ("an open-ended error kind", |r| {
            r["overall"]["errors"]["connection refused"] = 1.into()
        }),
        ("a NaN written as null", |r| {
            r["summary"]["peak_rps"] = serde_json::Value::Null
        }),
        ("an undocumented field", |r| r["overall"]["p42"] = 1.into()),
    ];
    for (what, breakage) in breakages {
        let mut bad = good.clone();
        breakage(&mut bad);
        assert!(
            !violations(&validator, &bad).is_empty(),
            "the schema accepts {what}"
        );
    }
}

// ---------------------------------------------------------------------------
// The API the runner and the CLI call

#[test]
fn format_names_parse_and_errors_list_the_choices() {
    let cases = [
        ("json", Format::Json),
        ("md", Format::Markdown),
        ("markdown", Format::Markdown),
        ("HTML", Format::Html),
    ];
    for (name, want) in cases {
        assert_eq!(name.parse::<Format>().unwrap(), want, "{name}");
    }
    let err = "pdf".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("`pdf`") && err.contains("json, md, markdown, html"),
        "{err}"
    );
    let ext = [Format::Json, Format::Markdown, Format::Html].map(Format::extension);
    assert_eq!(ext, ["json", "md", "html"]);
}

#[test]
fn render_writes_the_format_it_is_asked_for() {
    let report = invalid_case();
    assert!(render(&report, Format::Json).starts_with("{\n  \"schema_version\": 1,"));
    assert!(render(&report, Format::Markdown).starts_with("# infercheck report — smoke\n"));
    assert!(render(&report, Format::Html).starts_with("<!DOCTYPE html>"));
}
