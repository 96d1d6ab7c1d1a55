//! The plan as the user wrote it: serde types mirroring the TOML, one per
//! table, with unknown fields rejected. Values with units are parsed while
//! deserialising so that errors carry the TOML span. Nothing here checks
//! relations between fields; that is `resolve`'s job.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_spanned::Spanned;

use super::threshold::{self, Threshold};
use crate::units;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub name: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdValue>,
    #[serde(default)]
    pub abort_on_fail: bool,
    #[serde(default)]
    pub target: RawTarget,
    #[serde(default)]
    pub models: Vec<RawModel>,
    #[serde(default)]
    pub workload: RawWorkload,
    pub phases: Spanned<Vec<RawPhase>>,
    /// Trace coverage (`[traces]`, see `plan::traces`).
    pub traces: Option<Spanned<super::traces::RawTraces>>,
    /// Server-side sampling (`[observe]`, see `plan::observe`).
    pub observe: Option<Spanned<super::observe::RawObserve>>,
    /// Per-request SLOs (`[slo]`, see `plan::slo`).
    pub slo: Option<super::slo::RawSlo>,
    /// The embedded simulator's settings (`[simulator]`).
    pub simulator: Option<Spanned<super::simulator::RawSimulator>>,
    /// Allowed changes against a baseline run (`[regression]`).
    pub regression: Option<super::regression::RawRegression>,
    /// The kinds of request phases mix (`[[tasks]]`, see `plan::task`).
    #[serde(default)]
    pub tasks: Vec<super::task::RawTask>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub base_url: Option<Spanned<String>>,
    #[serde(default)]
    pub api: Api,
    pub stream: Option<bool>,
    /// Ask for usage on every chunk (`stream_options.continuous_usage_stats`).
    pub continuous_usage: Option<bool>,
    pub timeout: Option<DurationValue>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Name of the environment variable holding the API key.
    pub api_key_env: Option<Spanned<String>>,
    pub max_in_flight: Option<Spanned<usize>>,
    pub template: Option<Spanned<RawTemplate>>,
    /// Follow 3xx redirects (off: a redirect is counted, never followed).
    pub follow_redirects: Option<bool>,
    /// Largest response body read; beyond it the request fails `too_large`.
    pub max_response_bytes: Option<Spanned<u64>>,
    /// Credentials for the target, from env vars or files (`plan::access`).
    pub auth: Option<Spanned<super::access::RawAuth>>,
    /// CA bundle, client certificate, verification (`plan::access`).
    pub tls: Option<Spanned<super::access::RawTls>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    #[default]
    OpenaiChat,
    OpenaiCompletions,
    Template,
}

