//! Rows for the server-side sections of a report (examples/000): "System
//! Resource Utilization", the sampled rows of "Queue and Task Metrics", the
//! engine analysis facts, and the sampling lines of "Observability
//! Validation". Shared by the Markdown, HTML and terminal renderers, like
//! `view`. A threshold on a sampled value shows in the row of that value.

use super::placement::Placement;
use super::view::{Fact, NONE, Table, count, fact, ms, pct, target_and_status};
use super::{
    GpuModelSource, MachineSource, ObservedReport, Report, SampledSummary, ThresholdStatus,
};
use crate::metric::{Metric, Stat};

/// A fixed row of a server-side table: the sampled value it shows, the
/// statistic shown (a threshold on that statistic of that value fills the
/// row's Target and Status), and how the value reads.
struct Row {
    label: &'static str,
    name: &'static str,
    stat: Stat,
    show: fn(&Report, &SampledSummary) -> Option<String>,
}

impl Row {
    fn metric(&self) -> Metric {
        Metric::Sampled {
            stat: self.stat,
            name: self.name.to_owned(),
        }
    }
}

/// A row of "System Resource Utilization": the fixed row, and whose
/// machine or GPU its value was read from (the label's suffix).
struct ResourceRow {
    row: Row,
    whose: fn(&Report, &SampledSummary) -> Option<String>,
}

/// A GPU row: the value's GPUs named as NVML or the DCGM exporter named
/// them.
const fn gpu_row(row: Row) -> ResourceRow {
    ResourceRow {
        row,
        whose: gpus_whose,
    }
}

