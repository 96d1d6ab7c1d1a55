//! The "Multi-Turn Sessions" section: sessions started and completed,
//! turns, session length and time per turn, then one row per turn.

use super::format::{count, opt_ms};
use super::model::Report;
use super::view::{Fact, Table, fact};

pub(crate) fn facts(report: &Report) -> Option<Vec<Fact>> {
    let s = report.sessions.as_ref()?;
    let p50_p95 = |q: Option<crate::stats::Quantiles>| {
        format!(
            "p50 {}, p95 {}",
            opt_ms(q.map(|q| q.p50)),
            opt_ms(q.map(|q| q.p95))
        )
    };
    Some(vec![
        fact(
            "Sessions",
            format!(
                "{} started, {} completed, of {} conversations (at most {} turns)",
                count(s.started),
                count(s.completed),
                count(s.conversations),
                s.max_turns
            ),
        ),
        fact(
            "Turns",
            format!(
                "{} ({} failed), {} per session",
                count(s.turns),
                count(s.failed_turns),
                s.turns_per_session
                    .map_or_else(|| "—".to_owned(), |t| format!("{t:.2}"))
            ),
        ),
        fact("Session length", p50_p95(s.duration_ms)),
        fact(
            "Time per turn",
            format!(
                "{} (a completed session's length over its turns)",
                p50_p95(s.time_per_turn_ms)
            ),
        ),
    ])
}

pub(crate) fn turns(report: &Report) -> Option<Table> {
    let s = report.sessions.as_ref()?;
    let mut table = Table::new(&[
        "Turn",
        "Requests",
        "OK",
        "Prompt Tokens (avg)",
        "p50 Latency",
        "p95 Latency",
        "p50 TTFT",
        "p95 TTFT",
    ]);
    for t in s.by_turn.iter().filter(|t| t.requests > 0) {
        table.rows.push(vec![
            t.turn.to_string(),
            count(t.requests),
            count(t.ok),
            t.prompt_tokens_avg
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.1}")),
            opt_ms(t.latency_ms.map(|q| q.p50)),
            opt_ms(t.latency_ms.map(|q| q.p95)),
            opt_ms(t.ttft_ms.map(|q| q.p50)),
            opt_ms(t.ttft_ms.map(|q| q.p95)),
        ]);
    }
    (!table.rows.is_empty()).then_some(table)
}
