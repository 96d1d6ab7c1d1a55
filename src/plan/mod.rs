//! Plans: what to send, how fast, and what must hold.
//!
//! Parse, then resolve (ripgrep's lowargs/hiargs): [`raw`] is the TOML as
//! written, [`Plan`] is the resolved plan with URLs parsed, prompts built,
//! durations scaled and thresholds parsed. Only a resolved plan reaches the
//! engine, so nothing is sent before everything is valid. This module does
//! no network I/O; it reads the plan file and the prompt files it names.

pub mod access;
mod builtin;
pub mod check;
mod dataset;
pub mod drill;
mod error;
pub mod observe;
pub mod overrides;
pub mod raw;
pub mod regression;
pub mod replay;
mod resolve;
pub mod session;
pub mod simulator;
pub mod slo;
pub mod task;
pub mod threshold;
pub mod traces;

use std::time::Duration;

use serde::{Serialize, Serializer};

pub use builtin::{BUILTIN, Builtin};
pub use error::{Located, PlanError};
pub use observe::{ObserveOverrides, ObservePlan};
pub use raw::Api;
pub use resolve::{Overrides, load, resolve_source, synthetic_prompt};
pub use task::Task;
pub use threshold::Threshold;
pub use traces::{TraceBackend, TracePlan};

/// The model a plan gets when it names none and runs against the embedded
/// simulator (which serves whatever models the plan names).
pub const SIMULATOR_MODEL: &str = "sim-llama-8b";

/// The name a plan's only model gets when it names none and targets a real
/// server: requests then carry no `model` field and the server uses its
/// default (vLLM serves its first model).
pub const SERVER_DEFAULT_MODEL: &str = "default";

#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub target: Target,
    pub models: Vec<Model>,
    /// What kinds of request the phases mix; one implicit task (the
    /// target's request) when the plan declares none (left out of the
    /// resolved plan written to reports).
    #[serde(skip_serializing_if = "task::only_implicit")]
    pub tasks: Vec<Task>,
    pub workload: Workload,
    pub phases: Vec<Phase>,
    pub thresholds: Vec<Threshold>,
    pub abort_on_fail: bool,
    /// Trace coverage settings; `None` when requests carry no `traceparent`.
    pub traces: Option<TracePlan>,
    /// Server-side sampling.
    pub observe: ObservePlan,
    /// Per-request SLOs; empty when the plan sets none (no goodput).
    pub slo: crate::stats::Slo,
    /// The embedded simulator's settings, when the plan sets any.
    pub simulator: Option<simulator::SimulatorSettings>,
    /// What each headline metric may move against a baseline run.
    pub regression: Vec<regression::Tolerance>,
    /// The command-line and environment overrides applied to the file,
    /// as given (`--rate 50`, `INFERCHECK_REQUESTS=600`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
}

impl Plan {
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// The plan declared `[[tasks]]` (reports then break results down by
    /// task).
    pub fn has_tasks(&self) -> bool {
        self.tasks.iter().any(|t| !t.implicit)
    }

    /// Indices of the tasks `phase` draws from.
    pub fn phase_tasks(&self, phase: &Phase) -> Vec<usize> {
        if phase.tasks.is_empty() {
            return (0..self.tasks.len()).collect();
        }
        phase
            .tasks
            .iter()
            .filter_map(|name| self.tasks.iter().position(|t| &t.name == name))
            .collect()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Target {
    /// None: start the embedded simulator and aim at it.
    pub base_url: Option<String>,
    pub api: Api,
    pub stream: bool,
    /// Streaming requests ask for usage on every chunk
    /// (`stream_options.continuous_usage_stats`, honoured by vLLM and
    /// SGLang), so inter-token gaps are split by tokens, not chunks.
    pub continuous_usage: bool,
    #[serde(serialize_with = "secs")]
    pub timeout: Duration,
    pub headers: Vec<(String, String)>,
    /// Most requests in flight at once in open-model phases.
    pub max_in_flight: usize,
    pub template: Option<Template>,
    /// 3xx redirects are followed (default: counted as `http_3xx`).
    pub follow_redirects: bool,
    /// Largest response body read before the request fails `too_large`.
    pub max_response_bytes: u64,
    /// How requests to the target authenticate and verify TLS.
    pub access: crate::tls::Access,
}

pub use crate::tls::Secret;

#[derive(Clone, Debug, Serialize)]
pub struct Template {
    pub method: String,
    pub path: String,
    pub body: Option<String>,
    pub tokens_pointer: Option<String>,
}

/// Fills `{{prompt}}`, `{{model}}` (JSON-escaped, without quotes: the
/// template writes the quotes), `{{max_tokens}}` and `{{temperature}}`.
pub fn fill_template(
    template: &str,
    prompt: &str,
    max_tokens: u32,
    model: &str,
    temperature: f64,
) -> String {
    template
        .replace("{{prompt}}", &escape(prompt))
        .replace("{{model}}", &escape(model))
        .replace("{{max_tokens}}", &max_tokens.to_string())
        .replace("{{temperature}}", &temperature.to_string())
}

fn escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).expect("a string always serialises");
    quoted[1..quoted.len() - 1].to_owned()
}

