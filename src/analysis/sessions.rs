//! Multi-turn sessions from the aggregator's tally to the report.

use crate::aggregate::SessionTally;
use crate::plan::Plan;
use crate::report::{SessionReport, TurnReport};
use crate::stats::{Histogram, Quantiles, distribution};

fn quantiles(h: &Histogram) -> Option<Quantiles> {
    h.quantiles(distribution::Unit::RECORDED_PER_REPORTED)
}

pub(super) fn sessions(plan: &Plan, tally: Option<&SessionTally>) -> Option<SessionReport> {
    let (planned, tally) = (plan.workload.sessions.as_ref()?, tally?);
    Some(SessionReport {
        max_turns: planned.turns,
        conversations: planned.conversations as u64,
        started: tally.started,
        completed: tally.completed,
        turns: tally.turns,
        failed_turns: tally.failed_turns,
        turns_per_session: (tally.started > 0).then(|| tally.turns as f64 / tally.started as f64),
        duration_ms: quantiles(&tally.duration),
        time_per_turn_ms: quantiles(&tally.per_turn),
        by_turn: tally
            .by_turn
            .iter()
            .enumerate()
            .map(|(i, t)| TurnReport {
                turn: i as u32 + 1,
                requests: t.requests,
                ok: t.ok,
                prompt_tokens_avg: (t.ok > 0).then(|| t.prompt_tokens as f64 / t.ok as f64),
                latency_ms: quantiles(&t.latency),
                ttft_ms: quantiles(&t.ttft),
            })
            .collect(),
    })
}
