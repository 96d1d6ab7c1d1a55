//! The live progress line on stderr: phase, elapsed, rate, p95, errors.
//! On a terminal it rewrites one line every second; in a log (CI) it
//! prints a line every ten seconds so logs stay short.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::report::IntervalSummary;
use crate::units::format_duration;

pub struct Progress {
    enabled: bool,
    terminal: bool,
    total: Duration,
    errors: u64,
    requests: u64,
}

impl Progress {
    pub fn new(enabled: bool, total: Duration) -> Self {
        Progress {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            total,
            errors: 0,
            requests: 0,
        }
    }

    pub fn update(&mut self, interval: &IntervalSummary) {
        self.requests += interval.requests;
        self.errors += interval.errors;
        let second = interval.t.round() as u64;
        if !self.enabled || (!self.terminal && !second.is_multiple_of(10)) {
            return;
        }
        let p95 = interval
            .latency_p95_ms
            .map_or_else(|| "-".to_owned(), |v| format!("{v:.0}ms"));
        let target = interval
            .target_rps
            .map_or_else(String::new, |t| format!("/{t:.0}"));
        let line = format!(
            "[{}] {}/{}  {:.1}{} req/s  p95 {}  in flight {}  requests {}  errors {}",
            interval.phase,
            format_duration(Duration::from_secs(second)),
            format_duration(self.total),
            interval.rps,
            target,
            p95,
            interval.in_flight,
            self.requests,
            self.errors
        );
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    pub fn finish(&self) {
        if self.enabled && self.terminal {
            eprintln!();
        }
    }
}
