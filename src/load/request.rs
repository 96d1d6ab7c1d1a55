//! Request bodies, built once per phase before any request is sent: the
//! hot path picks a prebuilt `Bytes` (a reference-count bump) and never
//! serialises JSON per request.

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::plan::replay::TraceRecord;
use crate::plan::session::Session;
use crate::plan::{
    Api, Load, Phase, Plan, Prompt, SERVER_DEFAULT_MODEL, Task, fill_template, synthetic_prompt,
};

/// A body ready to send and the model it targets.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub model: u16,
    /// The plan's task this request is one of (its endpoint and checks).
    pub task: u16,
    pub body: Bytes,
    /// The model an OpenAI body names, for checking the response's
    /// `model`; `None` when it names none (the server's default) or the
    /// body is the plan's own template.
    pub asked_model: Option<std::sync::Arc<str>>,
}

/// Every (model, prompt) combination of a phase with its weight; for a
/// replay, one request per recorded one, in the trace's order.
#[derive(Clone, Debug)]
pub struct RequestSet {
    entries: Vec<Prepared>,
    /// Running sum of weights, for picking by a uniform draw.
    cumulative: Vec<f64>,
    /// The i-th arrival sends the i-th entry (a replay).
    ordered: bool,
    /// Multi-turn conversations; `None` when requests stand alone.
    sessions: Option<SessionSet>,
}

impl RequestSet {
    pub fn build(plan: &Plan, phase: &Phase) -> RequestSet {
        if let Load::Replay { records, .. } = &phase.load {
            return Self::replay(plan, phase, records);
        }
        let tasks = plan.phase_tasks(phase);
        let task_total: f64 = tasks.iter().map(|t| plan.tasks[*t].weight).sum();
        let mut entries = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (m, model) in plan.models.iter().enumerate() {
            for &t in &tasks {
                let task = &plan.tasks[t];
                let share = model.weight * task.weight / task_total;
                let prompts = prompts_of(plan, task);
                let prompt_total: f64 = prompts.iter().map(|p| p.weight).sum();
                for prompt in prompts {
                    total += share * prompt.weight / prompt_total;
                    entries.push(prepared(plan, phase, m, t, prompt));
                    cumulative.push(total);
                }
            }
        }
        let sessions = plan
            .workload
            .sessions
            .as_ref()
            .filter(|s| !s.all.is_empty())
            .map(|s| SessionSet::build(plan, &s.all));
        RequestSet {
            entries,
            cumulative,
            ordered: false,
            sessions,
        }
    }

    /// The phase's conversations, when its users hold multi-turn sessions.
    pub fn sessions(&self) -> Option<&SessionSet> {
        self.sessions.as_ref()
    }

