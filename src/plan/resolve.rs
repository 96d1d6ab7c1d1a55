//! Raw plan → resolved [`Plan`]: every relation between fields is checked,
//! prompt files are read, synthetic prompts built, the API key fetched
//! from the environment and durations scaled. Errors point into the
//! plan's source text.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_spanned::Spanned;

use super::raw::{self, Api, RawLoad, RawPlan};
use super::{
    BUILTIN, Load, Located, Model, Phase, PlanError, Prompt, SERVER_DEFAULT_MODEL, SIMULATOR_MODEL,
    Secret, Target, Template, Workload,
};
use crate::metric::Metric;

/// Command-line values that override the plan.
#[derive(Clone, Debug)]
pub struct Overrides {
    pub target: Option<String>,
    pub model: Option<String>,
    /// Multiplies every phase and step duration (0.05 turns 20 minutes into 1).
    pub duration_scale: f64,
    /// `--otlp-listen`: check trace coverage through the embedded OTLP
    /// receiver listening here.
    pub otlp_listen: Option<std::net::SocketAddr>,
    /// `--prometheus`, `--metrics-listen`, `--target-pid`.
    pub observe: super::ObserveOverrides,
    /// Edits of plan fields (`--set`, `--rate`, …), applied in order.
    pub edits: Vec<super::overrides::Override>,
}

