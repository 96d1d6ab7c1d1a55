//! Latency drivers (DESIGN.md): every per-second client series — latency,
//! TTFT and TPOT p95, error rate — against every sampled server series,
//! by Spearman's ρ at the lag in −5…+5 s where it is strongest. A pair is a
//! driver when its ρ is significant once autocorrelation shrinks its
//! points (`stats::correlation`) and once α is divided by the number of
//! tests made (Bonferroni), so independent noise names no driver in at
//! least 95 % of runs. Candidates are the series that measure pressure on
//! the server; its own latency figures and mirrors of another series are
//! left out (see `candidate`).

use std::collections::BTreeMap;

use crate::report::{DriverPair, Interval, IntervalSummary, LatencyDrivers};
use crate::stats::Series;
use crate::stats::correlation::{by_second, strongest_lag};

/// Lags searched, seconds either way.
pub const MAX_LAG_S: i64 = 5;
/// The family-wise error rate over every test of a run.
pub const ALPHA: f64 = 0.05;

/// Series that cannot be a driver: infercheck's own, the server's own
/// measures of the latency being explained (which move with it by
/// definition, not as its cause), and mirrors of another candidate.
const NOT_DRIVERS: &[&str] = &[
    "generator_cpu",
    "avg_processing_time",
    "request_success_rate",
    "vram_free",
];

/// Whether a sampled series may be named as a driver: pressure on the
/// server (queue, batch, KV, GPU, CPU, memory, token rate), not the
/// server's own latency figures (`server_ttft_p95`, ...).
fn candidate(name: &str) -> bool {
    !NOT_DRIVERS.contains(&name) && !name.starts_with("server_")
}

/// The client's per-second series (`IntervalSummary::CLIENT_SERIES`):
/// complete seconds only.
fn client_series(intervals: &[IntervalSummary]) -> Vec<(&'static str, BTreeMap<i64, f64>)> {
    IntervalSummary::CLIENT_SERIES
        .iter()
        .map(|(name, read)| {
            let points: Vec<(f64, f64)> = intervals
                .iter()
                .filter(|i| i.duration_s >= 0.99)
                .filter_map(|i| read(i).map(|v| (i.t, v)))
                .collect();
            (*name, by_second(&points))
        })
        .collect()
}

/// Every client series against every sampled server series.
pub fn drivers(intervals: &[IntervalSummary], sampled: &[Series]) -> LatencyDrivers {
    let servers: Vec<(&str, BTreeMap<i64, f64>)> = sampled
        .iter()
        .filter(|s| candidate(&s.name))
        .map(|s| (s.name.as_str(), by_second(&s.points())))
        .collect();
    let mut found = Vec::new();
    let mut tests = 0;
    for (client, effect) in client_series(intervals) {
        for (server, cause) in &servers {
            if let Some(lagged) = strongest_lag(&effect, cause, MAX_LAG_S) {
                tests += lagged.tests;
                found.push((client, *server, lagged));
            }
        }
    }
    let alpha_per_test = if tests > 0 {
        ALPHA / tests as f64
    } else {
        ALPHA
    };
    let mut pairs: Vec<DriverPair> = found
        .into_iter()
        .map(|(client, server, lagged)| {
            let c = lagged.correlation;
            DriverPair {
                client: client.to_owned(),
                server: server.to_owned(),
                rho: c.rho,
                lag_s: lagged.lag_s,
                n: c.n as u64,
                n_effective: c.n_effective,
                ci95: Interval {
                    low: c.ci95.0,
                    high: c.ci95.1,
                },
                p_value: c.p_value,
                driver: c.p_value < alpha_per_test,
            }
        })
        .collect();
    pairs.sort_by(|a, b| b.rho.abs().total_cmp(&a.rho.abs()));
    LatencyDrivers {
        max_lag_s: MAX_LAG_S,
        tests: tests as u64,
        alpha: ALPHA,
        alpha_per_test,
        pairs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report::second;

    /// SplitMix64 → uniform → Box–Muller: deterministic normal noise.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u, v) = (self.uniform().max(1e-12), self.uniform());
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }

        /// An AR(1) series: autocorrelated like a real per-second series.
        fn ar1(&mut self, n: usize, phi: f64) -> Vec<f64> {
            let mut x = 0.0;
            (0..n)
                .map(|_| {
                    x = phi * x + self.normal();
                    x
                })
                .collect()
        }
    }

    fn series(name: &str, values: &[f64]) -> Series {
        let mut s = Series::new(name, "count");
        for (i, v) in values.iter().enumerate() {
            s.push((i + 1) as f64, *v);
        }
        s
    }

    #[test]
    fn a_server_series_that_leads_latency_by_2s_is_named() {
        let n = 180;
        let mut noise = Noise(7);
        let queue = noise.ar1(n, 0.5);
        // ρ ≈ 0.9: latency is the queue two seconds earlier plus noise.
        let latency: Vec<IntervalSummary> = (0..n)
            .map(|i| {
                let cause = if i >= 2 { queue[i - 2] } else { 0.0 };
                second(
                    (i + 1) as f64,
                    "steady",
                    500.0 + 40.0 * (cause + 0.45 * noise.normal()),
                )
            })
            .collect();
        let unrelated = noise.ar1(n, 0.8);
        let found = drivers(
            &latency,
            &[
                series("queue_depth", &queue),
                series("cpu_load", &unrelated),
            ],
        );
        let drivers: Vec<&DriverPair> = found.drivers().collect();
        assert_eq!(drivers.len(), 1, "{:?}", found.pairs);
        let d = drivers[0];
        assert_eq!(
            (d.client.as_str(), d.server.as_str(), d.lag_s),
            ("latency p95", "queue_depth", 2)
        );
        assert!((d.rho - 0.9).abs() < 0.05, "ρ {}", d.rho);
        assert!(d.ci95.low < d.rho && d.rho < d.ci95.high);
    }

    #[test]
    fn independent_noise_names_no_driver_in_95_of_100_runs() {
        let n = 120;
        let mut quiet = 0;
        for trial in 0..100 {
            let mut noise = Noise(1000 + trial);
            let latency: Vec<IntervalSummary> = noise
                .ar1(n, 0.6)
                .iter()
                .enumerate()
                .map(|(i, v)| second((i + 1) as f64, "steady", 500.0 + 30.0 * v))
                .collect();
            let servers: Vec<Series> = ["queue_depth", "kv_usage", "gpu_util", "running"]
                .iter()
                .map(|name| series(name, &noise.ar1(n, 0.8)))
                .collect();
            quiet += usize::from(drivers(&latency, &servers).drivers().next().is_none());
        }
        assert!(quiet >= 95, "no driver in {quiet} of 100 runs");
    }

    #[test]
    fn the_servers_own_latency_and_mirrors_are_not_candidates() {
        for name in [
            "generator_cpu",
            "server_ttft_p95",
            "avg_processing_time",
            "vram_free",
        ] {
            assert!(!candidate(name), "{name}");
        }
        for name in ["queue_depth", "kv_usage", "gpu_util", "running", "cpu_load"] {
            assert!(candidate(name), "{name}");
        }
    }

    #[test]
    fn the_generators_own_series_is_not_a_candidate() {
        let latency: Vec<IntervalSummary> = (0..30)
            .map(|i| second(f64::from(i + 1), "steady", f64::from(i)))
            .collect();
        let own = series("generator_cpu", &(0..30).map(f64::from).collect::<Vec<_>>());
        assert!(drivers(&latency, &[own]).pairs.is_empty());
    }
}
