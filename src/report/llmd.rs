//! The llm-d Benchmark Report (v0.2.1) of a run, so infercheck's results
//! sit beside llm-d-benchmark's in its analysis tools. Written as JSON,
//! which YAML readers read too; the schema is llm-d-benchmark's
//! `br_v0_2_1_json_schema.json` and a test validates real runs against it.
//!
//! The mapping, field by field:
//!
//! - `run`: the run id, its wall-clock start, end and length.
//! - `scenario.load`: infercheck as the tool, the prompt sizes the plan
//!   asked for as the input length, the phase's target rate or
//!   concurrency when the run had one phase; `native.config` is the
//!   resolved plan as run, whole.
//! - `scenario.stack`: the target as a generic component (URL, API, the
//!   models asked for, the engine and GPUs when the samplers named them):
//!   infercheck does not know the target's parallelism or replicas, which
//!   an `inference_engine` component requires.
//! - `results.request_performance`: requests sent, failed and cancelled;
//!   latency (from the intended send), TTFT, ITL and TPOT with the
//!   report's quantiles in milliseconds (`ms`, `ms/token`: the report's
//!   own numbers, unconverted); request and output-token rates; and per
//!   second the latency, TTFT and TPOT quantiles and the request rate.
//! - `results.observability`: the sampled server values that have a field
//!   of their own (KV cache, prefix hits, GPU utilisation and memory,
//!   power, running and waiting requests, host memory), in their unit.
//!
//! Like every renderer it maps what the report holds and computes no
//! statistic; a value the report lacks is left out, never guessed.

use std::io;

use serde_json::{Map, Value, json};

use super::model::{IntervalSummary, Report, StatsBlock};
use crate::stats::{Distribution, Quantiles, SeriesStats};

/// The schema version this module writes.
const VERSION: &str = "0.2.1";
/// The label of the one stack component: the target.
const TARGET_LABEL: &str = "target";

pub fn render(report: &Report, out: &mut dyn io::Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &benchmark_report(report))?;
    writeln!(out)
}

/// The whole document as a JSON value.
pub(crate) fn benchmark_report(report: &Report) -> Value {
    json!({
        "version": VERSION,
        "run": run(report),
        "scenario": {
            "stack": [target_component(report)],
            "load": load(report),
        },
        "results": results(report),
    })
}

/// Keeps the entries that have a value: the schema's optional fields are
/// left out rather than written as `null`.
fn object(entries: Vec<(&str, Option<Value>)>) -> Value {
    let map: Map<String, Value> = entries
        .into_iter()
        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
        .collect();
    Value::Object(map)
}

fn run(report: &Report) -> Value {
    object(vec![
        ("uid", Some(json!(report.run_id))),
        (
            "time",
            Some(json!({
                "start": report.started_at,
                "end": report.ended_at,
                "duration": format!("PT{}S", report.duration_s),
            })),
        ),
        (
            "description",
            Some(json!(format!(
                "infercheck plan {} against {}",
                report.plan_name, report.target.base_url
            ))),
        ),
        ("keywords", Some(json!(["infercheck", report.plan_name]))),
    ])
}

fn load(report: &Report) -> Value {
    let phases: Vec<String> = report
        .phases
        .iter()
        .map(|p| format!("{}: {}", p.name, p.load))
        .collect();
    json!({
        "metadata": {
            "schema_version": "0.0.1",
            "description": phases.join("; "),
        },
        "standardized": load_standardized(report),
        "native": { "config": report.plan },
    })
}

fn load_standardized(report: &Report) -> Value {
    // One phase is one stage; a multi-phase run has no single rate.
    let single = match report.phases.as_slice() {
        [phase] => Some(phase),
        _ => None,
    };
    let rate = single.and_then(|p| p.stats.target_rps).filter(|r| *r > 0.0);
    let concurrency = single.and_then(|p| match p.steps.as_slice() {
        [step] => step.concurrency.filter(|c| *c >= 1),
        _ => None,
    });
    object(vec![
        ("tool", Some(json!(report.tool.name))),
        ("tool_version", Some(json!(report.tool.version))),
        ("parallelism", Some(json!(1))),
        // The resolved plan keeps prompt sizes, not where the text came
        // from (generated words or a prompts file).
        ("source", Some(json!("unknown"))),
        ("stage", Some(json!(0))),
        ("input_seq_len", Some(input_seq_len(&report.plan))),
        ("rate_qps", rate.map(|r| json!(r))),
        ("concurrency", concurrency.map(|c| json!(c))),
    ])
}