impl Default for Overrides {
    fn default() -> Self {
        Self {
            target: None,
            model: None,
            duration_scale: 1.0,
            otlp_listen: None,
            observe: super::ObserveOverrides::default(),
            edits: Vec::new(),
        }
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const DEFAULT_MAX_IN_FLIGHT: usize = 1024;
/// A response body larger than this is not an LLM answer: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 << 20;
const DEFAULT_MAX_TOKENS: u32 = 64;
const DEFAULT_PROMPT_TOKENS: u32 = 64;
/// The longest a phase stopped by `requests` runs when it names no
/// duration (k6's `maxDuration` default for iteration-bound executors).
pub const MAX_REQUESTS_DURATION: Duration = Duration::from_secs(600);
/// Mixed into the workload's seed for the shared system prompt's text.
const SHARED_PREFIX_SEED: u64 = 0x5348_4152_4544;
/// Durations are scaled but never below this, so a scaled phase still sends.
const MIN_SCALED_DURATION: Duration = Duration::from_millis(200);

/// Loads a plan from a file path or a built-in plan name.
pub fn load(spec: &str, overrides: &Overrides) -> Result<super::Plan, PlanError> {
    let path = Path::new(spec);
    if path.is_file() {
        let source = std::fs::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_owned(),
            source,
        })?;
        return resolve_source(spec, &source, path.parent(), overrides);
    }
    match BUILTIN.iter().find(|b| b.name == spec) {
        Some(builtin) => resolve_source(
            &format!("plans/{}.toml", builtin.name),
            builtin.source,
            None,
            overrides,
        ),
        None if spec.ends_with(".toml") || spec.contains('/') => Err(PlanError::Read {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        }),
        None => Err(PlanError::UnknownPlan {
            name: spec.to_owned(),
            available: BUILTIN
                .iter()
                .map(|b| b.name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Parses and resolves plan text. `file` names it in errors; relative
/// prompt files are read from `base_dir` (the plan's folder).
pub fn resolve_source(
    file: &str,
    source: &str,
    base_dir: Option<&Path>,
    overrides: &Overrides,
) -> Result<super::Plan, PlanError> {
    check_scale(overrides.duration_scale)?;
    let edited =
        super::overrides::apply(source, &overrides.edits).map_err(|message| PlanError::Option {
            option: "override",
            message,
        })?;
    // Errors in an edited plan name the edits: the line shown is the
    // file's line with the overridden value in it.
    let plan_file = file;
    let labelled;
    let file = if overrides.edits.is_empty() {
        file
    } else {
        let labels: Vec<&str> = overrides.edits.iter().map(|e| e.label.as_str()).collect();
        labelled = format!("{file} (with {})", labels.join(", "));
        &labelled
    };
    let source = edited.as_str();
    let raw: RawPlan = toml::from_str(source).map_err(|e| {
        PlanError::Invalid(Box::new(Located::new(
            file,
            source,
            e.span(),
            e.message().to_owned(),
        )))
    })?;
    let ctx = Ctx {
        file,
        plan_file,
        source,
        base_dir,
        overrides,
    };
    ctx.resolve(raw)
}

fn check_scale(scale: f64) -> Result<(), PlanError> {
    if scale.is_finite() && scale > 0.0 {
        Ok(())
    } else {
        Err(PlanError::Option {
            option: "--duration-scale",
            message: format!("must be a positive number, got {scale}"),
        })
    }
}

struct Ctx<'a> {
    /// Names the plan in errors (with the overrides applied, if any).
    file: &'a str,
    /// The plan's file or built-in name, as given.
    plan_file: &'a str,
    source: &'a str,
    base_dir: Option<&'a Path>,
    overrides: &'a Overrides,
}

impl Ctx<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> PlanError {
        PlanError::Invalid(Box::new(Located::new(
            self.file,
            self.source,
            Some(span),
            message.into(),
        )))
    }

    fn resolve(&self, mut raw: RawPlan) -> Result<super::Plan, PlanError> {
        let target = self.target(raw.target)?;
        let (traces_auth, traces_tls) = raw.traces.as_mut().map_or((None, None), |t| {
            let t = t.get_mut();
            (t.auth.take(), t.tls.take())
        });
        let (observe_auth, observe_tls) = raw.observe.as_mut().map_or((None, None), |o| {
            let o = o.get_mut();
            (o.auth.take(), o.tls.take())
        });
        let models = self.models(raw.models, target.base_url.is_none())?;
        let workload = self.workload(raw.workload)?;
        let phases = self.phases(raw.phases, workload.max_tokens)?;
        let tasks = self.tasks(raw.tasks, &target, &workload)?;
        self.check_phase_tasks(&phases, &tasks)?;
        let mut traces = super::traces::resolve(
            raw.traces,
            self.overrides.otlp_listen,
            target.base_url.is_none(),
            &|span, message| self.error(span, message),
        )?;
        if let Some(traces) = &mut traces {
            traces.access = self.access("traces", traces_auth, traces_tls, None)?;
        }
        let mut observe =
            super::observe::resolve(raw.observe, &self.overrides.observe, &|span, message| {
                self.error(span, message)
            })?;
        observe.access = self.access("observe", observe_auth, observe_tls, None)?;
        let all_thresholds = raw
            .thresholds
            .iter()
            .map(|t| &t.0)
            .chain(phases.iter().flat_map(|p| &p.thresholds))
            .chain(models.iter().flat_map(|m| &m.thresholds))
            .chain(tasks.iter().flat_map(|t| &t.thresholds));
        super::observe::check_thresholds(&observe, all_thresholds)
            .map_err(|m| self.error(0..0, m))?;
        if let Some(p) = phases.iter().find(|p| p.drill.is_some())
            && observe.prometheus.is_none()
        {
            return Err(self.error(
                0..0,
                format!(
                    "phase `{}` is a fault drill, whose alerts are read from Prometheus: set [observe] prometheus or pass --prometheus",
                    p.name
                ),
            ));
        }
        let slo = super::slo::resolve(raw.slo, &|span, message| self.error(span, message))?;
        let source = match (&self.overrides.target, &target.base_url) {
            (Some(_), _) => super::simulator::TargetSource::CommandLine,
            (None, Some(_)) => super::simulator::TargetSource::Plan,
            (None, None) => super::simulator::TargetSource::Embedded,
        };
        let simulator = super::simulator::resolve(raw.simulator, source, &|span, message| {
            self.error(span, message)
        })?;
        let regression =
            super::regression::resolve(raw.regression, &|span, message| self.error(span, message))?;
        let needs_slo = raw
            .thresholds
            .iter()
            .map(|t| &t.0)
            .chain(phases.iter().flat_map(|p| &p.thresholds))
            .chain(models.iter().flat_map(|m| &m.thresholds))
            .chain(tasks.iter().flat_map(|t| &t.thresholds))
            .find(|t| matches!(t.metric, Metric::Goodput | Metric::SloAttainment));
        if let (Some(t), true) = (needs_slo, slo.is_empty()) {
            return Err(self.error(
                0..0,
                format!(
                    "threshold \"{}\" needs per-request SLOs: add an [slo] table, e.g. slo = {{ ttft = \"500ms\", latency = \"2s\" }}",
                    t.expression
                ),
            ));
        }
        let plan = super::Plan {
            name: raw.name.unwrap_or_else(|| stem(self.plan_file)),
            description: raw.description.unwrap_or_default(),
            target,
            models,
            tasks,
            workload,
            phases,
            thresholds: raw.thresholds.into_iter().map(|t| t.0).collect(),
            abort_on_fail: raw.abort_on_fail,
            traces,
            observe,
            slo,
            simulator,
            regression,
            overrides: self
                .overrides
                .edits
                .iter()
                .map(|e| e.label.clone())
                .collect(),
        };
        self.check_sessions(&plan)?;
        Ok(plan)
    }

    fn target(&self, raw: raw::RawTarget) -> Result<Target, PlanError> {
        let base_url = match (&self.overrides.target, &raw.base_url) {
            (Some(url), _) => Some(parse_base_url(url).map_err(|m| PlanError::Option {
                option: "--target",
                message: m,
            })?),
            (None, Some(url)) => {
                Some(parse_base_url(url.get_ref()).map_err(|m| self.error(url.span(), m))?)
            }
            (None, None) => None,
        };
        let template = self.template(raw.api, raw.template)?;
        let headers = self.headers(raw.headers)?;
        let api_key = match raw.api_key_env {
            Some(var) => {
                let key = std::env::var(var.get_ref()).map_err(|_| {
                    self.error(
                        var.span(),
                        format!(
                            "environment variable `{}` (target.api_key_env) is not set",
                            var.get_ref()
                        ),
                    )
                })?;
                Some((var, Secret(key)))
            }
            None => None,
        };
        let max_in_flight = match raw.max_in_flight {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.error(n.span(), "max_in_flight must be at least 1"));
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_IN_FLIGHT,
        };
        let max_response_bytes = match raw.max_response_bytes {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.error(n.span(), "max_response_bytes must be at least 1"));
            }
            Some(n) => n.into_inner(),
            None => DEFAULT_MAX_RESPONSE_BYTES,
        };
        let access = self.access("target", raw.auth, raw.tls, api_key)?;
        Ok(Target {
            base_url,
            api: raw.api,
            stream: raw.stream.unwrap_or(raw.api != Api::Template),
            continuous_usage: raw.continuous_usage.unwrap_or(true),
            timeout: raw.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
            headers,
            max_in_flight,
            template,
            follow_redirects: raw.follow_redirects.unwrap_or(false),
            max_response_bytes,
            access,
        })
    }

