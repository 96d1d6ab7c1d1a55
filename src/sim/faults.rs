//! Fault injection: which faults hit one request (drawn from its seeded
//! RNG), and the server-wide fault state (stall and latency-spike windows
//! placed on the clock, resource pressure and when the GPU memory climb
//! began) that `POST /admin/faults` swaps at run time. Pure logic; the
//! server decides where to apply it.

use std::time::Duration;

use tokio::time::Instant;

use super::config::{Faults, ResourceFaults, Spike, Stall};
use super::tokens::SimRng;

/// The faults drawn for one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct FaultPlan {
    /// Answer with the configured error status before any token.
    pub error: bool,
    /// What goes wrong halfway through a stream, if anything.
    pub cut: Option<StreamCut>,
}

/// What happens to a faulty stream after half its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamCut {
    /// Close the body cleanly without `data: [DONE]`.
    Truncate,
    /// Send an SSE error event, then close.
    ErrorEvent,
    /// Drop the connection (the body ends in an error).
    Disconnect,
    /// Send one chunk that is not JSON, then carry on.
    Malformed,
}

impl FaultPlan {
    /// Draws the plan for one request. It always consumes the same number of
    /// values so that changing one rate never shifts the other draws.
    pub fn draw(faults: &Faults, rng: &mut SimRng) -> FaultPlan {
        let error = rng.next_f64() < faults.error_rate;
        let truncate = rng.next_f64() < faults.truncate_rate;
        let error_event = rng.next_f64() < faults.error_event_rate;
        let disconnect = rng.next_f64() < faults.disconnect_rate;
        let malformed = rng.next_f64() < faults.malformed_rate;
        // The more visible fault wins a tie.
        let cut = [
            (error_event, StreamCut::ErrorEvent),
            (disconnect, StreamCut::Disconnect),
            (truncate, StreamCut::Truncate),
            (malformed, StreamCut::Malformed),
        ]
        .into_iter()
        .find_map(|(hit, cut)| hit.then_some(cut));
        FaultPlan { error, cut }
    }
}

/// The status injected errors use: the configured one, or 500 when it is
/// unset or not a valid HTTP status.
pub(crate) fn error_status(faults: &Faults) -> axum::http::StatusCode {
    axum::http::StatusCode::from_u16(faults.error_status)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// An absolute window on the server's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub start: Instant,
    pub end: Instant,
}

impl Window {
    fn place(origin: Instant, after: Duration, length: Duration) -> Window {
        let start = origin + after;
        Window {
            start,
            end: start + length,
        }
    }

    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && at < self.end
    }

    /// When something due at `at` may happen: the window's end when `at`
    /// falls inside it, otherwise `at` itself.
    pub fn release_at(&self, at: Instant) -> Instant {
        if self.contains(at) { self.end } else { at }
    }
}

/// The faults in force, with their windows placed on the clock.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FaultState {
    pub faults: Faults,
    pub stall: Option<Window>,
    pub spike: Option<(Window, f64)>,
    pub resources: ResourceFaults,
    /// When the GPU memory climb began; `None` while it is off.
    pub climb_since: Option<Instant>,
}

impl FaultState {
    /// `faults` with windows measured from `origin` (server start, or the
    /// moment an admin call set them).
    pub fn new(faults: Faults, origin: Instant) -> FaultState {
        let stall = faults
            .stall
            .map(|Stall { after, length }| Window::place(origin, after, length));
        let spike = faults.latency_spike.map(
            |Spike {
                 after,
                 length,
                 factor,
             }| (Window::place(origin, after, length), factor),
        );
        FaultState {
            faults,
            stall,
            spike,
            ..FaultState::default()
        }
    }

    /// This state with `resources` in force, a GPU memory climb counted
    /// from `origin`.
    pub fn with_resources(mut self, resources: ResourceFaults, origin: Instant) -> FaultState {
        self.climb_since = (resources.gpu_memory_climb_mib_per_s > 0.0).then_some(origin);
        self.resources = resources;
        self
    }

    /// MiB the GPU memory climb has added by `now`: its rate times the
    /// seconds since it began (0 when off or before it began). Each GPU
    /// caps what it shows at its total.
    pub fn climbed_mib(&self, now: Instant) -> u64 {
        let Some(since) = self.climb_since else {
            return 0;
        };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        let mib = self.resources.gpu_memory_climb_mib_per_s * secs;
        if mib.is_finite() && mib > 0.0 {
            mib.min(u64::MAX as f64) as u64
        } else {
            0
        }
    }

