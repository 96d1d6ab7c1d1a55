//! The one table of client-side distributions: every per-request time or
//! rate infercheck keeps a histogram of (latency, service time, TTFT, ITL,
//! TPOT, tokens/s, schedule lag, ...). An entry says how the value is
//! measured, its unit, its name in thresholds (`p95(ttft)`) and in
//! `report.json`, and its label in reports. Everything downstream iterates
//! this table: the aggregator's [`super::MetricSet`] records every entry,
//! threshold expressions resolve names through [`Distribution::from_name`],
//! `report.json` keys quantiles and histograms by [`Spec::key`] and
//! [`Spec::histogram_key`], and the Markdown, HTML and terminal renderers
//! list every entry in their "Client Distributions" tables. Adding a
//! distribution is one entry in the `client_distributions!` table below.
//!
//! Definitions follow DESIGN.md ("Vocabulary and definitions").

use std::time::Duration;

use crate::outcome::Outcome;

/// How a distribution's values are recorded and reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// A time: recorded in microseconds, reported in milliseconds.
    Time,
    /// A rate of `.0` ("tok" for tokens) per second: recorded in
    /// thousandths, reported per second.
    PerSecond(&'static str),
}

impl Unit {
    /// Recorded integers per reported unit (µs per ms, thousandths per 1/s).
    pub const RECORDED_PER_REPORTED: f64 = 1000.0;

    /// What the report's key says of the unit: `latency_ms`, `tokens_per_s`.
    pub fn key_suffix(self) -> &'static str {
        match self {
            Unit::Time => "_ms",
            // The name already says it: `tokens_per_s`.
            Unit::PerSecond(_) => "",
        }
    }

    /// What a histogram's key says of its recorded unit: `latency_us`.
    pub fn histogram_suffix(self) -> &'static str {
        match self {
            Unit::Time => "_us",
            Unit::PerSecond(_) => "_milli",
        }
    }
}

/// Where a distribution's values come from.
#[derive(Clone, Copy, Debug)]
pub enum Measure {
    /// One value per finished request (`None`: the request has none, e.g.
    /// no TTFT without a content chunk), in the recorded unit. Failed
    /// requests are measured only when `with_errors` is set: latency
    /// distributions hold successful requests, as k6 and Locust report.
    PerRequest {
        of: fn(&Outcome) -> Option<u64>,
        with_errors: bool,
    },
    /// Recorded by the workers themselves and handed to the aggregator per
    /// step and model (`load::Event::Itl`): ITL has one value per gap
    /// between content chunks, not one per request.
    ByWorkers,
}

/// One entry of the table.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The name thresholds use: `p95(<name>)`.
    pub name: &'static str,
    /// The key of its quantiles in `report.json` (`<name>` + unit suffix).
    pub key: &'static str,
    /// The key of its lossless histogram in `report.json`.
    pub histogram_key: &'static str,
    /// The label reports give it: "TTFT", "Service Time".
    pub label: &'static str,
    /// What it measures, in one line (reports and docs).
    pub definition: &'static str,
    pub unit: Unit,
    pub measure: Measure,
    /// Larger is better (a rate): the best case is the maximum.
    pub higher_is_better: bool,
    /// Shown in the "Streaming UX" table (examples/001).
    pub streaming: bool,
}

/// A duration in the recorded unit of [`Unit::Time`].
pub fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// A rate in the recorded unit of [`Unit::PerSecond`] (thousandths).
pub fn thousandths(per_second: f64) -> u64 {
    (per_second * Unit::RECORDED_PER_REPORTED) as u64
}

/// Declares the table: one `Variant => Spec` per distribution, in report
/// order. Generates [`Distribution`] and its lookup functions.
macro_rules! client_distributions {
    ($( $(#[$doc:meta])* $variant:ident => $spec:expr ),+ $(,)?) => {
        /// A client-side distribution: an entry of the table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Distribution {
            $( $(#[$doc])* $variant ),+
        }

        static SPECS: &[Spec] = &[ $( $spec ),+ ];

        impl Distribution {
            /// Every distribution, in report order.
            pub const ALL: &'static [Distribution] = &[ $( Distribution::$variant ),+ ];
        }
    };
}

client_distributions! {
    /// End minus intended send: coordinated-omission corrected.
    Latency => Spec {
        name: "latency",
        key: "latency_ms",
        histogram_key: "latency_us",
        label: "Latency",
        definition: "end − intended send (coordinated-omission corrected)",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| Some(micros(o.latency())), with_errors: false },
        higher_is_better: false,
        streaming: false,
    },
    /// End minus intended send for every request, failures at the time
    /// they failed: the population a user saw, which a run with many
    /// failures must show beside the successes' latency.
    LatencyAll => Spec {
        name: "latency_all",
        key: "latency_all_ms",
        histogram_key: "latency_all_us",
        label: "Latency (all requests)",
        definition: "end − intended send, every request (failures at their time of failure)",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| Some(micros(o.latency())), with_errors: true },
        higher_is_better: false,
        streaming: false,
    },
    /// End minus actual send.
    ServiceTime => Spec {
        name: "service_time",
        key: "service_time_ms",
        histogram_key: "service_time_us",
        label: "Service Time",
        definition: "end − actual send",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| Some(micros(o.service_time())), with_errors: false },
        higher_is_better: false,
        streaming: false,
    },
    /// First content chunk minus intended send.
    Ttft => Spec {
        name: "ttft",
        key: "ttft_ms",
        histogram_key: "ttft_us",
        label: "TTFT",
        definition: "first content chunk − intended send",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| o.ttft().map(micros), with_errors: false },
        higher_is_better: false,
        streaming: true,
    },
    /// First content chunk minus actual send.
    TtftService => Spec {
        name: "ttft_service",
        key: "ttft_service_ms",
        histogram_key: "ttft_service_us",
        label: "TTFT (service)",
        definition: "first content chunk − actual send",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| o.ttft_service().map(micros), with_errors: false },
        higher_is_better: false,
        streaming: true,
    },
    /// Every gap between consecutive content chunks.
    Itl => Spec {
        name: "itl",
        key: "itl_ms",
        histogram_key: "itl_us",
        label: "ITL",
        definition: "per token: each socket read's gap since the previous one, split over the tokens it carried",
        unit: Unit::Time,
        measure: Measure::ByWorkers,
        higher_is_better: false,
        streaming: true,
    },
    /// (last token − first token) / (output tokens − 1), per request.
    Tpot => Spec {
        name: "tpot",
        key: "tpot_ms",
        histogram_key: "tpot_us",
        label: "TPOT",
        definition: "(last token − first token) / (output tokens − 1), per request",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| o.tpot().map(micros), with_errors: false },
        higher_is_better: false,
        streaming: true,
    },
    /// Output tokens per second of each request, from send to end.
    TokensPerS => Spec {
        name: "tokens_per_s",
        key: "tokens_per_s",
        histogram_key: "tokens_per_s_milli",
        label: "Tokens/s per Request",
        definition: "output tokens / (end − actual send), per request",
        unit: Unit::PerSecond("tok"),
        measure: Measure::PerRequest { of: |o| o.tokens_per_second().map(thousandths), with_errors: false },
        higher_is_better: true,
        streaming: true,
    },
    /// Actual send minus intended send, for every request sent.
    ScheduleLag => Spec {
        name: "schedule_lag",
        key: "schedule_lag_ms",
        histogram_key: "schedule_lag_us",
        label: "Schedule Lag",
        definition: "actual send − intended send, every request",
        unit: Unit::Time,
        measure: Measure::PerRequest { of: |o| Some(micros(o.schedule_lag())), with_errors: true },
        higher_is_better: false,
        streaming: false,
    },
}

