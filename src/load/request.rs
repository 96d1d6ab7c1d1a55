//! Request bodies, built once per phase before any request is sent: the
//! hot path picks a prebuilt `Bytes` (a reference-count bump) and never
//! serialises JSON per request.

use bytes::Bytes;
use rand::Rng;
use serde_json::json;

use crate::plan::{Api, Phase, Plan, SERVER_DEFAULT_MODEL, fill_template};

/// A body ready to send and the model it targets.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub model: u16,
    pub body: Bytes,
    /// The model an OpenAI body names, for checking the response's
    /// `model`; `None` when it names none (the server's default) or the
    /// body is the plan's own template.
    pub asked_model: Option<std::sync::Arc<str>>,
}

/// Every (model, prompt) combination of a phase with its weight.
#[derive(Clone, Debug)]
pub struct RequestSet {
    entries: Vec<Prepared>,
    /// Running sum of weights, for picking by a uniform draw.
    cumulative: Vec<f64>,
}

impl RequestSet {
    pub fn build(plan: &Plan, phase: &Phase) -> RequestSet {
        let mut entries = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        let prompt_total: f64 = plan.workload.prompts.iter().map(|p| p.weight).sum();
        for (m, model) in plan.models.iter().enumerate() {
            for prompt in &plan.workload.prompts {
                let body = body(plan, phase, &model.name, &prompt.text);
                total += model.weight * prompt.weight / prompt_total;
                let checked =
                    model.name != SERVER_DEFAULT_MODEL && plan.target.api != Api::Template;
                entries.push(Prepared {
                    model: m as u16,
                    body: Bytes::from(body),
                    asked_model: checked.then(|| model.name.as_str().into()),
                });
                cumulative.push(total);
            }
        }
        RequestSet {
            entries,
            cumulative,
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

fn body(plan: &Plan, phase: &Phase, model: &str, prompt: &str) -> Vec<u8> {
    let (max_tokens, temperature, stream) = (
        phase.max_tokens,
        plan.workload.temperature,
        plan.target.stream,
    );
    // A plan that names no model lets the server pick its default.
    let named = (model != SERVER_DEFAULT_MODEL).then_some(model);
    let mut value = match plan.target.api {
        Api::OpenaiChat => json!({
            "model": named,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }),
        Api::OpenaiCompletions => json!({
            "model": named,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }),
        Api::Template => {
            let template = plan
                .target
                .template
                .as_ref()
                .and_then(|t| t.body.as_deref());
            return template.map_or_else(Vec::new, |t| {
                fill_template(t, prompt, max_tokens, model, temperature).into_bytes()
            });
        }
    };
    if named.is_none()
        && let Some(fields) = value.as_object_mut()
    {
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
    serde_json::to_vec(&value).expect("a JSON value always serialises")
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
