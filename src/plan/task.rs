//! Tasks: the kinds of request a phase mixes, each with a weight
//! (Locust's `@task(10)`). A task is its own API (chat, completions, a
//! template endpoint or a plain GET like `/health`), prompt set,
//! `max_tokens`, temperature and streaming flag, with its own thresholds
//! and checks; statistics are kept per task as they are per model. A plan
//! without `[[tasks]]` has one implicit task: the target's request.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::check::{self, Check, RawCheck};
use super::raw::{Api, RawPrompt, RawTemplate, ThresholdValue};
use super::{Prompt, Target, Template, Threshold};

/// The implicit task's name, shown nowhere (a plan without tasks has no
/// task section).
pub const IMPLICIT_TASK: &str = "default";

/// A `[[tasks]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub name: Spanned<String>,
    #[serde(default = "one")]
    pub weight: f64,
    /// Default: `template` when `template` or `get` is given, else the
    /// target's API.
    pub api: Option<Api>,
    pub template: Option<Spanned<RawTemplate>>,
    /// A plain GET of this path (`/health`, `/v1/models`).
    pub get: Option<Spanned<String>>,
    /// Default: the target's for OpenAI tasks, off for template tasks.
    pub stream: Option<bool>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    /// The task's own prompts; default the workload's.
    pub prompts: Option<Vec<RawPrompt>>,
    #[serde(default)]
    pub thresholds: Vec<ThresholdValue>,
    #[serde(default)]
    pub checks: Vec<RawCheck>,
}

fn one() -> f64 {
    1.0
}

/// A resolved task.
#[derive(Clone, Debug, Serialize)]
pub struct Task {
    pub name: String,
    /// Relative weight; a phase draws among its tasks in proportion.
    pub weight: f64,
    pub api: Api,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    pub stream: bool,
    pub temperature: f64,
    /// Output tokens asked of this task's requests, over the phase's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The task's own prompts; empty: the workload's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<Prompt>,
    pub thresholds: Vec<Threshold>,
    pub checks: Vec<Check>,
    /// The plan declared no tasks: this is the target's request.
    #[serde(skip)]
    pub implicit: bool,
}

impl Task {
    /// The one task of a plan that declares none.
    pub fn implicit(target: &Target, temperature: f64) -> Task {
        Task {
            name: IMPLICIT_TASK.to_owned(),
            weight: 1.0,
            api: target.api,
            template: target.template.clone(),
            stream: target.stream,
            temperature,
            max_tokens: None,
            prompts: Vec::new(),
            thresholds: Vec::new(),
            checks: Vec::new(),
            implicit: true,
        }
    }

    /// The method and path this task's requests go to.
    pub fn endpoint(&self) -> (&str, &str) {
        match (self.api, &self.template) {
            (Api::OpenaiChat, _) => ("POST", "/v1/chat/completions"),
            (Api::OpenaiCompletions, _) => ("POST", "/v1/completions"),
            (Api::Template, Some(t)) => (t.method.as_str(), t.path.as_str()),
            (Api::Template, None) => ("GET", "/"),
        }
    }

    /// A request without a body: nothing of the prompt is sent.
    pub fn sends_no_prompt(&self) -> bool {
        self.api == Api::Template && self.template.as_ref().is_none_or(|t| t.body.is_none())
    }
}

/// The plan declared no tasks (serde: its implicit one is not written).
pub fn only_implicit(tasks: &[Task]) -> bool {
    tasks.iter().all(|t| t.implicit)
}

/// Builds a task's prompts from its list, seeded apart by its place.
pub type PromptsFn<'a> = dyn Fn(&[RawPrompt], usize) -> Result<Vec<Prompt>, String> + 'a;