    fn template(
        &self,
        api: Api,
        raw: Option<Spanned<raw::RawTemplate>>,
    ) -> Result<Option<Template>, PlanError> {
        template(api, raw).map_err(|(span, message)| self.error(span, message))
    }

    /// One back-end's `auth` and `tls` tables (`plan::access`).
    fn access(
        &self,
        table: &str,
        auth: Option<Spanned<super::access::RawAuth>>,
        tls: Option<Spanned<super::access::RawTls>>,
        legacy_bearer: Option<(Spanned<String>, Secret)>,
    ) -> Result<crate::tls::Access, PlanError> {
        super::access::resolve(
            table,
            auth,
            tls,
            legacy_bearer,
            self.base_dir,
            &|span, message| self.error(span, message),
        )
    }

    fn headers(
        &self,
        raw: std::collections::BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, PlanError> {
        raw.into_iter()
            .map(|(name, value)| {
                if super::access::CREDENTIAL_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(self.error(
                        0..0,
                        format!(
                            "target.headers: `{name}` carries a credential, and target.headers are written into the report; \
                             give it in target.auth from an environment variable or a file instead \
                             (e.g. auth = {{ bearer_env = \"API_TOKEN\" }}, or auth = {{ bearer_env = \"KEY\", header = \"{name}\" }})"
                        ),
                    ));
                }
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    self.error(
                        0..0,
                        format!("target.headers: `{name}` is not a valid header name"),
                    )
                })?;
                reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                    self.error(
                        0..0,
                        format!(
                            "target.headers: the value of `{name}` is not a valid header value"
                        ),
                    )
                })?;
                Ok((name, value))
            })
            .collect()
    }

    fn models(&self, raw: Vec<raw::RawModel>, embedded: bool) -> Result<Vec<Model>, PlanError> {
        if let Some(name) = &self.overrides.model {
            return Ok(vec![Model {
                name: name.clone(),
                weight: 1.0,
                thresholds: Vec::new(),
            }]);
        }
        if raw.is_empty() {
            let name = if embedded {
                SIMULATOR_MODEL
            } else {
                SERVER_DEFAULT_MODEL
            };
            return Ok(vec![Model {
                name: name.into(),
                weight: 1.0,
                thresholds: Vec::new(),
            }]);
        }
        let total: f64 = raw.iter().map(|m| m.weight).sum();
        if raw
            .iter()
            .any(|m| !(m.weight.is_finite() && m.weight >= 0.0))
            || total <= 0.0
        {
            return Err(self.error(
                0..0,
                "model weights must be non-negative numbers with a positive sum",
            ));
        }
        Ok(raw
            .into_iter()
            .map(|m| Model {
                name: m.name,
                weight: m.weight / total,
                thresholds: m.thresholds.into_iter().map(|t| t.0).collect(),
            })
            .collect())
    }

    fn tasks(
        &self,
        raw: Vec<super::task::RawTask>,
        target: &Target,
        workload: &Workload,
    ) -> Result<Vec<super::Task>, PlanError> {
        let seed = workload.seed;
        let cx = super::task::TaskContext {
            target,
            temperature: workload.temperature,
            template: &|api, raw| template(api, raw).map_err(|(_, m)| m),
            prompts: &|list, index| {
                let salt = (index as u64 + 1) << 32;
                listed_prompts(list, seed.wrapping_add(salt)).map_err(|(_, m)| m)
            },
        };
        super::task::resolve(raw, &cx).map_err(|(span, message)| self.error(span, message))
    }

    /// Every task a phase names exists, and a phase's tasks weigh more
    /// than nothing.
    fn check_phase_tasks(&self, phases: &[Phase], tasks: &[super::Task]) -> Result<(), PlanError> {
        for phase in phases {
            let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
            if let Some(unknown) = phase.tasks.iter().find(|n| !names.contains(&n.as_str())) {
                return Err(self.error(
                    0..0,
                    format!(
                        "phase `{}` names task `{unknown}`, which [[tasks]] does not declare (it has: {})",
                        phase.name,
                        names.join(", ")
                    ),
                ));
            }
            let weight: f64 = tasks
                .iter()
                .filter(|t| phase.tasks.is_empty() || phase.tasks.contains(&t.name))
                .map(|t| t.weight)
                .sum();
            if weight <= 0.0 {
                return Err(self.error(
                    0..0,
                    format!(
                        "phase `{}`: its tasks' weights sum to 0, so it would send nothing",
                        phase.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn workload(&self, raw: raw::RawWorkload) -> Result<Workload, PlanError> {
        let seed = raw.seed.unwrap_or(42);
        let temperature = raw.temperature.unwrap_or(0.0);
        if !(0.0..=2.0).contains(&temperature) {
            return Err(self.error(
                0..0,
                format!("workload.temperature must be within 0..=2, got {temperature}"),
            ));
        }
        let mut prompts = listed_prompts(&raw.prompts, seed)
            .map_err(|(span, message)| self.error(span, message))?;
        let mut skipped_conversations = 0;
        let mut exchanges = Vec::new();
        if let Some(file) = &raw.prompts_file {
            let (read, skipped, recorded) = self.prompts_file(file, raw.prompts_format)?;
            prompts.extend(read);
            skipped_conversations = skipped;
            exchanges = recorded;
        }
        if prompts.is_empty() {
            prompts.push(Prompt {
                text: synthetic_prompt(DEFAULT_PROMPT_TOKENS, seed),
                tokens: DEFAULT_PROMPT_TOKENS,
                weight: 1.0,
                max_tokens: None,
            });
        }
        let shared_prefix_tokens = raw.shared_prefix_tokens.unwrap_or(0);
        let max_tokens = raw.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS).max(1);
        let sessions = match raw.turns {
            None => None,
            Some(turns) => Some(self.sessions(turns, &exchanges, &prompts, max_tokens, seed)?),
        };
        Ok(Workload {
            sessions,
            max_tokens,
            temperature,
            prompts,
            seed,
            shared_prefix_tokens,
            // Its own seed: the same text for every request of every phase.
            shared_prefix: if shared_prefix_tokens == 0 {
                String::new()
            } else {
                synthetic_prompt(shared_prefix_tokens, seed ^ SHARED_PREFIX_SEED)
            },
            skipped_conversations,
        })
    }

    fn prompts_file(
        &self,
        file: &Spanned<String>,
        format: raw::PromptsFormat,
    ) -> Result<PromptsFile, PlanError> {
        let path = self.base_dir.map_or_else(
            || PathBuf::from(file.get_ref()),
            |dir| dir.join(file.get_ref()),
        );
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.error(
                file.span(),
                format!("cannot read prompts file {}: {e}", path.display()),
            )
        })?;
        let label = path.display().to_string();
        let (prompts, skipped, exchanges) = match format {
            raw::PromptsFormat::Jsonl => (parse_prompts_jsonl(&label, &text)?, 0, Vec::new()),
            raw::PromptsFormat::Sharegpt => {
                let d = super::dataset::parse_sharegpt(&label, &text)?;
                (d.prompts, d.skipped, d.exchanges)
            }
        };
        if prompts.is_empty() {
            return Err(self.error(
                file.span(),
                format!("prompts file {label} holds no prompts"),
            ));
        }
        Ok((prompts, skipped, exchanges))
    }

    /// `turns = N`: a ShareGPT file's conversations (at most N turns
    /// each), or synthetic ones from the prompts.
    fn sessions(
        &self,
        turns: Spanned<u32>,
        exchanges: &[Vec<(String, String)>],
        prompts: &[Prompt],
        max_tokens: u32,
        seed: u64,
    ) -> Result<super::session::Sessions, PlanError> {
        use super::session;
        let (span, turns) = (turns.span(), turns.into_inner());
        if !(1..=session::MAX_TURNS).contains(&turns) {
            return Err(self.error(
                span,
                format!(
                    "turns must be within 1..={}, got {turns}",
                    session::MAX_TURNS
                ),
            ));
        }
        let all: Vec<session::Session> = if exchanges.is_empty() {
            session::synthetic(prompts, turns, max_tokens, seed)
        } else {
            exchanges
                .iter()
                .filter_map(|e| session::recorded(e, turns))
                .collect()
        };
        Ok(session::Sessions {
            turns,
            conversations: all.len(),
            all: all.into(),
        })
    }

    /// Sessions go turn by turn through one user's conversation: chat
    /// requests of a closed load, one kind of request.
    fn check_sessions(&self, plan: &super::Plan) -> Result<(), PlanError> {
        if plan.workload.sessions.is_none() {
            return Ok(());
        }
        let refuse = |why: String| Err(self.error(0..0, format!("workload.turns: {why}")));
        if plan.target.api != Api::OpenaiChat {
            return refuse(format!(
                "multi-turn sessions carry the conversation as chat messages; target.api is \"{}\", set it to \"openai-chat\"",
                plan.target.api.name()
            ));
        }
        if plan.has_tasks() {
            return refuse(
                "multi-turn sessions are the workload of a plan without [[tasks]]".to_owned(),
            );
        }
        let open = plan.phases.iter().find(|p| {
            !matches!(
                p.load,
                Load::Users { .. } | Load::Concurrency { .. } | Load::Sweep { .. } | Load::Pause
            )
        });
        match open {
            Some(p) => refuse(format!(
                "phase `{}` is an open load ({}); a session's next turn waits for the answer, so sessions need users, concurrency or a sweep",
                p.name,
                p.load.describe()
            )),
            None => Ok(()),
        }
    }

    fn phases(
        &self,
        raw: Spanned<Vec<raw::RawPhase>>,
        max_tokens: u32,
    ) -> Result<Vec<Phase>, PlanError> {
        if raw.get_ref().is_empty() {
            return Err(self.error(raw.span(), "a plan needs at least one [[phases]] entry"));
        }
        let mut phases: Vec<Phase> = Vec::new();
        for p in raw.into_inner() {
            if phases.iter().any(|q| q.name == p.name) {
                return Err(self.error(
                    p.load.span(),
                    format!(
                        "two phases are named `{}`; phase names must be unique",
                        p.name
                    ),
                ));
            }
            phases.push(self.phase(p, max_tokens)?);
        }
        Ok(phases)
    }

    fn phase(&self, p: raw::RawPhase, max_tokens: u32) -> Result<Phase, PlanError> {
        let span = p.load.span();
        let load = self.load(p.load.into_inner(), span.clone())?;
        let requests = self.request_stop(&p.name, &load, p.requests)?;
        let duration = match (&load, p.duration) {
            (
                Load::Sweep {
                    levels,
                    step_duration,
                },
                None,
            ) => *step_duration * levels.len() as u32,
            (Load::Sweep { .. }, Some(_)) => {
                return Err(self.error(span, format!("phase `{}`: a sweep's duration is levels × step_duration; remove `duration`", p.name)));
            }
            (_, Some(d)) => self.scale(d.0),
            // Long enough for the last recorded arrival.
            (Load::Replay { records, .. }, None) => {
                records.last().map_or(Duration::ZERO, |r| r.at) + Duration::from_millis(1)
            }
            (_, None) if requests.is_some() => MAX_REQUESTS_DURATION,
            (_, None) => {
                return Err(self.error(
                    span,
                    format!(
                        "phase `{}` needs a `duration` (like duration = \"5m\") or `requests` (like requests = 600)",
                        p.name
                    ),
                ));
            }
        };
        let tasks = p.tasks.map_or_else(Vec::new, |t| t.into_inner());
        Ok(Phase {
            tasks,
            name: p.name,
            duration,
            requests,
            load,
            max_tokens: p.max_tokens.unwrap_or(max_tokens).max(1),
            thresholds: p.thresholds.into_iter().map(|t| t.0).collect(),
            stress: p.stress,
            drill: p
                .drill
                .map(|d| super::drill::resolve(d, &|span, message| self.error(span, message)))
                .transpose()?,
        })
    }

    /// A phase's `requests` stop: at least 1, and only where requests are
    /// sent in one step.
    fn request_stop(
        &self,
        phase: &str,
        load: &Load,
        requests: Option<Spanned<u64>>,
    ) -> Result<Option<u64>, PlanError> {
        let Some(requests) = requests else {
            return Ok(None);
        };
        let refuse =
            |why: &str| Err(self.error(requests.span(), format!("phase `{phase}`: {why}")));
        match load {
            _ if *requests.get_ref() == 0 => refuse("requests must be at least 1"),
            Load::Sweep { .. } => refuse(
                "a sweep's steps end by time; `requests` applies to a one-step load (constant, poisson, ramp, burst, users, concurrency)",
            ),
            Load::Pause => refuse("a pause sends nothing, so it cannot stop after requests"),
            _ => Ok(Some(requests.into_inner())),
        }
    }

    fn load(&self, raw: RawLoad, span: Range<usize>) -> Result<Load, PlanError> {
        let positive = |n: usize, what: &str| {
            if n == 0 {
                Err(self.error(span.clone(), format!("{what} must be at least 1")))
            } else {
                Ok(n)
            }
        };
        Ok(match raw {
            RawLoad::Constant { rate } => Load::Constant { rate: rate.0 },
            RawLoad::Poisson { rate } => Load::Poisson { rate: rate.0 },
            RawLoad::Ramp { from, to } if from.0 == 0.0 && to.0 == 0.0 => {
                return Err(self.error(span, "a ramp from 0 to 0 sends nothing"));
            }
            RawLoad::Ramp { from, to } => Load::Ramp {
                from: from.0,
                to: to.0,
            },
            RawLoad::Users {
                users,
                think,
                spawn_rate,
            } => {
                let think = think.unwrap_or(raw::RangeValue(Duration::ZERO, Duration::ZERO));
                Load::Users {
                    users: positive(users, "users")?,
                    think_min: think.0,
                    think_max: think.1,
                    spawn_rate: spawn_rate.map(|r| r.0),
                }
            }
            RawLoad::Burst { size, every } if every.0.is_zero() => {
                return Err(self.error(
                    span,
                    format!("a burst of {size} every 0s never ends: give `every` a length"),
                ));
            }
            RawLoad::Burst { size, every } => Load::Burst {
                size: positive(size, "a burst's size")?,
                every: every.0,
            },
            RawLoad::Pause {} => Load::Pause,
            RawLoad::Replay {
                file,
                format,
                speedup,
            } => self.replay(file, format.unwrap_or_default(), speedup, span)?,
            RawLoad::Concurrency { concurrency } => Load::Concurrency {
                concurrency: positive(concurrency, "concurrency")?,
            },
            RawLoad::Sweep {
                levels,
                step_duration,
            } => {
                if levels.is_empty() || levels.contains(&0) {
                    return Err(self.error(
                        span,
                        "a sweep needs a non-empty list of levels, each at least 1",
                    ));
                }
                Load::Sweep {
                    levels,
                    step_duration: self.scale(step_duration.0),
                }
            }
        })
    }

    /// Reads a trace to replay, relative to the plan's folder.
    fn replay(
        &self,
        file: String,
        format: super::replay::TraceFormat,
        speedup: Option<f64>,
        span: Range<usize>,
    ) -> Result<Load, PlanError> {
        let speedup = speedup.unwrap_or(1.0);
        if !(speedup.is_finite() && speedup > 0.0) {
            return Err(self.error(
                span,
                format!("a replay's speedup must be a positive number, got {speedup}"),
            ));
        }
        let path = self
            .base_dir
            .map_or_else(|| PathBuf::from(&file), |dir| dir.join(&file));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.error(
                span.clone(),
                format!("cannot read trace {}: {e}", path.display()),
            )
        })?;
        let records = super::replay::parse(&text, format, speedup)
            .map_err(|e| self.error(span, format!("trace {}: {e}", path.display())))?;
        Ok(Load::Replay {
            file,
            format,
            speedup,
            requests: records.len(),
            records,
        })
    }

    fn scale(&self, d: Duration) -> Duration {
        if self.overrides.duration_scale == 1.0 {
            return d;
        }
        d.mul_f64(self.overrides.duration_scale)
            .max(MIN_SCALED_DURATION.min(d))
    }
}