impl Api {
    pub fn name(self) -> &'static str {
        match self {
            Api::OpenaiChat => "openai-chat",
            Api::OpenaiCompletions => "openai-completions",
            Api::Template => "template",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplate {
    #[serde(default = "default_method")]
    pub method: String,
    pub path: String,
    /// JSON with placeholders {{prompt}}, {{max_tokens}}, {{model}}, {{temperature}}.
    pub body: Option<String>,
    /// JSON pointer to the output token count in a response, e.g. "/usage/completion_tokens".
    pub tokens_pointer: Option<String>,
}

fn default_method() -> String {
    "POST".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub name: String,
    #[serde(default = "one")]
    pub weight: f64,
    #[serde(default)]
    pub thresholds: Vec<ThresholdValue>,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    #[serde(default)]
    pub prompts: Vec<RawPrompt>,
    pub prompts_file: Option<Spanned<String>>,
    /// How `prompts_file` is written: `jsonl` (default) or `sharegpt`.
    #[serde(default)]
    pub prompts_format: PromptsFormat,
    pub seed: Option<u64>,
    /// Tokens of a system prompt every request shares (prefix caching).
    pub shared_prefix_tokens: Option<u32>,
    /// Multi-turn sessions of this many turns (`plan::session`).
    pub turns: Option<Spanned<u32>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromptsFormat {
    /// `{"prompt": "...", "weight": 1}` a line.
    #[default]
    Jsonl,
    /// ShareGPT conversations (`plan::dataset`).
    Sharegpt,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrompt {
    pub tokens: Spanned<u32>,
    #[serde(default = "one")]
    pub weight: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: String,
    pub duration: Option<DurationValue>,
    /// Stop after this many requests (or at `duration`, whichever comes
    /// first; without a duration, at [`super::resolve::MAX_REQUESTS_DURATION`]).
    pub requests: Option<Spanned<u64>>,
    pub load: Spanned<RawLoad>,
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdValue>,
    /// Recovery is measured from this phase's end (default: when its load
    /// is heavier than the next phase's).
    #[serde(default)]
    pub stress: bool,
    /// A fault drill (`plan::drill`).
    pub drill: Option<super::drill::RawDrill>,
    /// The tasks this phase draws from, by name (default: all of them).
    pub tasks: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawLoad {
    /// Open model: a fixed arrival rate.
    Constant { rate: RateValue },
    /// Open model: the rate moves linearly from `from` to `to`.
    Ramp { from: RampRate, to: RampRate },
    /// Open model: Poisson arrivals with mean `rate`.
    Poisson { rate: RateValue },
    /// Closed model: virtual users, each waiting a think time between requests.
    Users {
        users: usize,
        think: Option<RangeValue>,
        /// Users started (and, at the end, stopped) per second; default all at once.
        spawn_rate: Option<RateValue>,
    },
    /// Closed model: exactly `concurrency` requests in flight.
    Concurrency { concurrency: usize },
    /// Open model: `size` requests at once, every `every`.
    Burst { size: usize, every: DurationValue },
    /// Nothing is sent; sampling goes on (the server's cool-down).
    Pause {},
    /// Open model: a recorded trace's arrivals and lengths (`plan::replay`).
    Replay {
        file: String,
        format: Option<super::replay::TraceFormat>,
        speedup: Option<f64>,
    },
    /// Closed model, one step per level, each `step_duration` long.
    Sweep {
        levels: Vec<usize>,
        step_duration: DurationValue,
    },
}

/// A duration written as a string with a unit ("500ms", "2m").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DurationValue(pub Duration);

/// A positive rate ("50", 50, "50/s", "3000/m").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateValue(pub f64);

/// A non-negative rate, for ramp ends (ramping down to 0 is allowed).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RampRate(pub f64);

/// A think-time range ("1s..3s").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RangeValue(pub Duration, pub Duration);

/// A threshold expression, parsed when read.
#[derive(Clone, Debug, PartialEq)]
pub struct ThresholdValue(pub Threshold);

/// Deserialises `T` from a string through `parse`, or from a number
/// through `from_number` where one makes sense.
struct ParsedVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_number: Option<fn(f64) -> Result<T, String>>,
    _marker: PhantomData<T>,
}

impl<'de, T> Visitor<'de> for ParsedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        match self.from_number {
            Some(convert) => convert(v).map_err(E::custom),
            None => Err(E::invalid_type(de::Unexpected::Float(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match self.from_number {
            Some(convert) => convert(v as f64).map_err(E::custom),
            None => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }
}

fn visitor<T>(
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_number: Option<fn(f64) -> Result<T, String>>,
) -> ParsedVisitor<T> {
    ParsedVisitor {
        expecting,
        parse,
        from_number,
        _marker: PhantomData,
    }
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |s: &str| units::parse_duration(s).map(DurationValue);
        d.deserialize_any(visitor(
            "a duration string like \"30s\" or \"5m\"",
            parse,
            None,
        ))
    }
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |s: &str| units::parse_rate(s).map(RateValue);
        let number = |v: f64| units::check_rate(v).map(RateValue);
        d.deserialize_any(visitor("a rate like 50 or \"50/s\"", parse, Some(number)))
    }
}

fn check_ramp_rate(v: f64) -> Result<RampRate, String> {
    if v.is_finite() && v >= 0.0 {
        Ok(RampRate(v))
    } else {
        Err(format!(
            "a ramp rate must be zero or a positive number of requests per second, got {v}"
        ))
    }
}

impl<'de> Deserialize<'de> for RampRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |s: &str| match s.trim() {
            "0" | "0/s" => Ok(RampRate(0.0)),
            other => units::parse_rate(other).map(RampRate),
        };
        d.deserialize_any(visitor(
            "a rate like 10 or \"10/s\"",
            parse,
            Some(check_ramp_rate),
        ))
    }
}

impl<'de> Deserialize<'de> for RangeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |s: &str| units::parse_duration_range(s).map(|(a, b)| RangeValue(a, b));
        d.deserialize_any(visitor("a duration range like \"1s..3s\"", parse, None))
    }
}

impl<'de> Deserialize<'de> for ThresholdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parse = |s: &str| threshold::parse(s).map(ThresholdValue);
        d.deserialize_any(visitor(
            "a threshold like \"p95(latency) < 950ms\"",
            parse,
            None,
        ))
    }
}
