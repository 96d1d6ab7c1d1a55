//! Arrival schedules as values: a [`StepLoad`] says when requests are meant
//! to be sent, and nothing here sends anything. One worker loop consumes
//! every schedule (STYLE 9); schedules are pure and unit-tested.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::plan::Load;

/// The load of one step: open (arrivals at intended instants, whatever
/// the server does) or closed (a fixed number of users, each sending
/// after its previous response and a think time).
#[derive(Clone, Debug, PartialEq)]
pub enum StepLoad {
    Open(Arrivals),
    Closed {
        users: usize,
        think_min: Duration,
        think_max: Duration,
        /// Between one user's start and the next's (and, before the end,
        /// between one user's stop and the previous one's); zero: together.
        spawn_every: Duration,
    },
    /// Nothing is sent.
    Pause,
}

/// One step of a phase: a sweep has one per level, other loads one.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub label: String,
    /// The step's length; with `requests`, its longest.
    pub duration: Duration,
    /// The step ends once this many requests are done.
    pub requests: Option<u64>,
    pub load: StepLoad,
}

impl Step {
    /// Concurrency of a closed step.
    pub fn concurrency(&self) -> Option<usize> {
        match self.load {
            StepLoad::Closed { users, .. } => Some(users),
            StepLoad::Open(_) | StepLoad::Pause => None,
        }
    }
}

impl StepLoad {
    /// When closed user `user` (from 0) of `users` is active within a step
    /// of `duration`: users start `spawn_every` apart and stop, newest
    /// first, the same distance apart before the end (Locust's spawn rate,
    /// k6's ramping VUs). `None` for open loads.
    pub fn user_window(&self, user: usize, duration: Duration) -> Option<(Duration, Duration)> {
        let StepLoad::Closed { spawn_every, .. } = self else {
            return None;
        };
        let offset = spawn_every.saturating_mul(u32::try_from(user).unwrap_or(u32::MAX));
        Some((offset, duration.saturating_sub(offset)))
    }
}

/// Splits a phase's load into steps; a `requests` stop applies to a
/// one-step load (the plan refuses it elsewhere).
pub fn steps(load: &Load, duration: Duration, requests: Option<u64>, seed: u64) -> Vec<Step> {
    let closed = |users, think_min, think_max| StepLoad::Closed {
        users,
        think_min,
        think_max,
        spawn_every: Duration::ZERO,
    };
    let one = |label: String, load| {
        vec![Step {
            label,
            duration,
            requests,
            load,
        }]
    };
    match load {
        Load::Constant { rate } => one(
            load.describe(),
            StepLoad::Open(Arrivals::Constant { rate: *rate }),
        ),
        Load::Poisson { rate } => one(
            load.describe(),
            StepLoad::Open(Arrivals::Poisson { rate: *rate, seed }),
        ),
        Load::Ramp { from, to } => one(
            load.describe(),
            StepLoad::Open(Arrivals::Ramp {
                from: *from,
                to: *to,
                duration,
            }),
        ),
        Load::Users {
            users,
            think_min,
            think_max,
            spawn_rate,
        } => one(
            load.describe(),
            StepLoad::Closed {
                users: *users,
                think_min: *think_min,
                think_max: *think_max,
                spawn_every: spawn_rate
                    .map_or(Duration::ZERO, |r| Duration::from_secs_f64(1.0 / r)),
            },
        ),
        Load::Burst { size, every } => one(
            load.describe(),
            StepLoad::Open(Arrivals::Burst {
                size: *size,
                every: *every,
            }),
        ),
        Load::Pause => one(load.describe(), StepLoad::Pause),
        Load::Replay { records, .. } => one(
            load.describe(),
            StepLoad::Open(Arrivals::Replay {
                records: records.clone(),
            }),
        ),
        Load::Concurrency { concurrency } => one(
            load.describe(),
            closed(*concurrency, Duration::ZERO, Duration::ZERO),
        ),
        Load::Sweep {
            levels,
            step_duration,
        } => levels
            .iter()
            .map(|level| Step {
                label: format!("c={level}"),
                duration: *step_duration,
                requests: None,
                load: closed(*level, Duration::ZERO, Duration::ZERO),
            })
            .collect(),
    }
}