/// A prompts file read: its prompts, the conversations skipped, and each
/// conversation's (question, answer) exchanges.
type PromptsFile = (Vec<Prompt>, usize, Vec<Vec<(String, String)>>);

/// Synthetic prompts of the lengths a `prompts` list gives; text `i` is
/// seeded by `seed + i`.
fn listed_prompts(
    raw: &[raw::RawPrompt],
    seed: u64,
) -> Result<Vec<Prompt>, (Range<usize>, String)> {
    let mut prompts = Vec::with_capacity(raw.len());
    for (i, p) in raw.iter().enumerate() {
        if *p.tokens.get_ref() == 0 {
            return Err((
                p.tokens.span(),
                "a prompt needs at least 1 token".to_owned(),
            ));
        }
        if !(p.weight.is_finite() && p.weight > 0.0) {
            return Err((
                p.tokens.span(),
                "a prompt weight must be a positive number".to_owned(),
            ));
        }
        let tokens = *p.tokens.get_ref();
        prompts.push(Prompt {
            text: synthetic_prompt(tokens, seed.wrapping_add(i as u64)),
            tokens,
            weight: p.weight,
            max_tokens: None,
        });
    }
    Ok(prompts)
}

/// A `template` table (the target's or a task's) checked: a path from
/// `/`, an HTTP method, a body that is JSON once filled.
fn template(
    api: Api,
    raw: Option<Spanned<raw::RawTemplate>>,
) -> Result<Option<Template>, (Range<usize>, String)> {
    let Some(raw) = raw else {
        return if api == Api::Template {
            Err((0..0, "api = \"template\" needs a `template` table with at least `path` (or, on a task, `get = \"/path\"`)".to_owned()))
        } else {
            Ok(None)
        };
    };
    let span = raw.span();
    let t = raw.into_inner();
    if !t.path.starts_with('/') {
        return Err((
            span,
            format!("template path `{}` must start with `/`", t.path),
        ));
    }
    if reqwest::Method::from_bytes(t.method.as_bytes()).is_err() {
        return Err((
            span,
            format!("template method `{}` is not an HTTP method", t.method),
        ));
    }
    if let Some(body) = &t.body {
        let sample = super::fill_template(body, "hello world", 16, "model", 0.0);
        serde_json::from_str::<serde_json::Value>(&sample).map_err(|e| {
            (
                span.clone(),
                format!("template body is not valid JSON once placeholders are filled: {e}"),
            )
        })?;
    }
    Ok(Some(Template {
        method: t.method,
        path: t.path,
        body: t.body,
        tokens_pointer: t.tokens_pointer,
    }))
}