    /// One body per trace record: a synthetic prompt of its input length
    /// asking its output length, for a model drawn by the plan's weights.
    fn replay(plan: &Plan, phase: &Phase, records: &[TraceRecord]) -> RequestSet {
        let task = plan.phase_tasks(phase).first().copied().unwrap_or(0);
        let mut rng = StdRng::seed_from_u64(plan.workload.seed);
        let weights: Vec<f64> = plan.models.iter().map(|m| m.weight).collect();
        let total: f64 = weights.iter().sum();
        let entries = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut draw = rng.random::<f64>() * total;
                let m = weights
                    .iter()
                    .position(|w| {
                        draw -= w;
                        draw < 0.0
                    })
                    .unwrap_or(weights.len() - 1);
                let prompt = Prompt {
                    text: synthetic_prompt(
                        r.input_tokens,
                        plan.workload.seed.wrapping_add(i as u64),
                    ),
                    tokens: r.input_tokens,
                    weight: 1.0,
                    max_tokens: Some(r.output_tokens),
                };
                prepared(plan, phase, m, task, &prompt)
            })
            .collect::<Vec<_>>();
        RequestSet {
            cumulative: (1..=entries.len()).map(|i| i as f64).collect(),
            entries,
            ordered: true,
            sessions: None,
        }
    }

    /// The request for an open schedule's `arrival`-th ticket: a replay's
    /// record of that place; otherwise a weighted draw.
    pub fn for_arrival(&self, arrival: Option<u64>, rng: &mut impl Rng) -> &Prepared {
        match arrival.filter(|_| self.ordered) {
            Some(i) => &self.entries[usize::try_from(i).unwrap_or(0) % self.entries.len()],
            None => self.pick(rng),
        }
    }

    /// Picks a request with probability proportional to its weight.
    pub fn pick(&self, rng: &mut impl Rng) -> &Prepared {
        let total = *self
            .cumulative
            .last()
            .expect("a request set is never empty");
        let draw = rng.random::<f64>() * total;
        let i = self
            .cumulative
            .partition_point(|c| *c <= draw)
            .min(self.entries.len() - 1);
        &self.entries[i]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The prompts a task draws from: its own, or the workload's; a task that
/// sends no body needs just one entry.
fn prompts_of<'a>(plan: &'a Plan, task: &'a Task) -> &'a [Prompt] {
    let prompts = if task.prompts.is_empty() {
        &plan.workload.prompts
    } else {
        &task.prompts
    };
    if task.sends_no_prompt() {
        &prompts[..1]
    } else {
        prompts
    }
}

/// The body of `prompt` for model `m` and task `t` of the plan.
fn prepared(plan: &Plan, phase: &Phase, m: usize, t: usize, prompt: &Prompt) -> Prepared {
    let model = &plan.models[m];
    let task = &plan.tasks[t];
    let checked = model.name != SERVER_DEFAULT_MODEL && task.api != Api::Template;
    Prepared {
        model: m as u16,
        task: t as u16,
        body: Bytes::from(body(plan, phase, task, &model.name, prompt)),
        asked_model: checked.then(|| model.name.as_str().into()),
    }
}

fn body(plan: &Plan, phase: &Phase, task: &Task, model: &str, prompt: &Prompt) -> Vec<u8> {
    let (max_tokens, temperature, stream) = (
        prompt
            .max_tokens
            .or(task.max_tokens)
            .unwrap_or(phase.max_tokens),
        task.temperature,
        task.stream,
    );
    let shared = plan.workload.shared_prefix.as_str();
    // The shared prefix goes first: a system message, or the prompt's start.
    let with_prefix = if shared.is_empty() {
        prompt.text.clone()
    } else {
        format!("{shared}\n{}", prompt.text)
    };
    // A plan that names no model lets the server pick its default.
    let named = (model != SERVER_DEFAULT_MODEL).then_some(model);
    let mut value = match task.api {
        Api::OpenaiChat => {
            let user = json!({"role": "user", "content": prompt.text});
            let messages = if shared.is_empty() {
                json!([user])
            } else {
                json!([{"role": "system", "content": shared}, user])
            };
            json!({
                "model": named,
                "messages": messages,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "stream": stream,
            })
        }
        Api::OpenaiCompletions => json!({
            "model": named,
            "prompt": with_prefix,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }),
        Api::Template => {
            let template = task.template.as_ref().and_then(|t| t.body.as_deref());
            return template.map_or_else(Vec::new, |t| {
                fill_template(t, &with_prefix, max_tokens, model, temperature).into_bytes()
            });
        }
    };
    finish(plan, named.is_some(), stream, &mut value);
    serde_json::to_vec(&value).expect("a JSON value always serialises")
}

/// The last touches of every OpenAI body: no `model` when the plan names
/// none, and usage asked of a stream.
fn finish(plan: &Plan, named: bool, stream: bool, value: &mut serde_json::Value) {
    if !named && let Some(fields) = value.as_object_mut() {
        fields.remove("model");
    }
    if stream {
        // Ask for the server's token count in the last chunk (DESIGN: usage
        // first) and, unless the plan says not to, on every chunk: servers
        // that honour it let inter-token gaps be split per token.
        value["stream_options"] = if plan.target.continuous_usage {
            json!({"include_usage": true, "continuous_usage_stats": true})
        } else {
            json!({"include_usage": true})
        };
    }
}

/// Turn `k` (0-based) of `session` for model `m`: the conversation so far
/// (each earlier question and its answer), then the turn's question.
fn session_turn(plan: &Plan, m: usize, session: &Session, k: usize) -> Prepared {
    let model = &plan.models[m].name;
    let task = &plan.tasks[0];
    let shared = plan.workload.shared_prefix.as_str();
    let mut messages = Vec::with_capacity(2 * k + 2);
    if !shared.is_empty() {
        messages.push(json!({"role": "system", "content": shared}));
    }
    for earlier in &session.turns[..k] {
        messages.push(json!({"role": "user", "content": earlier.question}));
        messages.push(json!({"role": "assistant", "content": earlier.answer}));
    }
    let turn = &session.turns[k];
    messages.push(json!({"role": "user", "content": turn.question}));
    let named = model != SERVER_DEFAULT_MODEL;
    let mut value = json!({
        "model": model,
        "messages": messages,
        "max_tokens": turn.max_tokens,
        "temperature": task.temperature,
        "stream": task.stream,
    });
    finish(plan, named, task.stream, &mut value);
    Prepared {
        model: m as u16,
        task: 0,
        body: Bytes::from(serde_json::to_vec(&value).expect("a JSON value always serialises")),
        asked_model: named.then(|| model.as_str().into()),
    }
}

/// A phase's multi-turn conversations, each turn's body prebuilt, for the
/// models by their weights.
#[derive(Clone, Debug)]
pub struct SessionSet {
    /// (model, each turn's request) per conversation and model.
    sessions: Vec<Vec<Prepared>>,
    cumulative: Vec<f64>,
}

/// Where a user is in its conversation.
#[derive(Clone, Copy, Debug)]
pub struct SessionCursor {
    session: usize,
    /// The next turn, 0-based.
    pub turn: usize,
    /// When its first turn was due.
    pub started: std::time::Duration,
}

impl SessionCursor {
    /// The cursor at the conversation's next turn.
    pub fn next(self) -> SessionCursor {
        SessionCursor {
            turn: self.turn + 1,
            ..self
        }
    }
}

impl SessionSet {
    fn build(plan: &Plan, sessions: &[Session]) -> SessionSet {
        let mut bodies = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for (m, model) in plan.models.iter().enumerate() {
            for session in sessions {
                total += model.weight;
                cumulative.push(total);
                bodies.push(
                    (0..session.turns.len())
                        .map(|k| session_turn(plan, m, session, k))
                        .collect(),
                );
            }
        }
        SessionSet {
            sessions: bodies,
            cumulative,
        }
    }

    /// A new conversation, drawn by the models' weights, starting now.
    pub fn start(&self, rng: &mut impl Rng, now: std::time::Duration) -> SessionCursor {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let draw = rng.random::<f64>() * total;
        let session = self
            .cumulative
            .partition_point(|c| *c <= draw)
            .min(self.sessions.len() - 1);
        SessionCursor {
            session,
            turn: 0,
            started: now,
        }
    }

    /// The cursor's turn and the number of turns its conversation has.
    pub fn turn(&self, cursor: &SessionCursor) -> (&Prepared, usize) {
        let turns = &self.sessions[cursor.session];
        (&turns[cursor.turn], turns.len())
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::plan::{Overrides, resolve_source};

    fn plan(source: &str) -> Plan {
        resolve_source("t.toml", source, None, &Overrides::default()).unwrap()
    }

    #[test]
    fn chat_bodies_ask_for_usage_when_streaming() {
        let p = plan("[[phases]]\nname='a'\nduration='1s'\nload={type='constant',rate=1}\n");
        let set = RequestSet::build(&p, &p.phases[0]);
        let body: serde_json::Value = serde_json::from_slice(&set.entries[0].body).unwrap();
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["stream_options"]["continuous_usage_stats"], true);
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["max_tokens"], 64);
    }

    #[test]
    fn picks_follow_model_weights() {
        let p = plan(
            "[[models]]\nname='a'\nweight=70\n[[models]]\nname='b'\nweight=30\n\
             [[phases]]\nname='a'\nduration='1s'\nload={type='constant',rate=1}\n",
        );
        let set = RequestSet::build(&p, &p.phases[0]);
        let mut rng = SmallRng::seed_from_u64(1);
        let a = (0..10_000)
            .filter(|_| set.pick(&mut rng).model == 0)
            .count();
        assert!((6_800..7_200).contains(&a), "{a}");
    }
}
