//! Fault injection: which faults hit one request (drawn from its seeded RNG)
//! and the stall window that freezes every emission. Pure logic; the server
//! decides where to apply it.

use tokio::time::Instant;

use super::config::{Faults, Stall};
use super::tokens::SimRng;

/// The faults drawn for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Answer with the configured error status before any token.
    pub error: bool,
    /// How a stream ends early, if it does.
    pub cut: Option<StreamCut>,
}

/// How a faulty stream ends after half its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamCut {
    /// Close the body without `data: [DONE]`.
    Truncate,
    /// Send an SSE error event, then close.
    ErrorEvent,
}

impl FaultPlan {
    /// Draws the plan for one request. It always consumes the same number of
    /// values so that changing one rate never shifts the other draws.
    pub fn draw(faults: &Faults, rng: &mut SimRng) -> FaultPlan {
        let error = rng.next_f64() < faults.error_rate;
        let truncate = rng.next_f64() < faults.truncate_rate;
        let error_event = rng.next_f64() < faults.error_event_rate;
        // An error event is the more visible fault, so it wins a tie.
        let cut = if error_event {
            Some(StreamCut::ErrorEvent)
        } else if truncate {
            Some(StreamCut::Truncate)
        } else {
            None
        };
        FaultPlan { error, cut }
    }
}

/// The status injected errors use: the configured one, or 500 when it is
/// unset or not a valid HTTP status.
pub(crate) fn error_status(faults: &Faults) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(faults.error_status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// The absolute window of a configured stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StallWindow {
    start: Instant,
    end: Instant,
}

impl StallWindow {
    /// Places `stall` on the clock of a server that started at `server_start`.
    pub fn new(server_start: Instant, stall: Option<Stall>) -> Option<StallWindow> {
        let stall = stall?;
        let start = server_start + stall.after;
        Some(StallWindow {
            start,
            end: start + stall.length,
        })
    }

    /// When something due at `at` may actually happen: the end of the window
    /// when `at` falls inside it, otherwise `at` itself.
    pub fn release_at(&self, at: Instant) -> Instant {
        if at >= self.start && at < self.end {
            self.end
        } else {
            at
        }
    }
}

/// `release_at` for an optional window.
pub(crate) fn release_at(window: Option<&StallWindow>, at: Instant) -> Instant {
    window.map_or(at, |w| w.release_at(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tokens::Purpose;
    use std::time::Duration;

    #[test]
    fn release_at_moves_only_instants_inside_the_window() {
        let t0 = Instant::now();
        let stall = Stall {
            after: Duration::from_millis(100),
            length: Duration::from_millis(50),
        };
        let w = StallWindow::new(t0, Some(stall)).unwrap();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(w.release_at(ms(99)), ms(99));
        assert_eq!(w.release_at(ms(100)), ms(150));
        assert_eq!(w.release_at(ms(149)), ms(150));
        assert_eq!(w.release_at(ms(150)), ms(150));
        assert_eq!(w.release_at(ms(151)), ms(151));
        assert_eq!(release_at(None, ms(120)), ms(120));
    }

    #[test]
    fn rates_of_zero_and_one_are_exact() {
        let mut rng = SimRng::for_request(7, 0, Purpose::Faults);
        let all = Faults {
            error_rate: 1.0,
            truncate_rate: 1.0,
            error_event_rate: 1.0,
            ..Faults::default()
        };
        for _ in 0..100 {
            assert_eq!(
                FaultPlan::draw(&Faults::default(), &mut rng),
                FaultPlan::default()
            );
            let plan = FaultPlan::draw(&all, &mut rng);
            assert!(plan.error);
            assert_eq!(plan.cut, Some(StreamCut::ErrorEvent));
        }
    }

    #[test]
    fn error_status_falls_back_to_500() {
        let mut f = Faults::default();
        assert_eq!(error_status(&f).as_u16(), 500);
        f.error_status = 429;
        assert_eq!(error_status(&f).as_u16(), 429);
        f.error_status = 1000;
        assert_eq!(error_status(&f).as_u16(), 500);
    }
}