/// A base URL must be http(s) with a host; a trailing slash is dropped.
fn parse_base_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid base URL `{text}`: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "invalid base URL `{text}`: expected http:// or https:// with a host"
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

fn stem(file: &str) -> String {
    Path::new(file)
        .file_stem()
        .map_or_else(|| "plan".into(), |s| s.to_string_lossy().into_owned())
}

/// Builds a prompt of `tokens` words (one word ≈ one token for the
/// simulator; real tokenizers count English at ~1.3 tokens a word).
pub fn synthetic_prompt(tokens: u32, seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "explain", "the", "system", "latency", "of", "a", "model", "serving", "request", "under",
        "load", "with", "batching", "cache", "token", "queue",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut text = String::with_capacity(tokens as usize * 8);
    for i in 0..tokens {
        if i > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.random_range(0..WORDS.len())]);
    }
    text
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonlPrompt {
    prompt: String,
    #[serde(default = "default_weight")]
    weight: f64,
}

fn default_weight() -> f64 {
    1.0
}

/// Reads a JSONL prompt file: one `{"prompt": "...", "weight": 2}` a line;
/// blank lines are skipped. Errors carry the file's line and column.
fn parse_prompts_jsonl(label: &str, text: &str) -> Result<Vec<Prompt>, PlanError> {
    let mut prompts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            let p: JsonlPrompt = serde_json::from_str(trimmed).map_err(|e| {
                let at = offset + e.column().saturating_sub(1);
                PlanError::Invalid(Box::new(
                    Located::new(
                        label,
                        text,
                        Some(at..at + 1),
                        format!("invalid prompt line: {e}"),
                    )
                    .with_hint(
                        "each line must be a JSON object like {\"prompt\": \"...\", \"weight\": 1}",
                    ),
                ))
            })?;
            let tokens = p.prompt.split_whitespace().count().max(1) as u32;
            prompts.push(Prompt {
                text: p.prompt,
                tokens,
                weight: p.weight,
                max_tokens: None,
            });
        }
        offset += line.len();
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_prompts_have_the_requested_length_and_are_deterministic() {
        let a = synthetic_prompt(64, 7);
        assert_eq!(a.split_whitespace().count(), 64);
        assert_eq!(a, synthetic_prompt(64, 7));
        assert_ne!(a, synthetic_prompt(64, 8));
    }

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            parse_base_url("http://127.0.0.1:8000/"),
            Ok("http://127.0.0.1:8000".into())
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("localhost:8000").is_err());
    }

    #[test]
    fn jsonl_prompts_are_read_and_errors_located() {
        let prompts = parse_prompts_jsonl(
            "p.jsonl",
            "{\"prompt\": \"a b c\"}\n\n{\"prompt\": \"d\", \"weight\": 3}\n",
        )
        .unwrap();
        assert_eq!(prompts.len(), 2);
        assert_eq!((prompts[0].tokens, prompts[1].weight), (3, 3.0));
        let err = parse_prompts_jsonl("p.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": 5}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("p.jsonl:2:"), "{err}");
    }
}