/// Open-model arrival processes. Instants are offsets from the step start.
#[derive(Clone, Debug, PartialEq)]
pub enum Arrivals {
    Constant {
        rate: f64,
    },
    /// Rate moves linearly from `from` to `to` over `duration`.
    Ramp {
        from: f64,
        to: f64,
        duration: Duration,
    },
    /// Exponential gaps with mean 1/rate, from a seeded generator.
    Poisson {
        rate: f64,
        seed: u64,
    },
    /// `size` arrivals at the same instant, every `every`.
    Burst {
        size: usize,
        every: Duration,
    },
    /// A recorded trace's arrivals; the i-th ticket is the i-th record.
    Replay {
        records: std::sync::Arc<[crate::plan::replay::TraceRecord]>,
    },
}

impl Arrivals {
    /// Arrivals that share one instant (a burst's size; otherwise 1): the
    /// workers an open step needs ready from its start.
    pub fn simultaneous(&self) -> usize {
        match self {
            Arrivals::Burst { size, .. } => *size,
            _ => 1,
        }
    }

    /// The most arrivals per second the schedule reaches (a burst's whole
    /// size at once), for sizing the worker pool.
    pub fn peak_rate(&self) -> f64 {
        match self {
            Arrivals::Constant { rate } | Arrivals::Poisson { rate, .. } => *rate,
            Arrivals::Ramp { from, to, .. } => from.max(*to),
            Arrivals::Burst { size, every } => {
                (*size as f64).max(*size as f64 / every.as_secs_f64())
            }
            Arrivals::Replay { records } => busiest_second(records),
        }
    }
}

impl Arrivals {
    /// The arrivals before `end`, in order.
    pub fn iter(&self, end: Duration) -> ArrivalIter {
        let rng = match self {
            Arrivals::Poisson { seed, .. } => Some(StdRng::seed_from_u64(*seed)),
            _ => None,
        };
        ArrivalIter {
            arrivals: self.clone(),
            end,
            index: 0,
            poisson_at: 0.0,
            rng,
        }
    }
}

pub struct ArrivalIter {
    arrivals: Arrivals,
    end: Duration,
    index: u64,
    poisson_at: f64,
    rng: Option<StdRng>,
}

impl Iterator for ArrivalIter {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let i = self.index as f64;
        let secs = match &self.arrivals {
            Arrivals::Constant { rate } => i / rate,
            Arrivals::Ramp { from, to, duration } => {
                ramp_instant(*from, *to, duration.as_secs_f64(), i)?
            }
            Arrivals::Burst { size, every } => {
                (self.index / *size as u64) as f64 * every.as_secs_f64()
            }
            Arrivals::Replay { records } => records.get(self.index as usize)?.at.as_secs_f64(),
            Arrivals::Poisson { rate, .. } => {
                let rng = self
                    .rng
                    .as_mut()
                    .expect("poisson arrivals carry a generator");
                // Inverse-CDF sampling of an exponential gap; 1-u avoids ln(0).
                let u: f64 = rng.random();
                let at = self.poisson_at;
                self.poisson_at += -(1.0 - u).ln() / rate;
                at
            }
        };
        let at = Duration::from_secs_f64(secs);
        if at >= self.end {
            return None;
        }
        self.index += 1;
        Some(at)
    }
}

/// The most records within any one second of a trace.
fn busiest_second(records: &[crate::plan::replay::TraceRecord]) -> f64 {
    let mut start = 0;
    let mut most = 0;
    for (end, r) in records.iter().enumerate() {
        while r.at.saturating_sub(records[start].at) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end + 1 - start);
    }
    most as f64
}

