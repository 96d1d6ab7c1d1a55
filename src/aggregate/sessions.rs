//! Multi-turn sessions as they went: sessions started and completed,
//! turns, each completed session's length and time per turn, and each
//! turn's latency, TTFT and prompt (the conversation so far grows it).

use crate::outcome::{ErrorKind, Outcome};
use crate::stats::Histogram;

/// One turn's requests over every session.
#[derive(Clone, Debug, Default)]
pub struct TurnTally {
    pub requests: u64,
    pub ok: u64,
    /// The server's `usage.prompt_tokens`, summed over successful turns.
    pub prompt_tokens: u64,
    /// µs from the intended send.
    pub latency: Histogram,
    pub ttft: Histogram,
}

#[derive(Clone, Debug, Default)]
pub struct SessionTally {
    pub started: u64,
    pub completed: u64,
    pub turns: u64,
    pub failed_turns: u64,
    /// µs from a completed session's first turn being due to its last
    /// turn's end.
    pub duration: Histogram,
    /// µs: a completed session's length over its turns.
    pub per_turn: Histogram,
    /// By turn, 0-based.
    pub by_turn: Vec<TurnTally>,
}

impl SessionTally {
    pub fn new(turns: usize) -> SessionTally {
        SessionTally {
            by_turn: vec![TurnTally::default(); turns],
            ..SessionTally::default()
        }
    }

    /// Counts a session turn; requests the run cancelled are left out.
    pub fn record(&mut self, outcome: &Outcome) {
        if outcome.turn == 0 || outcome.error == Some(ErrorKind::Cancelled) {
            return;
        }
        self.turns += 1;
        self.started += u64::from(outcome.turn == 1);
        if let Some(turn) = self.by_turn.get_mut(usize::from(outcome.turn) - 1) {
            turn.requests += 1;
            turn.latency.record_duration(outcome.latency());
            if outcome.is_ok() {
                turn.ok += 1;
                turn.prompt_tokens += u64::from(outcome.prompt_tokens.unwrap_or(0));
                if let Some(ttft) = outcome.ttft() {
                    turn.ttft.record_duration(ttft);
                }
            }
        }
        if !outcome.is_ok() {
            self.failed_turns += 1;
        }
        if outcome.last_turn {
            self.completed += 1;
            let length = outcome.end.saturating_sub(outcome.session_start);
            self.duration.record_duration(length);
            self.per_turn
                .record_duration(length / u32::from(outcome.turn.max(1)));
        }
    }
}
