//! A minimal report for the renderers' unit tests: no requests, no
//! phases, only the thresholds and outcome a test gives.

use super::model::{
    GeneratorHealth, IntervalSummary, Outcome, Report, SCHEMA_VERSION, StatsBlock, Summary, Target,
    ThresholdResult, Tool, Verdict,
};

/// A passing report with `thresholds`.
pub(crate) fn report_with(thresholds: Vec<ThresholdResult>) -> Report {
    report(thresholds, Outcome::Pass)
}

pub(crate) fn report(thresholds: Vec<ThresholdResult>, outcome: Outcome) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        tool: Tool {
            name: "infercheck".into(),
            version: "0".into(),
        },
        run_id: "r".into(),
        started_at: String::new(),
        ended_at: String::new(),
        duration_s: 1.0,
        plan_name: "p".into(),
        plan: serde_json::Value::Null,
        target: Target {
            base_url: String::new(),
            api: String::new(),
            stream: false,
            embedded_simulator: false,
        },
        verdict: Verdict {
            outcome,
            exit_code: 0,
            reasons: Vec::new(),
        },
        summary: Summary {
            requests: 0,
            ok: 0,
            errors: 0,
            peak_concurrency: 0,
            peak_rps: 0.0,
            achieved_rps: 0.0,
            peak_target_rps: None,
        },
        overall: StatsBlock::default(),
        phases: Vec::new(),
        models: Vec::new(),
        tasks: Vec::new(),
        sessions: None,
        thresholds,
        generator: GeneratorHealth {
            valid: true,
            reasons: Vec::new(),
            cpu_cores_avg: 0.0,
            cpu_cores_max: 0.0,
            cores_available: 1,
            schedule_lag_p99_ms: None,
            late_sends: 0,
            unsent_arrivals: 0,
        },
        intervals: Vec::new(),
        series: Vec::new(),
        traces: None,
        observed: None,
        explanation: Default::default(),
        server: Default::default(),
        routing: Default::default(),
        validation: None,
        regression: None,
        history: None,
        raw_data: Vec::new(),
        repeats: None,
        notes: Vec::new(),
    }
}

/// One second of `phase` on the run clock at `t`: five requests, all
/// ok, every latency quantile `p95` ms.
pub(crate) fn second(t: f64, phase: &str, p95: f64) -> IntervalSummary {
    IntervalSummary {
        t,
        duration_s: 1.0,
        phase: phase.into(),
        requests: 5,
        ok: 5,
        errors: 0,
        rps: 5.0,
        target_rps: None,
        in_flight: 1,
        output_tokens: 50,
        latency_p50_ms: Some(p95),
        latency_p95_ms: Some(p95),
        latency_p99_ms: Some(p95),
        ttft_p95_ms: None,
        tpot_p95_ms: None,
        schedule_lag_p99_ms: None,
    }
}

/// A backend row with only its request count (and models) known.
pub(crate) fn backend_row(url: &str, models: &[&str], requests: f64) -> super::BackendRow {
    super::BackendRow {
        url: url.into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        requests: Some(requests),
        share: None,
        running_max: None,
        waiting_max: None,
        kv_usage_max: None,
        tokens_per_s_avg: None,
        gpus: Vec::new(),
        gpu_util_max: None,
        vram_used_max_bytes: None,
        scrapes_answered: 10,
        scrapes_missed: 0,
        status: super::BackendStatus::Ok,
    }
}