/// What resolving a task needs from the rest of the plan.
pub struct TaskContext<'a> {
    pub target: &'a Target,
    pub temperature: f64,
    /// Resolves a `template` table (the target's rules).
    pub template: &'a dyn Fn(Api, Option<Spanned<RawTemplate>>) -> Result<Option<Template>, String>,
    /// Builds prompts from a prompt list (the workload's rules), their
    /// texts seeded apart by the task's place.
    pub prompts: &'a PromptsFn<'a>,
}

/// Resolves `[[tasks]]`; an empty list gives the implicit task. Errors
/// carry the span of the task's name.
pub fn resolve(
    raw: Vec<RawTask>,
    cx: &TaskContext<'_>,
) -> Result<Vec<Task>, (std::ops::Range<usize>, String)> {
    if raw.is_empty() {
        return Ok(vec![Task::implicit(cx.target, cx.temperature)]);
    }
    let mut tasks: Vec<Task> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let span = t.name.span();
        let name = t.name.get_ref().clone();
        if tasks.iter().any(|other| other.name == name) {
            return Err((
                span,
                format!("two tasks are named `{name}`; task names must be unique"),
            ));
        }
        tasks.push(task(t, i, cx).map_err(|m| (span.clone(), m))?);
    }
    Ok(tasks)
}

fn task(raw: RawTask, index: usize, cx: &TaskContext<'_>) -> Result<Task, String> {
    let name = raw.name.into_inner();
    if name.is_empty() {
        return Err("a task needs a name".to_owned());
    }
    if !(raw.weight.is_finite() && raw.weight >= 0.0) {
        return Err(format!(
            "task `{name}`: weight must be a non-negative number, got {}",
            raw.weight
        ));
    }
    let template = match (raw.template, raw.get) {
        (Some(_), Some(get)) => {
            return Err(format!(
                "task `{name}`: give `template` or `get = {:?}`, not both",
                get.get_ref()
            ));
        }
        (Some(t), None) => Some(t),
        (None, Some(get)) => {
            let span = get.span();
            Some(Spanned::new(
                span,
                RawTemplate {
                    method: "GET".to_owned(),
                    path: get.into_inner(),
                    body: None,
                    tokens_pointer: None,
                },
            ))
        }
        (None, None) => None,
    };
    let api = match (raw.api, &template) {
        (Some(api), _) => api,
        (None, Some(_)) => Api::Template,
        (None, None) => cx.target.api,
    };
    let template = match template {
        Some(t) => (cx.template)(api, Some(t)).map_err(|m| format!("task `{name}`: {m}"))?,
        None if api == cx.target.api => cx.target.template.clone(),
        None => (cx.template)(api, None).map_err(|m| format!("task `{name}`: {m}"))?,
    };
    let stream = raw.stream.unwrap_or(match api {
        Api::Template => false,
        _ => cx.target.stream,
    });
    let temperature = raw.temperature.unwrap_or(cx.temperature);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(format!(
            "task `{name}`: temperature must be within 0..=2, got {temperature}"
        ));
    }
    let prompts = match &raw.prompts {
        Some(list) if list.is_empty() => {
            return Err(format!(
                "task `{name}`: `prompts = []` sends nothing; remove it to use the workload's"
            ));
        }
        Some(list) => (cx.prompts)(list, index).map_err(|m| format!("task `{name}`: {m}"))?,
        None => Vec::new(),
    };
    let shape = check::TaskShape {
        task: &name,
        streamed: stream,
        openai: api != Api::Template,
    };
    if raw.checks.len() > check::MAX_CHECKS {
        return Err(format!(
            "task `{name}` has {} checks; a task carries at most {}",
            raw.checks.len(),
            check::MAX_CHECKS
        ));
    }
    let checks = raw
        .checks
        .into_iter()
        .map(|c| check::resolve(c, &shape))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Task {
        name,
        weight: raw.weight,
        api,
        template,
        stream,
        temperature,
        max_tokens: raw.max_tokens.map(|n| n.max(1)),
        prompts,
        thresholds: raw.thresholds.into_iter().map(|t| t.0).collect(),
        checks,
        implicit: false,
    })
}
