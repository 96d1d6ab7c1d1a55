//! "Routing": the engines behind a router as rows (what each finished,
//! its share, queue, KV and GPUs), then whether the work was shared
//! evenly and the models' split followed the plan, each as a line with
//! its test.

use super::format::{count, pct};
use super::model::Report;
use super::routing_model::{BackendRow, BackendStatus};
use super::view::{Fact, NONE, Table, fact};

/// The per-backend table; `None` when no engine behind a router was read.
pub(crate) fn backends(report: &Report) -> Option<Table> {
    let rows = &report.routing.backends;
    if rows.is_empty() {
        return None;
    }
    let mut table = Table::new(&[
        "Backend",
        "Models",
        "Requests",
        "Share",
        "Running (max)",
        "Waiting (max)",
        "KV Cache (max)",
        "Tokens/s (avg)",
        "GPUs",
        "GPU Util (max)",
        "Status",
    ]);
    table.rows = rows.iter().map(backend_cells).collect();
    Some(table)
}

fn backend_cells(b: &BackendRow) -> Vec<String> {
    let or_none = |v: Option<String>| v.unwrap_or_else(|| NONE.to_owned());
    let whole = |v: Option<f64>| or_none(v.map(|v| count(v.max(0.0).round() as u64)));
    vec![
        b.url.clone(),
        if b.models.is_empty() {
            NONE.to_owned()
        } else {
            b.models.join(", ")
        },
        whole(b.requests),
        or_none(b.share.map(pct)),
        whole(b.running_max),
        whole(b.waiting_max),
        or_none(b.kv_usage_max.map(pct)),
        or_none(b.tokens_per_s_avg.map(|t| format!("{t:.0}"))),
        if b.gpus.is_empty() {
            NONE.to_owned()
        } else {
            b.gpus.join(", ")
        },
        or_none(b.gpu_util_max.map(pct)),
        status(b),
    ]
}

fn status(b: &BackendRow) -> String {
    match b.status {
        BackendStatus::Ok => "✅ serving".to_owned(),
        BackendStatus::NoTraffic => "❌ no traffic".to_owned(),
        BackendStatus::Skewed => "❌ skewed".to_owned(),
        BackendStatus::Unreachable => format!(
            "❌ /metrics unreachable ({} scrapes missed)",
            b.scrapes_missed
        ),
        BackendStatus::NotCounted => "not counted (no finished-request counter)".to_owned(),
    }
}

/// The balance and model-split lines.
pub(crate) fn facts(report: &Report) -> Vec<Fact> {
    let r = &report.routing;
    let mark = |pass: bool| if pass { "✅" } else { "❌" };
    let mut facts: Vec<Fact> = r
        .balance
        .iter()
        .map(|b| {
            let models = if b.models.is_empty() {
                "backends".to_owned()
            } else {
                format!("backends serving {}", b.models.join(", "))
            };
            fact(
                &format!("Balance across {models}"),
                format!("{} {}", mark(b.pass), b.detail),
            )
        })
        .collect();
    if let Some(check) = &r.response_model {
        let mark = match (check.pass, check.routing_error) {
            (true, _) => "✅",
            (false, true) => "❌",
            (false, false) => "⚠️",
        };
        facts.push(fact("Response model", format!("{mark} {}", check.detail)));
    }
    if let Some(split) = &r.model_split {
        facts.push(fact(
            "Model split vs plan weights",
            format!("{} {}", mark(split.pass), split.detail),
        ));
    }
    facts
}