#[derive(Clone, Debug, Serialize)]
pub struct Model {
    pub name: String,
    /// Share of requests, normalised so all models sum to 1.
    pub weight: f64,
    pub thresholds: Vec<Threshold>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub max_tokens: u32,
    pub temperature: f64,
    pub prompts: Vec<Prompt>,
    pub seed: u64,
    /// A system prompt of this many tokens shared by every request (0:
    /// none), so a server's prefix cache can reuse it.
    #[serde(skip_serializing_if = "is_zero_tokens")]
    pub shared_prefix_tokens: u32,
    #[serde(skip)]
    pub shared_prefix: String,
    /// Conversations of a ShareGPT file without a question and an answer.
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped_conversations: usize,
    /// Multi-turn sessions (`turns = N`); `None`: every request stands alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<session::Sessions>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_zero_tokens(n: &u32) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Serialize)]
pub struct Prompt {
    #[serde(skip)]
    pub text: String,
    /// Target length in tokens (words for synthetic prompts).
    pub tokens: u32,
    pub weight: f64,
    /// The output length this prompt asks for (a dataset's recorded
    /// answer), over the phase's `max_tokens`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Phase {
    pub name: String,
    /// The phase's length; with `requests`, its longest.
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    /// The phase ends once this many requests are done (or at `duration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    pub load: Load,
    pub max_tokens: u32,
    pub thresholds: Vec<Threshold>,
    /// Recovery is measured from this phase's end (also, without the mark,
    /// when its load is heavier than the next phase's).
    pub stress: bool,
    /// A fault drill: the fault this phase injects and the alerts it must
    /// raise (see `plan::drill`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<drill::Drill>,
    /// The tasks this phase draws from, by name; empty: all of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Load {
    Constant {
        rate: f64,
    },
    Ramp {
        from: f64,
        to: f64,
    },
    Poisson {
        rate: f64,
    },
    Users {
        users: usize,
        #[serde(serialize_with = "secs")]
        think_min: Duration,
        #[serde(serialize_with = "secs")]
        think_max: Duration,
        /// Users started per second at the start, and stopped (newest
        /// first) at the same rate before the end; `None`: all at once.
        #[serde(skip_serializing_if = "Option::is_none")]
        spawn_rate: Option<f64>,
    },
    Concurrency {
        concurrency: usize,
    },
    /// `size` requests at once, every `every` (open model).
    Burst {
        size: usize,
        #[serde(serialize_with = "secs")]
        every: Duration,
    },
    /// Sends nothing; the samplers go on.
    Pause,
    /// A recorded trace's requests at their offsets (divided by `speedup`),
    /// each with its input and output length.
    Replay {
        file: String,
        format: replay::TraceFormat,
        speedup: f64,
        requests: usize,
        #[serde(skip)]
        records: std::sync::Arc<[replay::TraceRecord]>,
    },
    Sweep {
        levels: Vec<usize>,
        #[serde(serialize_with = "secs")]
        step_duration: Duration,
    },
}

impl Load {
    /// The load in words, for reports.
    pub fn describe(&self) -> String {
        let r = |v: f64| crate::metric::format_value(crate::metric::Unit::PerSecond, v);
        match self {
            Load::Constant { rate } => format!("constant {} req/s", r(*rate)),
            Load::Ramp { from, to } => format!("ramp {}→{} req/s", r(*from), r(*to)),
            Load::Poisson { rate } => format!("poisson {} req/s", r(*rate)),
            Load::Users {
                users,
                think_min,
                think_max,
                spawn_rate,
            } => {
                let spawn =
                    spawn_rate.map_or_else(String::new, |s| format!(", spawned {}/s", r(s)));
                format!(
                    "{users} users, think {}–{}{spawn}",
                    crate::units::format_duration(*think_min),
                    crate::units::format_duration(*think_max)
                )
            }
            Load::Concurrency { concurrency } => format!("concurrency {concurrency}"),
            Load::Burst { size, every } => format!(
                "burst of {size} every {}",
                crate::units::format_duration(*every)
            ),
            Load::Pause => "pause".to_owned(),
            Load::Replay {
                file,
                speedup,
                requests,
                ..
            } => format!(
                "replay of {file} ({requests} requests, {}× speed)",
                r(*speedup)
            ),
            Load::Sweep { levels, .. } => {
                let levels: Vec<String> = levels.iter().map(|l| l.to_string()).collect();
                format!("sweep concurrency {}", levels.join(", "))
            }
        }
    }

    /// The highest target arrival rate of an open-model load.
    pub fn peak_rate(&self) -> Option<f64> {
        match self {
            Load::Constant { rate } | Load::Poisson { rate } => Some(*rate),
            Load::Ramp { from, to } => Some(from.max(*to)),
            Load::Burst { .. } => self.mean_rate(),
            _ => None,
        }
    }

    /// The mean target rate over the phase, for achieved-vs-target.
    pub fn mean_rate(&self) -> Option<f64> {
        match self {
            Load::Constant { rate } | Load::Poisson { rate } => Some(*rate),
            Load::Ramp { from, to } => Some((from + to) / 2.0),
            Load::Burst { size, every } => Some(*size as f64 / every.as_secs_f64()),
            Load::Replay { records, .. } => {
                let span = records.last().map_or(0.0, |r| r.at.as_secs_f64());
                (span > 0.0).then(|| records.len() as f64 / span)
            }
            _ => None,
        }
    }
}

fn secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_escape_text_and_fill_numbers() {
        let filled = fill_template(
            r#"{"prompt": "{{prompt}}", "n": {{max_tokens}}}"#,
            "say \"hi\"\n",
            5,
            "m",
            0.5,
        );
        assert_eq!(filled, r#"{"prompt": "say \"hi\"\n", "n": 5}"#);
    }
}
