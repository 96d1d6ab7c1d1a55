//! Integration tests: report renderers. A realistic run is simulated here
//! (synthetic request outcomes recorded into `MetricSet`s and summarised
//! with `StatsBlock::from_set`, as the aggregator does), then rendered:
//! Markdown and the terminal summary are pinned by golden files in
//! tests/golden/<case>/ (regenerate with INFERCHECK_BLESS=1 and review the
//! diff), HTML is checked at the parse level, JSON by round trip and
//! against docs/report-schema.json.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use infercheck::load::{ErrorKind, Outcome, Slot};
use infercheck::report::{
    self, Format, GeneratorHealth, IntervalSummary, ModelReport, PhaseReport, Report, StatsBlock, StepReport,
    Summary, Target, ThresholdResult, ThresholdStatus, Tool, Verdict,
};
use infercheck::stats::{Histogram, MetricSet, Series};

// ---------------------------------------------------------------------------
// A deterministic synthetic run

/// A tiny LCG: the golden files need the same numbers on every machine and
/// with every version of `rand`.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
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
    let lag = if late { 12.0 + 10.0 * rng.unit() } else { 0.2 + 1.5 * rng.unit() };
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
fn open_step(rng: &mut Lcg, slot: Slot, step: &StepSpec, rate: f64, shape: &Shape, weights: &[f64]) -> Vec<(Outcome, bool)> {
    let n = (step.duration_s * rate) as usize;
    (0..n)
        .map(|i| {
            let slot = Slot { model: pick_model(rng, weights), ..slot };
            request(rng, slot, (step.start_s + i as f64 / rate) * 1000.0, shape)
        })
        .collect()
}