/// The plan's prompt sizes (`workload.prompts[].tokens`): one size is a
/// fixed length; several are "other", valued at the most weighted one,
/// with their smallest and largest.
fn input_seq_len(plan: &Value) -> Value {
    let prompts: Vec<(u64, f64)> = plan["workload"]["prompts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["tokens"].as_u64()?, p["weight"].as_f64().unwrap_or(1.0))))
        .collect();
    let sizes = || prompts.iter().map(|(tokens, _)| *tokens);
    match (sizes().min(), sizes().max()) {
        (Some(min), Some(max)) if min == max => json!({ "distribution": "fixed", "value": min }),
        (Some(min), Some(max)) => {
            let primary = prompts
                .iter()
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(min, |(tokens, _)| *tokens);
            json!({ "distribution": "other", "value": primary, "min": min, "max": max })
        }
        _ => json!({ "distribution": "other", "value": 0 }),
    }
}

fn target_component(report: &Report) -> Value {
    let engine = report.observed.as_ref().and_then(|o| o.engine.as_ref());
    let (tool, version) = match engine {
        Some(e) => (e.label.clone(), e.version.clone()),
        None if report.target.embedded_simulator => (
            "infercheck serve-sim".to_owned(),
            Some(report.tool.version.clone()),
        ),
        None => ("unknown".to_owned(), None),
    };
    let models: Vec<&str> = report.models.iter().map(|m| m.model.as_str()).collect();
    let gpus: Vec<Value> = report
        .observed
        .iter()
        .flat_map(|o| &o.gpu_models)
        .map(|g| json!({ "model": g.model, "count": g.count }))
        .collect();
    let standardized = object(vec![
        ("kind", Some(json!("generic"))),
        ("tool", Some(json!(tool))),
        (
            "tool_version",
            Some(json!(version.unwrap_or_else(|| "unknown".to_owned()))),
        ),
        ("base_url", Some(json!(report.target.base_url))),
        ("api", Some(json!(report.target.api))),
        ("stream", Some(json!(report.target.stream))),
        ("models", Some(json!(models))),
        ("accelerators", (!gpus.is_empty()).then(|| json!(gpus))),
    ]);
    json!({
        "metadata": {
            "schema_version": "0.0.1",
            "label": TARGET_LABEL,
            "cfg_id": config_id(&standardized),
            "description": "the target infercheck sent its load to",
        },
        "standardized": standardized,
        "native": {},
    })
}

/// A stable hash of a component's configuration (64-bit FNV-1a of its
/// JSON text, in hex): the same target reads the same id in every run.
fn config_id(config: &Value) -> String {
    let hash = config
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}

fn results(report: &Report) -> Value {
    object(vec![
        (
            "request_performance",
            Some(object(vec![
                ("aggregate", Some(aggregate(report))),
                ("time_series", time_series(report)),
            ])),
        ),
        ("observability", observability(report)),
    ])
}

fn aggregate(report: &Report) -> Value {
    let o = &report.overall;
    let cancelled = o.errors.get("cancelled").copied().unwrap_or(0);
    let failures: u64 = o
        .errors
        .iter()
        .filter(|(kind, _)| kind.as_str() != "cancelled")
        .map(|(_, n)| n)
        .sum();
    let latency = |d: Distribution, units: &str| o.quantiles(d).map(|q| statistics(&q, units));
    json!({
        "requests": {
            "total": o.requests,
            "failures": failures,
            "incomplete": cancelled,
        },
        "latency": object(vec![
            ("request_latency", latency(Distribution::Latency, "ms")),
            ("time_to_first_token", latency(Distribution::Ttft, "ms")),
            ("inter_token_latency", latency(Distribution::Itl, "ms/token")),
            ("time_per_output_token", latency(Distribution::Tpot, "ms/token")),
        ]),
        "throughput": throughput(report, o),
    })
}

fn throughput(report: &Report, o: &StatsBlock) -> Value {
    json!({
        "request_rate": {
            "units": "queries/s",
            "mean": o.rps,
            "max": report.summary.peak_rps,
        },
        "output_token_rate": { "units": "tokens/s", "mean": o.output_tokens_per_s },
    })
}

/// The schema's `Statistics` of a client distribution.
fn statistics(q: &Quantiles, units: &str) -> Value {
    json!({
        "units": units,
        "mean": q.mean,
        "min": q.min,
        "p50": q.p50,
        "p90": q.p90,
        "p95": q.p95,
        "p99": q.p99,
        "max": q.max,
    })
}

/// One series per client series of `intervals.jsonl`, stamped with the
/// wall-clock end of each second; absent when the start has no
/// readable time.
fn time_series(report: &Report) -> Option<Value> {
    let start = chrono::DateTime::parse_from_rfc3339(&report.started_at).ok()?;
    let at = |i: &IntervalSummary| {
        let offset = chrono::Duration::microseconds((i.t * 1e6).round() as i64);
        (start + offset).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let series = |units: &str, point: &dyn Fn(&IntervalSummary) -> Option<Value>| {
        let points: Vec<Value> = report
            .intervals
            .iter()
            .filter_map(|i| {
                let mut p = point(i)?;
                p["ts"] = json!(at(i));
                Some(p)
            })
            .collect();
        (!points.is_empty()).then(|| json!({ "units": units, "series": points }))
    };
    let p95 = |v: Option<f64>| v.map(|p95| json!({ "p95": p95 }));
    Some(object(vec![
        (
            "latency",
            Some(object(vec![
                (
                    "request_latency",
                    series("ms", &|i| {
                        i.latency_p95_ms?;
                        Some(object(vec![
                            ("p50", i.latency_p50_ms.map(|v| json!(v))),
                            ("p95", i.latency_p95_ms.map(|v| json!(v))),
                            ("p99", i.latency_p99_ms.map(|v| json!(v))),
                        ]))
                    }),
                ),
                ("time_to_first_token", series("ms", &|i| p95(i.ttft_p95_ms))),
                (
                    "time_per_output_token",
                    series("ms/token", &|i| p95(i.tpot_p95_ms)),
                ),
            ])),
        ),
        (
            "throughput",
            Some(object(vec![(
                "request_rate",
                series("queries/s", &|i| Some(json!({ "value": i.rps }))),
            )])),
        ),
    ]))
}

/// The sampled server values with a field of their own in the schema's
/// `ResourceMetrics`: (infercheck's name, the unit it must be stored in,
/// the schema's field, the schema's unit for it).
const RESOURCES: [(&str, &str, &str, &str); 8] = [
    ("kv_usage", "ratio", "kv_cache_usage", "fraction"),
    ("prefix_hit_rate", "ratio", "cache_hit_rate", "fraction"),
    ("gpu_util", "percent", "gpu_utilization", "percent"),
    ("vram_used", "mebibytes", "gpu_memory_usage", "MiB"),
    ("gpu_power", "watts", "power_consumption", "Watts"),
    ("running", "count", "running_requests", "count"),
    ("queue_depth", "count", "waiting_requests", "count"),
    ("memory_used", "ratio", "cpu_memory_usage", "fraction"),
];

fn observability(report: &Report) -> Option<Value> {
    let observed = report.observed.as_ref()?;
    let metrics: Map<String, Value> = RESOURCES
        .iter()
        .filter_map(|(name, stored, field, units)| {
            let value = observed.value(name).filter(|v| v.unit == *stored)?;
            Some(((*field).to_owned(), series_statistics(&value.stats, units)?))
        })
        .collect();
    if metrics.is_empty() {
        return None;
    }
    Some(json!({
        "components": [{
            "component_label": TARGET_LABEL,
            "aggregate": metrics,
        }],
    }))
}

/// The schema's `Statistics` of a sampled series; `None` without a mean.
fn series_statistics(stats: &SeriesStats, units: &str) -> Option<Value> {
    Some(object(vec![
        ("units", Some(json!(units))),
        ("mean", Some(json!(stats.avg?))),
        ("min", stats.min.map(|v| json!(v))),
        ("p95", stats.p95.map(|v| json!(v))),
        ("max", stats.max.map(|v| json!(v))),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_sizes_become_the_input_length() {
        let plan = |prompts: Value| json!({ "workload": { "prompts": prompts } });
        let cases = [
            (
                json!([{ "tokens": 64, "weight": 1.0 }]),
                json!({ "distribution": "fixed", "value": 64 }),
            ),
            (
                json!([{ "tokens": 32, "weight": 0.2 }, { "tokens": 512, "weight": 0.8 }]),
                json!({ "distribution": "other", "value": 512, "min": 32, "max": 512 }),
            ),
            (json!([]), json!({ "distribution": "other", "value": 0 })),
        ];
        for (prompts, want) in cases {
            assert_eq!(input_seq_len(&plan(prompts.clone())), want, "{prompts}");
        }
    }

    #[test]
    fn the_config_id_is_stable_and_tells_configurations_apart() {
        let a = json!({ "base_url": "http://a" });
        assert_eq!(config_id(&a), config_id(&a.clone()));
        assert_ne!(config_id(&a), config_id(&json!({ "base_url": "http://b" })));
        assert_eq!(config_id(&a).len(), 16);
    }

    #[test]
    fn optional_fields_without_a_value_are_left_out() {
        let v = object(vec![("a", Some(json!(1))), ("b", None)]);
        assert_eq!(v, json!({ "a": 1 }));
    }

    #[test]
    fn a_report_without_a_readable_start_has_no_time_series() {
        let report = crate::report::test_report::report_with(Vec::new());
        let doc = benchmark_report(&report);
        let performance = doc["results"]["request_performance"].as_object().unwrap();
        assert!(!performance.contains_key("time_series"), "{performance:?}");
        assert_eq!(doc["version"], "0.2.1");
        assert_eq!(doc["run"]["uid"], "r");
    }
}