    /// When something due at `at` may happen, given the stall.
    pub fn release_at(&self, at: Instant) -> Instant {
        self.stall.map_or(at, |w| w.release_at(at))
    }

    /// The step cost multiplier at `at`.
    pub fn slow_factor(&self, at: Instant) -> f64 {
        match self.spike {
            Some((window, factor)) if window.contains(at) => factor.max(0.0),
            _ => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::tokens::Purpose;

    #[test]
    fn release_at_moves_only_instants_inside_the_window() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let faults = Faults {
            stall: Some(Stall {
                after: Duration::from_millis(100),
                length: Duration::from_millis(50),
            }),
            ..Faults::default()
        };
        let state = FaultState::new(faults, t0);
        assert_eq!(state.release_at(ms(99)), ms(99));
        assert_eq!(state.release_at(ms(100)), ms(150));
        assert_eq!(state.release_at(ms(149)), ms(150));
        assert_eq!(state.release_at(ms(150)), ms(150));
        assert_eq!(FaultState::default().release_at(ms(120)), ms(120));
    }

    #[test]
    fn a_spike_slows_steps_inside_its_window_only() {
        let t0 = Instant::now();
        let faults = Faults {
            latency_spike: Some(Spike {
                after: Duration::from_secs(1),
                length: Duration::from_secs(1),
                factor: 4.0,
            }),
            ..Faults::default()
        };
        let state = FaultState::new(faults, t0);
        assert_eq!(state.slow_factor(t0), 1.0);
        assert_eq!(state.slow_factor(t0 + Duration::from_millis(1500)), 4.0);
        assert_eq!(state.slow_factor(t0 + Duration::from_secs(2)), 1.0);
    }

    #[test]
    fn the_gpu_memory_climb_grows_with_the_seconds_since_it_began() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let climbing = |rate| {
            let resources = ResourceFaults {
                gpu_memory_climb_mib_per_s: rate,
                ..ResourceFaults::default()
            };
            FaultState::default().with_resources(resources, t0 + s(10))
        };
        let state = climbing(512.0);
        assert_eq!(state.climb_since, Some(t0 + s(10)));
        assert_eq!(state.climbed_mib(t0), 0, "before it began");
        assert_eq!(state.climbed_mib(t0 + s(10)), 0);
        assert_eq!(state.climbed_mib(t0 + Duration::from_millis(11_500)), 768);
        assert_eq!(state.climbed_mib(t0 + s(13)), 1536);
        assert_eq!(state.climbed_mib(t0 + s(10_000)), 512 * 9_990);
        let off = climbing(0.0);
        assert_eq!((off.climb_since, off.climbed_mib(t0 + s(60))), (None, 0));
    }

    #[test]
    fn rates_of_zero_and_one_are_exact() {
        let mut rng = SimRng::for_request(7, 0, Purpose::Faults);
        let all = Faults {
            error_rate: 1.0,
            truncate_rate: 1.0,
            error_event_rate: 1.0,
            disconnect_rate: 1.0,
            malformed_rate: 1.0,
            ..Faults::default()
        };
        let only = |f: Faults| FaultPlan::draw(&f, &mut SimRng::for_request(7, 1, Purpose::Faults));
        for _ in 0..100 {
            assert_eq!(
                FaultPlan::draw(&Faults::default(), &mut rng),
                FaultPlan::default()
            );
            let plan = FaultPlan::draw(&all, &mut rng);
            assert!(plan.error);
            assert_eq!(plan.cut, Some(StreamCut::ErrorEvent));
        }
        let malformed = Faults {
            malformed_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(only(malformed).cut, Some(StreamCut::Malformed));
        let disconnect = Faults {
            disconnect_rate: 1.0,
            ..Faults::default()
        };
        assert_eq!(only(disconnect).cut, Some(StreamCut::Disconnect));
    }

    #[test]
    fn error_status_falls_back_to_500() {
        let mut f = Faults::default();
        assert_eq!(error_status(&f).as_u16(), 500);
        f.error_status = 429;
        assert_eq!(error_status(&f).as_u16(), 429);
        f.error_status = 200;
        assert_eq!(error_status(&f).as_u16(), 500);
        f.error_status = 1000;
        assert_eq!(error_status(&f).as_u16(), 500);
    }
}