/// "System Resource Utilization" (examples/000), peaks: GPU pressure first
/// (what the profiling counters say the GPU's units did), then utilisation,
/// a duty cycle (the share of time any kernel ran), then memory, CPU,
/// power. System memory and CPU are the server's node exporter's, or this
/// host's when the target runs on it; each row names its machine or GPU.
const RESOURCE_ROWS: &[ResourceRow] = &[
    gpu_row(Row {
        label: "GPU SM Active",
        name: "gpu_sm_active",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    gpu_row(Row {
        label: "GPU SM Occupancy",
        name: "gpu_sm_occupancy",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    gpu_row(Row {
        label: "GPU Tensor Pipe Active",
        name: "gpu_tensor_active",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    gpu_row(Row {
        label: "GPU DRAM Active",
        name: "gpu_dram_active",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    gpu_row(Row {
        label: "GPU Graphics Engine Active",
        name: "gpu_graphics_active",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    gpu_row(Row {
        label: "GPU Util (duty cycle)",
        name: "gpu_util",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(pct),
    }),
    ResourceRow {
        row: Row {
            label: "Memory (System)",
            name: "node_memory_used",
            stat: Stat::Max,
            show: |_, v| v.stats.max.map(pct),
        },
        whose: |r, _| machine_whose(r, MachineSource::NodeExporter),
    },
    ResourceRow {
        row: Row {
            label: "Memory (System)",
            name: "memory_used",
            stat: Stat::Max,
            show: |_, v| v.stats.max.map(pct),
        },
        whose: |r, _| machine_whose(r, MachineSource::Host),
    },
    gpu_row(Row {
        label: "VRAM Usage",
        name: "vram_used",
        stat: Stat::Max,
        show: vram,
    }),
    ResourceRow {
        row: Row {
            label: "CPU Load",
            name: "node_cpu_load",
            stat: Stat::Max,
            show: |r, v| {
                let cores = sampled(r, "node_cores").and_then(|c| c.stats.max);
                v.stats.max.map(|c| match cores {
                    Some(cores) => format!("{c:.1}/{cores:.0} cores"),
                    None => format!("{c:.1} cores"),
                })
            },
        },
        whose: |r, _| machine_whose(r, MachineSource::NodeExporter),
    },
    ResourceRow {
        row: Row {
            label: "CPU Load",
            name: "cpu_load",
            stat: Stat::Max,
            show: |r, v| {
                let cores = r.generator.cores_available;
                v.stats.max.map(|c| format!("{c:.1}/{cores} cores"))
            },
        },
        whose: |r, _| machine_whose(r, MachineSource::Host),
    },
    gpu_row(Row {
        label: "GPU Power",
        name: "gpu_power",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(|w| format!("{w:.0}W")),
    }),
    ResourceRow {
        row: Row {
            label: "Target RSS",
            name: "target_rss",
            stat: Stat::Max,
            show: |_, v| v.stats.max.map(gib),
        },
        whose: |_, _| None,
    },
];

/// The GPUs a value was read from: NVML's when NVML gave it, else the
/// DCGM exporter's ("NVIDIA A10G on node-a", "2× Tesla T4 on a, b");
/// `None` when neither named them.
fn gpus_whose(report: &Report, value: &SampledSummary) -> Option<String> {
    let source = if value.source == "nvml" {
        GpuModelSource::Nvml
    } else {
        GpuModelSource::Dcgm
    };
    let models: Vec<String> = observed(report)?
        .gpu_models
        .iter()
        .filter(|m| m.source == source)
        .map(|m| {
            let many = if m.count > 1 {
                format!("{}× ", m.count)
            } else {
                String::new()
            };
            let on = match (source, m.hosts.is_empty()) {
                (GpuModelSource::Nvml, _) => " on this host".to_owned(),
                (GpuModelSource::Dcgm, true) => String::new(),
                (GpuModelSource::Dcgm, false) => format!(" on {}", names_list(&m.hosts)),
            };
            format!("{many}{}{on}", m.model)
        })
        .collect();
    (!models.is_empty()).then(|| models.join("; "))
}

/// The machine of `source`'s values: "node gpu-node-1", "nodes a, b",
/// "this host h1 (loopback target)"; `None` when nothing
/// named it.
fn machine_whose(report: &Report, source: MachineSource) -> Option<String> {
    let machine = observed(report)?
        .machines
        .iter()
        .find(|m| m.source == source)?;
    Some(match source {
        MachineSource::NodeExporter => {
            let noun = if machine.names.len() == 1 {
                "node"
            } else {
                "nodes"
            };
            format!("{noun} {}", names_list(&machine.names))
        }
        MachineSource::Host => {
            let name = machine
                .names
                .first()
                .map_or(String::new(), |n| format!(" {n}"));
            let because = machine
                .because
                .as_deref()
                .map_or(String::new(), |b| format!(" ({b})"));
            format!("this host{name}{because}")
        }
    })
}

/// Names, the first few in full: "a, b, c" or "a, b, c and 9 more".
fn names_list(names: &[String]) -> String {
    const SHOWN: usize = 3;
    let shown = names[..names.len().min(SHOWN)].join(", ");
    match names.len().saturating_sub(SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

/// The sampled rows of "Queue and Task Metrics".
const QUEUE_ROWS: &[Row] = &[
    Row {
        label: "Queue Depth",
        name: "queue_depth",
        stat: Stat::Max,
        show: |_, v| v.stats.max.map(|m| format!("{} tasks", count(m as u64))),
    },
    Row {
        label: "Avg Processing Time",
        name: "avg_processing_time",
        stat: Stat::Avg,
        show: |_, v| v.stats.avg.map(|s| ms(s * 1000.0)),
    },
];

/// "18.4GiB/24.0GiB": peak use of the GPU's total, when the free memory
/// was sampled too.
fn vram(report: &Report, used: &SampledSummary) -> Option<String> {
    let free = sampled(report, "vram_free").and_then(|f| f.stats.min);
    let used = used.stats.max?;
    Some(match free {
        Some(free) => format!("{}/{}", gib(used), gib(used + free)),
        None => gib(used),
    })
}

/// The metrics of the fixed rows here (see `placement`).
pub(crate) fn row_metrics() -> Vec<Metric> {
    RESOURCE_ROWS
        .iter()
        .map(|r| &r.row)
        .chain(QUEUE_ROWS)
        .map(Row::metric)
        .collect()
}

fn observed(report: &Report) -> Option<&ObservedReport> {
    report.observed.as_ref()
}

fn sampled<'a>(report: &'a Report, name: &str) -> Option<&'a SampledSummary> {
    observed(report)?
        .value(name)
        .filter(|v| v.stats.samples > 0)
}

fn gib(bytes: f64) -> String {
    format!("{:.1}GiB", bytes / 1024.0 / 1024.0 / 1024.0)
}

/// The rows of `rows` that were sampled or carry a threshold (which shows
/// even without a sample: its NO DATA is part of the verdict).
fn table_rows(report: &Report, rows: &[Row]) -> Vec<Vec<String>> {
    let placed = Placement::of(report);
    rows.iter()
        .filter_map(|row| table_row(report, &placed, row, row.label.to_owned()))
        .collect()
}

/// One row, labelled `label`, when it was sampled or carries a threshold.
fn table_row(
    report: &Report,
    placed: &Placement<'_>,
    row: &Row,
    label: String,
) -> Option<Vec<String>> {
    let threshold = placed.on_row(&row.metric());
    let value = sampled(report, row.name).and_then(|v| (row.show)(report, v));
    if value.is_none() && threshold.is_none() {
        return None;
    }
    let (target, status) = target_and_status(threshold);
    let value = value.unwrap_or_else(|| NONE.to_owned());
    Some(vec![label, value, target, status])
}

/// "System Resource Utilization": GPU pressure (SM activity and occupancy,
/// tensor pipes, DRAM, graphics engine), GPU utilisation as a duty cycle,
/// system memory, VRAM (of the GPU's total when known), CPU load, power,
/// the target's RSS; each row labelled with the machine or GPU measured.
pub(crate) fn resources(report: &Report) -> Option<Table> {
    let mut table = Table::new(&["Resource", "Peak Usage", "Target", "Status"]);
    let placed = Placement::of(report);
    table.rows = RESOURCE_ROWS
        .iter()
        .filter_map(|r| table_row(report, &placed, &r.row, resource_label(report, r)))
        .collect();
    (!table.rows.is_empty()).then_some(table)
}

/// "Memory (System) — node gpu-node-1": the row's label and, when its
/// value was sampled and its source named the machine or GPU, whose.
fn resource_label(report: &Report, row: &ResourceRow) -> String {
    let whose = sampled(report, row.row.name).and_then(|v| (row.whose)(report, v));
    match whose {
        Some(whose) => format!("{} — {whose}", row.row.label),
        None => row.row.label.to_owned(),
    }
}

/// The sampled rows of "Queue and Task Metrics": queue depth, average
/// processing time.
pub(crate) fn queue_rows(report: &Report) -> Vec<Vec<String>> {
    table_rows(report, QUEUE_ROWS)
}

/// "Inference Engine Analysis": batch size, token rate, KV and prefix
/// cache, preemptions, cold starts — what was sampled.
pub(crate) fn engine_facts(report: &Report) -> Vec<Fact> {
    let mut facts = Vec::new();
    let mut add = |label: &str, name: &str, show: &dyn Fn(&SampledSummary) -> Option<String>| {
        if let Some(value) = sampled(report, name).and_then(show) {
            facts.push(fact(label, value));
        }
    };
    add("Batch Size (tokens per step)", "batch_size", &|v| {
        Some(format!("avg {:.1}, max {:.1}", v.stats.avg?, v.stats.max?))
    });
    add("Token Generation Rate", "gen_tokens_rate", &|v| {
        Some(format!(
            "{:.0} tokens/sec peak, {:.0} avg",
            v.stats.max?, v.stats.avg?
        ))
    });
    add("KV Cache Usage", "kv_usage", &|v| {
        Some(format!("{} peak", pct(v.stats.max?)))
    });
    add("Prefix Cache Hit Rate", "prefix_hit_rate", &|v| {
        Some(pct(v.stats.avg?))
    });
    add("Preemptions", "preemptions", &|v| {
        v.value.map(|d| count(d.max(0.0) as u64))
    });
    // The server's TTFT p95 over the run is the bucket it falls in (a
    // quantile interpolated inside a coarse bucket over a short window is
    // a falsely precise number): the cross-check's interval.
    if let Some(c) = report
        .server
        .agreement
        .iter()
        .find(|c| c.check == "TTFT p95")
    {
        let high = c.server_high.map_or("+Inf".to_owned(), ms);
        facts.push(fact(
            "Server TTFT p95",
            format!(
                "({} … {high}] over the run (its histogram bucket; the client's: {})",
                ms(c.server_low),
                ms(c.client)
            ),
        ));
    }
    facts.extend(super::server_view::cold_start_fact(report));
    facts
}

/// Sampling lines for "Observability Validation": sources, Prometheus
/// query latency and failures, gaps, alerts (false positives when every
/// threshold passed), and the GPU line.
pub(crate) fn observability_facts(report: &Report) -> Vec<Fact> {
    let Some(o) = observed(report) else {
        return Vec::new();
    };
    let mut facts = vec![fact(
        "Sampled from",
        format!("{} every {}s", o.sources.join("; "), o.interval_s),
    )];
    if let Some(how) = &o.backends_from {
        facts.push(fact(
            "Backends",
            format!("{} ({how}): {}", o.backends.len(), o.backends.join(", ")),
        ));
    }
    if let Some(engine) = &o.engine {
        let version = engine
            .version
            .as_deref()
            .map_or(String::new(), |v| format!(" {v}"));
        facts.push(fact(
            "Engine",
            format!("{}{version} ({})", engine.label, engine.chosen),
        ));
    }
    if let Some(q) = o.query_latency_ms {
        facts.push(fact(
            "Prometheus query latency",
            format!(
                "p50 {}, p95 {}, max {} over {} queries ({} failed)",
                ms(q.p50),
                ms(q.p95),
                ms(q.max),
                count(o.queries),
                count(o.failed_queries)
            ),
        ));
    }
    let gaps: Vec<String> = o
        .values
        .iter()
        .filter(|v| v.gaps > 0 && v.stats.samples > 0)
        .map(|v| format!("{} {}", v.name, v.gaps))
        .collect();
    if !gaps.is_empty() {
        facts.push(fact("Gaps (samples missing)", gaps.join(", ")));
    }
    let absent: Vec<&str> = o
        .values
        .iter()
        .filter(|v| v.stats.samples == 0)
        .map(|v| v.name.as_str())
        .collect();
    if !absent.is_empty() {
        facts.push(fact("Not exported by the target", absent.join(", ")));
    }
    if o.backfilled > 0 {
        facts.push(fact("Backfilled after the run", count(o.backfilled)));
    }
    if let Some(alerts) = &o.alerts {
        facts.push(fact("Alerts", alerts_line(report, alerts)));
    }
    if let Some(gpu) = &o.gpu {
        facts.push(fact("GPU", gpu.trim_start_matches("GPU: ").to_owned()));
    }
    facts
}

fn alerts_line(report: &Report, alerts: &super::AlertsReport) -> String {
    if let Some(error) = &alerts.error {
        return format!("could not be read ({error})");
    }
    let all_passed = !report.thresholds.is_empty()
        && report
            .thresholds
            .iter()
            .all(|t| t.status == ThresholdStatus::Pass);
    let names: Vec<&str> = alerts
        .fired
        .iter()
        .filter(|a| a.began_during_run)
        .map(|a| a.name.as_str())
        .collect();
    let already = alerts.fired.len() - alerts.began_during_run;
    let mut line = match (names.is_empty(), all_passed) {
        (true, _) => "none fired during the run".to_owned(),
        (false, true) => format!(
            "{} alert false positives: {} fired while every threshold passed",
            names.len(),
            names.join(", ")
        ),
        (false, false) => format!("{} fired: {}", names.len(), names.join(", ")),
    };
    if already > 0 {
        line.push_str(&format!("; {already} already firing before the run"));
    }
    if let Some(rules) = &alerts.rules {
        line.push_str(&format!(
            "; {} rules, {} unhealthy",
            rules.rules,
            rules.unhealthy.len()
        ));
    }
    line
}

/// One line for the terminal summary: the sampled values a reader checks
/// first, peaks unless said otherwise; `None` when nothing was sampled.
pub(crate) fn server_line(report: &Report) -> Option<String> {
    let mut parts = Vec::new();
    let mut add = |name: &str, show: &dyn Fn(&SampledSummary) -> Option<String>| {
        if let Some(text) = sampled(report, name).and_then(show) {
            parts.push(text);
        }
    };
    add("queue_depth", &|v| {
        Some(format!("queue max {}", count(v.stats.max? as u64)))
    });
    add("kv_usage", &|v| Some(format!("KV {}", pct(v.stats.max?))));
    add("gen_tokens_rate", &|v| {
        Some(format!("{:.0} tok/s avg", v.stats.avg?))
    });
    add("gpu_util", &|v| Some(format!("GPU {}", pct(v.stats.max?))));
    add("vram_used", &|v| {
        Some(format!("VRAM {}", gib(v.stats.max?)))
    });
    add("cpu_load", &|v| {
        Some(format!("host CPU {:.1} cores", v.stats.max?))
    });
    let observed = observed(report)?;
    if parts.is_empty() {
        return None;
    }
    let gaps: u64 = observed
        .values
        .iter()
        .filter(|v| v.stats.samples > 0)
        .map(|v| v.gaps)
        .sum();
    if gaps > 0 {
        parts.push(format!("{gaps} gaps"));
    }
    Some(parts.join(", "))
}