/// When the i-th arrival (from 0) of a linear ramp falls: the cumulative
/// count N(t) = from·t + (to−from)·t²/(2D) reaches i. Solved in the
/// cancellation-free form t = 2i / (b + √(b² + 4ai)), which also covers a
/// flat ramp (a = 0) and a ramp down (a < 0) until its total is reached.
fn ramp_instant(from: f64, to: f64, duration_s: f64, i: f64) -> Option<f64> {
    if i == 0.0 {
        return (from > 0.0 || to > 0.0).then_some(0.0);
    }
    let a = (to - from) / (2.0 * duration_s);
    let b = from;
    let disc = b * b + 4.0 * a * i;
    if disc < 0.0 {
        return None;
    }
    let denom = b + disc.sqrt();
    (denom > 0.0).then(|| 2.0 * i / denom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(v: f64) -> Duration {
        Duration::from_secs_f64(v)
    }

    #[test]
    fn constant_rate_is_evenly_spaced() {
        let all: Vec<Duration> = Arrivals::Constant { rate: 4.0 }.iter(secs(1.0)).collect();
        assert_eq!(all, vec![secs(0.0), secs(0.25), secs(0.5), secs(0.75)]);
        assert_eq!(
            Arrivals::Constant { rate: 120.0 }.iter(secs(60.0)).count(),
            7200
        );
    }

    #[test]
    fn ramp_sends_the_area_under_the_rate() {
        // 10 → 50 req/s over 10 s: mean 30 req/s, 300 arrivals.
        let ramp = Arrivals::Ramp {
            from: 10.0,
            to: 50.0,
            duration: secs(10.0),
        };
        let n = ramp.iter(secs(10.0)).count();
        assert!((299..=301).contains(&n), "{n}");
        // The first second is near 10 req/s, the last near 50.
        let times: Vec<f64> = ramp.iter(secs(10.0)).map(|d| d.as_secs_f64()).collect();
        let first = times.iter().filter(|t| **t < 1.0).count();
        let last = times.iter().filter(|t| **t >= 9.0).count();
        assert!(
            (10..=12).contains(&first) && (48..=50).contains(&last),
            "{first} {last}"
        );
    }

    #[test]
    fn ramp_down_to_zero_stops_at_its_total() {
        let ramp = Arrivals::Ramp {
            from: 20.0,
            to: 0.0,
            duration: secs(10.0),
        };
        let n = ramp.iter(secs(10.0)).count();
        assert!((99..=101).contains(&n), "{n}");
        let mut prev = Duration::ZERO;
        for t in ramp.iter(secs(10.0)) {
            assert!(t >= prev);
            prev = t;
        }
    }

    #[test]
    fn poisson_has_the_mean_rate_and_is_deterministic() {
        let p = Arrivals::Poisson {
            rate: 100.0,
            seed: 7,
        };
        let n = p.iter(secs(100.0)).count();
        assert!((9_700..=10_300).contains(&n), "{n}");
        let a: Vec<Duration> = p.iter(secs(1.0)).collect();
        assert_eq!(a, p.iter(secs(1.0)).collect::<Vec<_>>());
        let other: Vec<Duration> = Arrivals::Poisson {
            rate: 100.0,
            seed: 8,
        }
        .iter(secs(1.0))
        .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn sweeps_split_into_one_closed_step_per_level() {
        let load = Load::Sweep {
            levels: vec![20, 24, 32],
            step_duration: secs(60.0),
        };
        let steps = steps(&load, secs(180.0), None, 1);
        let labels: Vec<&str> = steps.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["c=20", "c=24", "c=32"]);
        assert_eq!(steps[2].concurrency(), Some(32));
        assert!(steps.iter().all(|s| s.duration == secs(60.0)));
    }

    #[test]
    fn a_burst_sends_its_size_at_once_every_period() {
        let burst = Arrivals::Burst {
            size: 3,
            every: secs(2.0),
        };
        let all: Vec<Duration> = burst.iter(secs(5.0)).collect();
        let at = |t| vec![secs(t); 3];
        assert_eq!(all, [at(0.0), at(2.0), at(4.0)].concat());
        assert_eq!(burst.peak_rate(), 3.0);
    }

    #[test]
    fn spawned_users_start_and_stop_a_spawn_period_apart() {
        let load = Load::Users {
            users: 3,
            think_min: Duration::ZERO,
            think_max: Duration::ZERO,
            spawn_rate: Some(2.0),
        };
        let step = &steps(&load, secs(10.0), Some(50), 1)[0];
        assert_eq!(step.requests, Some(50));
        let windows: Vec<_> = (0..3)
            .map(|u| step.load.user_window(u, step.duration).unwrap())
            .collect();
        assert_eq!(
            windows,
            [
                (secs(0.0), secs(10.0)),
                (secs(0.5), secs(9.5)),
                (secs(1.0), secs(9.0))
            ]
        );
        let at_once = Load::Concurrency { concurrency: 2 };
        let step = &steps(&at_once, secs(4.0), None, 1)[0];
        assert_eq!(
            step.load.user_window(1, step.duration),
            Some((secs(0.0), secs(4.0)))
        );
        assert_eq!(
            steps(&Load::Pause, secs(4.0), None, 1)[0].load,
            StepLoad::Pause
        );
    }
}