impl Distribution {
    /// How many there are: the size of a [`super::MetricSet`]'s histograms.
    pub const COUNT: usize = Distribution::ALL.len();

    pub fn spec(self) -> &'static Spec {
        &SPECS[self as usize]
    }

    /// The index of its histogram in a [`super::MetricSet`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The distribution a threshold names (`ttft` in `p95(ttft)`).
    pub fn from_name(name: &str) -> Option<Distribution> {
        Distribution::ALL
            .iter()
            .copied()
            .find(|d| d.spec().name == name)
    }

    /// The distribution whose `report.json` key is `key` (`ttft_ms`).
    pub fn from_key(key: &str) -> Option<Distribution> {
        Distribution::ALL
            .iter()
            .copied()
            .find(|d| d.spec().key == key)
    }

    /// Every name, for error messages: "latency, service_time, ...".
    pub fn names() -> String {
        let names: Vec<&str> = Distribution::ALL.iter().map(|d| d.spec().name).collect();
        names.join(", ")
    }

    /// This request's value in the recorded unit, when it has one and the
    /// distribution counts it (failed requests only `with_errors`).
    pub fn measure(self, outcome: &Outcome) -> Option<u64> {
        match self.spec().measure {
            Measure::PerRequest { of, with_errors } if with_errors || outcome.is_ok() => {
                of(outcome)
            }
            _ => None,
        }
    }
}

/// Written by name (`"ttft"`), as thresholds and `report.json` name it.
impl serde::Serialize for Distribution {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.spec().name)
    }
}

impl<'de> serde::Deserialize<'de> for Distribution {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Distribution::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown distribution `{name}`; expected one of {}",
                Distribution::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorKind;

    fn outcome(error: Option<ErrorKind>) -> Outcome {
        crate::outcome::example(error)
    }

    #[test]
    fn entries_are_consistent() {
        let mut names = std::collections::HashSet::new();
        for (i, d) in Distribution::ALL.iter().enumerate() {
            let s = d.spec();
            assert_eq!(d.index(), i);
            assert!(names.insert(s.name), "{} twice", s.name);
            assert_eq!(s.key, format!("{}{}", s.name, s.unit.key_suffix()));
            assert_eq!(
                s.histogram_key,
                format!("{}{}", s.name, s.unit.histogram_suffix())
            );
            assert_eq!(Distribution::from_name(s.name), Some(*d));
            assert_eq!(Distribution::from_key(s.key), Some(*d));
            assert!(
                s.name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                s.name
            );
        }
        assert_eq!(Distribution::from_name("latncy"), None);
    }

    #[test]
    fn measures_follow_the_design_definitions() {
        let ok = outcome(None);
        let cases = [
            (Distribution::Latency, Some(190_000)),
            (Distribution::LatencyAll, Some(190_000)),
            (Distribution::ServiceTime, Some(160_000)),
            (Distribution::Ttft, Some(80_000)),
            (Distribution::TtftService, Some(50_000)),
            (Distribution::Itl, None),
            (Distribution::Tpot, Some(10_000)),
            (Distribution::TokensPerS, Some(68_750)),
            (Distribution::ScheduleLag, Some(30_000)),
        ];
        for (d, want) in cases {
            assert_eq!(d.measure(&ok), want, "{d:?}");
        }
        let failed = outcome(Some(ErrorKind::Timeout));
        let measured: Vec<Distribution> = Distribution::ALL
            .iter()
            .copied()
            .filter(|d| d.measure(&failed).is_some())
            .collect();
        assert_eq!(
            measured,
            [Distribution::LatencyAll, Distribution::ScheduleLag]
        );
    }
}