/// A closed-loop step: `c` users, each sending again as soon as its last
/// request ended, until the step's end.
fn closed_step(rng: &mut Lcg, slot: Slot, step: &StepSpec, shape: &Shape, weights: &[f64]) -> Vec<(Outcome, bool)> {
    let end_ms = (step.start_s + step.duration_s) * 1000.0;
    let mut all = Vec::new();
    for user in 0..step.concurrency.unwrap_or(1) {
        let mut t = step.start_s * 1000.0 + user as f64 * 3.0;
        while t < end_ms {
            let slot = Slot { model: pick_model(rng, weights), ..slot };
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
        steps: phases.iter().map(|p| vec![MetricSet::default(); p.steps.len()]).collect(),
        models: vec![MetricSet::default(); models],
        phase_models: vec![vec![MetricSet::default(); models]; phases.len()],
        ..Sets::default()
    };
    for (o, late) in outcomes {
        let (p, s, m) = (o.slot.phase as usize, o.slot.step as usize, o.slot.model as usize);
        sets.overall.record(o, *late);
        sets.phases[p].record(o, *late);
        sets.steps[p][s].record(o, *late);
        sets.models[m].record(o, *late);
        sets.phase_models[p][m].record(o, *late);
    }
    sets
}

/// One summary per second of the run, as the aggregator streams them.
fn intervals(outcomes: &[(Outcome, bool)], phases: &[PhaseSpec], run_s: f64) -> Vec<IntervalSummary> {
    let phase_at = |t: f64| {
        phases.iter().rev().find(|p| p.steps[0].start_s < t).unwrap_or(&phases[0])
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

fn phase_reports(specs: &[PhaseSpec], sets: &Sets, models: &[(&str, f64)], ivals: &[IntervalSummary]) -> Vec<PhaseReport> {
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
            let steps = spec.steps.iter().zip(&sets.steps[p]).map(|(s, set)| StepReport {
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

/// Formats a threshold's value as `plan::threshold::format_value` does.
fn shown(unit: &str, v: f64) -> String {
    match unit {
        "ms" if v >= 1000.0 => format!("{:.2}s", v / 1000.0),
        "ms" if v >= 100.0 => format!("{v:.0}ms"),
        "ms" => format!("{v:.1}ms"),
        "%" => format!("{:.2}%", v * 100.0),
        _ => format!("{v:.1}"),
    }
}

/// A threshold result as `analysis::evaluate` makes it.
fn threshold(expression: &str, scope: &str, label: &str, target: &str, achieved: Option<f64>, unit: &str, holds: fn(f64) -> bool) -> ThresholdResult {
    ThresholdResult {
        expression: expression.to_owned(),
        scope: scope.to_owned(),
        label: label.to_owned(),
        target: target.to_owned(),
        achieved,
        achieved_display: achieved.map_or_else(|| "no data".to_owned(), |v| shown(unit, v)),
        status: match achieved {
            None => ThresholdStatus::NoData,
            Some(v) if holds(v) => ThresholdStatus::Pass,
            Some(_) => ThresholdStatus::Fail,
        },
    }
}

fn verdict(thresholds: &[ThresholdResult], generator: &GeneratorHealth) -> Verdict {
    let mut reasons: Vec<String> = generator.reasons.clone();
    reasons.extend(thresholds.iter().filter(|t| t.status != ThresholdStatus::Pass).map(|t| {
        format!("{} [{}]: achieved {}, target {}", t.expression, t.scope, t.achieved_display, t.target)
    }));
    let (outcome, exit_code) = if !generator.valid {
        (report::Outcome::Invalid, 5)
    } else if thresholds.iter().any(|t| t.status != ThresholdStatus::Pass) {
        (report::Outcome::Fail, 4)
    } else {
        (report::Outcome::Pass, 0)
    };
    Verdict { outcome, exit_code, reasons }
}

/// Everything a scenario decides; `assemble` derives the rest.
struct Scenario {
    plan_name: &'static str,
    phases: Vec<PhaseSpec>,
    models: Vec<(&'static str, f64)>,
    outcomes: Vec<(Outcome, bool)>,
    stream: bool,
    generator_reasons: Vec<String>,
}

fn assemble(sc: Scenario, thresholds: fn(&Report) -> Vec<ThresholdResult>) -> Report {
    let run_s: f64 = sc.phases.iter().flat_map(|p| &p.steps).map(|s| s.duration_s).sum();
    let sets = record_all(&sc.outcomes, &sc.phases, sc.models.len());
    let ivals = intervals(&sc.outcomes, &sc.phases, run_s);
    let overall = StatsBlock::from_set(&sets.overall, run_s, None);
    let phases = phase_reports(&sc.phases, &sets, &sc.models, &ivals);
    let models = sc
        .models
        .iter()
        .zip(&sets.models)
        .map(|((name, weight), set)| ModelReport { model: (*name).to_owned(), weight: *weight, stats: StatsBlock::from_set(set, run_s, None) })
        .collect();
    let mut cpu = Series::new("generator_cpu", "cores");
    for second in 1..=run_s as u64 {
        cpu.push(second as f64, 0.30 + 0.02 * (second % 7) as f64);
    }
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        tool: Tool { name: "infercheck".to_owned(), version: "0.1.0".to_owned() },
        run_id: format!("20250930T140000Z-{}", sc.plan_name.len()),
        started_at: "2025-09-30T14:00:00Z".to_owned(),
        ended_at: "2025-09-30T14:01:30Z".to_owned(),
        duration_s: run_s,
        plan_name: sc.plan_name.to_owned(),
        plan: serde_json::json!({ "name": sc.plan_name, "phases": sc.phases.iter().map(|p| p.name).collect::<Vec<_>>() }),
        target: Target { base_url: "http://127.0.0.1:8000".to_owned(), api: "openai-chat".to_owned(), stream: sc.stream, embedded_simulator: true },
        verdict: Verdict { outcome: report::Outcome::Pass, exit_code: 0, reasons: Vec::new() },
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
    report.thresholds = thresholds(&report);
    report.verdict = verdict(&report.thresholds, &report.generator);
    if report.overall.tokens_counted_from_chunks > 0 {
        report.notes.push(format!(
            "{} successful requests carried no `usage` from the server: their output tokens were counted from content chunks.",
            report.overall.tokens_counted_from_chunks
        ));
    }
    report
}

fn summary(overall: &StatsBlock, phases: &[PhaseReport], ivals: &[IntervalSummary], specs: &[PhaseSpec]) -> Summary {
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
