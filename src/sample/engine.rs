//! The inference engines infercheck knows, each with its engine profile: a
//! built-in query set (`queries/<engine>.toml`) that derives the same named
//! values (`running`, `queue_depth`, `kv_usage`, `generation_tokens`, ...)
//! from that engine's own metrics. vLLM's profile is the reference; the
//! others define the subset of its names their engine has an equivalent for.
//!
//! [`detect`] tells which engine served a `/metrics` scrape from the
//! profiles themselves: the engine whose profile reads the most of the
//! scrape's metric families wins. Nothing here is specific to one capture.
//! [`fetch`] reads a `/metrics` URL once; [`router_backends`] reads the
//! engines a router names from it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::exposition::{self, Exposition};
use super::queries::{self, Recipe};

/// An inference engine with a built-in profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Vllm,
    Sglang,
    Tgi,
    #[serde(rename = "llamacpp")]
    LlamaCpp,
    Triton,
}

impl Engine {
    pub const ALL: [Engine; 5] = [
        Engine::Vllm,
        Engine::Sglang,
        Engine::Tgi,
        Engine::LlamaCpp,
        Engine::Triton,
    ];

    /// The short name: "vllm", "sglang", "tgi", "llamacpp", "triton".
    pub fn name(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
            Engine::Tgi => "tgi",
            Engine::LlamaCpp => "llamacpp",
            Engine::Triton => "triton",
        }
    }

    /// The inverse of [`name`](Engine::name) (serde's `llama_cpp` is taken
    /// too).
    pub fn parse(text: &str) -> Option<Engine> {
        match text {
            "llama_cpp" => Some(Engine::LlamaCpp),
            _ => Engine::ALL.into_iter().find(|e| e.name() == text),
        }
    }

    /// Its profile's name in [`queries::BUILTIN_SETS`].
    pub fn query_set(self) -> &'static str {
        self.name()
    }

    /// The name people write: "vLLM", "SGLang", "TGI", "llama.cpp", "Triton".
    pub fn label(self) -> &'static str {
        match self {
            Engine::Vllm => "vLLM",
            Engine::Sglang => "SGLang",
            Engine::Tgi => "TGI",
            Engine::LlamaCpp => "llama.cpp",
            Engine::Triton => "Triton",
        }
    }

    /// Where its HTTP API tells its version: (path, JSON pointer into the
    /// answer).
    pub fn version_endpoint(self) -> (&'static str, &'static str) {
        match self {
            Engine::Vllm => ("/version", "/version"),
            Engine::Sglang => ("/get_server_info", "/version"),
            Engine::Tgi => ("/info", "/version"),
            Engine::LlamaCpp => ("/props", "/build_info"),
            Engine::Triton => ("/v2", "/version"),
        }
    }

    /// The prefix of its own metric names, where a version would be found.
    fn prefix(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm:",
            Engine::Sglang => "sglang:",
            Engine::Tgi => "tgi_",
            Engine::LlamaCpp => "llamacpp:",
            Engine::Triton => "nv_",
        }
    }
}

/// What a probe of /metrics found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Detected {
    pub engine: Engine,
    pub version: Option<String>,
    /// Why: "7 metrics of the SGLang profile (sglang:num_running_reqs, ...)".
    pub evidence: String,
}

/// The engine whose profile reads the most of the scrape's metric families;
/// `None` when no profile reads any. A tie goes to the engine listed first
/// in [`Engine::ALL`]. The version is the `version` label of an
/// `<prefix>*_info` family where the engine exports one (none of the
/// captured engines does today: vLLM's `vllm:cache_config_info` carries
/// none, and Triton's `version` label is the model's).
pub fn detect(e: &Exposition) -> Option<Detected> {
    let names: HashSet<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
    let (engine, found) = Engine::ALL
        .into_iter()
        .rev()
        .map(|engine| (engine, present(engine, &names)))
        .filter(|(_, found)| !found.is_empty())
        .max_by_key(|(_, found)| found.len())?;
    Some(Detected {
        engine,
        version: version(engine, e),
        evidence: evidence(engine, &found),
    })
}

/// Reads `url` (a `/metrics`) once; the error says why nothing could be
/// read (unreachable, an HTTP status, a body that is not exposition).
pub async fn fetch(url: &str) -> Result<Exposition, String> {
    exposition::parse(&probe(url).await?)
}

/// The body of a `GET url` that answered 2xx, read once before the run.
async fn probe(url: &str) -> Result<String, String> {
    let client = crate::tls::client_builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    response.text().await.map_err(|e| e.to_string())
}

/// The engine's version from its HTTP API (`Engine::version_endpoint`)
/// at `base_url`, read once before the run.
pub async fn fetch_version(base_url: &str, engine: Engine) -> Result<String, String> {
    let (path, pointer) = engine.version_endpoint();
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let body = probe(&url).await.map_err(|e| format!("{url}: {e}"))?;
    let answer: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{url}: {e}"))?;
    answer
        .pointer(pointer)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{url}: no string at {pointer}"))
}

/// The router families that name their backends, and the label that does
/// (infercheck's simulated router; a gateway exporting the same is read
/// the same way).
pub const BACKEND_LABELS: &[(&str, &str)] = &[("router_backend_in_flight", "backend")];

/// The backends a router's scrape names (base URLs, in order of first
/// appearance, each once).
pub fn router_backends(e: &Exposition) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (family, label) in BACKEND_LABELS {
        for sample in e.named(family) {
            if let Some(url) = sample.labels.get(*label)
                && !found.contains(url)
            {
                found.push(url.clone());
            }
        }
    }
    found
}

/// The router family naming the pod each backend runs in, and its
/// backend and pod labels (`router_backend_info{backend, pod} 1`).
pub const BACKEND_PODS: (&str, &str, &str) = ("router_backend_info", "backend", "pod");

/// The pod of each backend the router's scrape names one for.
pub fn backend_pods(e: &Exposition) -> BTreeMap<String, String> {
    let (family, backend, pod) = BACKEND_PODS;
    e.named(family)
        .filter_map(|s| Some((s.labels.get(backend)?.clone(), s.labels.get(pod)?.clone())))
        .filter(|(_, pod)| !pod.is_empty())
        .collect()
}

/// The pod a backend's GPUs are attributed to by a DCGM exporter's `pod`
/// label: the one the router named, else its URL's host when that is a
/// DNS name (a pod's own name, e.g. `vllm-0` of `http://vllm-0.vllm:8000`);
/// `None` for an IP address or `localhost`.
pub fn gpu_pod(url: &str, named: Option<&String>) -> Option<String> {
    if let Some(pod) = named {
        return Some(pod.clone());
    }
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_owned();
    let first = host.split('.').next()?;
    let is_ip = host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[');
    (!is_ip && first != "localhost" && !first.is_empty()).then(|| first.to_owned())
}

#[cfg(test)]
mod pod_tests {
    use super::*;

    #[test]
    fn a_backends_pod_is_the_routers_word_or_its_dns_name() {
        let named = "engine-0".to_owned();
        assert_eq!(
            gpu_pod("http://127.0.0.1:8000", Some(&named)),
            Some(named.clone())
        );
        assert_eq!(
            gpu_pod("http://vllm-0.vllm.ns.svc:8000", None).as_deref(),
            Some("vllm-0")
        );
        for unnamed in [
            "http://127.0.0.1:8000",
            "http://[::1]:8000",
            "http://localhost:8000",
            "bad",
        ] {
            assert_eq!(gpu_pod(unnamed, None), None, "{unnamed}");
        }
        let scrape = exposition::parse(
            "router_backend_info{backend=\"http://a\",pod=\"p-a\"} 1\n\
             router_backend_info{backend=\"http://b\",pod=\"\"} 1\n",
        )
        .unwrap();
        let pods = backend_pods(&scrape);
        assert_eq!(pods.len(), 1);
        assert_eq!(pods["http://a"], "p-a");
    }
}

const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// True for the names of engine query sets (so callers can swap them).
pub fn is_engine_set(set: &str) -> bool {
    Engine::ALL.iter().any(|e| e.query_set() == set)
}

/// The metric families an engine's profile reads (every recipe's `metric`
/// and `over`, alternatives included), parsed once.
fn profile_metrics(engine: Engine) -> &'static BTreeSet<String> {
    static PROFILES: OnceLock<Vec<BTreeSet<String>>> = OnceLock::new();
    let profiles = PROFILES.get_or_init(|| {
        Engine::ALL
            .iter()
            .map(|e| {
                let queries = queries::builtin(e.query_set()).unwrap_or_default();
                let mut names = BTreeSet::new();
                for recipe in queries.iter().filter_map(|q| q.scrape.as_ref()) {
                    recipe_metrics(recipe, &mut names);
                }
                families(names)
            })
            .collect()
    });
    let index = Engine::ALL.iter().position(|e| *e == engine).unwrap_or(0);
    &profiles[index]
}

fn recipe_metrics(recipe: &Recipe, out: &mut BTreeSet<String>) {
    out.extend(recipe.metric.iter().chain(&recipe.over).cloned());
    for alternative in &recipe.alternatives {
        recipe_metrics(alternative, out);
    }
}

/// Names with a histogram's series (`x_count` where `x` is there too)
/// folded into their family.
fn families(names: BTreeSet<String>) -> BTreeSet<String> {
    let series_of_another = |n: &String| {
        SERIES_SUFFIXES
            .iter()
            .any(|s| n.strip_suffix(s).is_some_and(|base| names.contains(base)))
    };
    names
        .iter()
        .filter(|n| !series_of_another(n))
        .cloned()
        .collect()
}

const SERIES_SUFFIXES: [&str; 3] = ["_bucket", "_count", "_sum"];

/// The profile's metrics that the scrape has (a histogram or summary by
/// any of its series).
fn present(engine: Engine, names: &HashSet<&str>) -> Vec<&'static str> {
    let has = |n: &str| {
        names.contains(n)
            || SERIES_SUFFIXES
                .iter()
                .any(|suffix| names.contains(format!("{n}{suffix}").as_str()))
    };
    profile_metrics(engine)
        .iter()
        .map(String::as_str)
        .filter(|n| has(n))
        .collect()
}

fn evidence(engine: Engine, found: &[&str]) -> String {
    let shown: Vec<&str> = found.iter().take(3).copied().collect();
    let more = if found.len() > shown.len() {
        ", ..."
    } else {
        ""
    };
    format!(
        "{} metrics of the {} profile ({}{more})",
        found.len(),
        engine.label(),
        shown.join(", ")
    )
}

fn version(engine: Engine, e: &Exposition) -> Option<String> {
    e.samples
        .iter()
        .filter(|s| s.name.starts_with(engine.prefix()) && s.name.ends_with("_info"))
        .find_map(|s| s.labels.get("version").cloned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::exposition::{Sample, parse};
    use crate::sample::queries::Query;
    use crate::sample::scrape::evaluate;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/metrics");

    fn fixture(file: &str) -> Exposition {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap();
        parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// The same scrape with every value zero: as "before", one second
    /// earlier, a rate is the counter's total.
    fn zeroed(e: &Exposition) -> Exposition {
        let samples = e
            .samples
            .iter()
            .map(|s| Sample {
                value: 0.0,
                ..s.clone()
            })
            .collect();
        Exposition { samples }
    }

    fn profile(engine: Engine) -> Vec<Query> {
        queries::builtin(engine.query_set()).unwrap()
    }

    /// A profile's named value on one scrape, in the stored unit.
    fn derived(queries: &[Query], name: &str, e: &Exposition) -> Option<f64> {
        let q = queries.iter().find(|q| q.name == name)?;
        let before = zeroed(e);
        let value = evaluate(q.scrape.as_ref()?, e, Some((&before, 1.0)))?;
        Some(q.unit.normalise(value))
    }

    struct Case {
        file: &'static str,
        engine: Engine,
        /// Values read from the file.
        values: &'static [(&'static str, f64)],
        /// Queries of the profile the capture has no metrics for.
        absent: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            file: "vllm-v1-cpu-idle.txt",
            engine: Engine::Vllm,
            values: &[
                ("running", 0.0),
                ("queue_depth", 0.0),
                ("kv_usage", 0.0),
                ("generation_tokens", 0.0),
                ("prompt_tokens", 0.0),
                ("requests_completed", 0.0),
            ],
            absent: &[],
        },
        Case {
            file: "vllm-v1-cpu-under-load.txt",
            engine: Engine::Vllm,
            values: &[
                ("running", 8.0),
                ("queue_depth", 0.0),
                ("kv_usage", 0.0039081582804103565),
                ("generation_tokens", 574.0),
                ("prompt_tokens", 464.0),
                ("requests_completed", 10.0),
                ("prefix_cache_hits_tokens", 0.0),
                ("prefix_cache_queries_tokens", 464.0),
                ("prefix_hit_rate", 0.0),
                ("prefix_hit_rate_tokens", 0.0),
            ],
            absent: &[],
        },
        Case {
            file: "vllm-v1-cpu-queued.txt",
            engine: Engine::Vllm,
            values: &[
                ("running", 4.0),
                ("queue_depth", 12.0),
                ("kv_usage", 0.0019540791402051783),
                ("generation_tokens", 1029.0),
                ("prompt_tokens", 535.0),
                ("requests_completed", 16.0),
                ("requests_aborted", 0.0),
                ("prefix_cache_queries_tokens", 535.0),
                ("prefix_hit_rate", 0.0),
                ("preemptions", 0.0),
            ],
            absent: &[],
        },
        Case {
            // V0 names plus appended V1 families: no waiting-by-reason, so
            // queue_depth falls back to the plain gauge.
            file: "vllm-mixed-v0-v1.txt",
            engine: Engine::Vllm,
            values: &[
                ("running", 0.0),
                ("queue_depth", 0.0),
                ("kv_usage", 0.0),
                ("generation_tokens", 7.0),
                ("prompt_tokens", 5.0),
                ("requests_completed", 1.0),
                ("prefix_cache_hits_tokens", 64.0),
                ("prefix_cache_queries_tokens", 117.0),
                ("prefix_hit_rate", 64.0 / 117.0),
            ],
            absent: &[],
        },
        Case {
            file: "sglang.txt",
            engine: Engine::Sglang,
            values: &[
                ("running", 162.0),
                ("queue_depth", 2826.0),
                ("kv_usage", 0.28),
                ("prefix_hit_rate", 0.007507552643049313),
                ("generation_tokens", 7.557572e6),
                ("prompt_tokens", 8.128902e6),
                // sglang:e2e_request_latency_seconds_count: no request counter.
                ("requests_completed", 11228.0),
            ],
            absent: &["prefix_cache_hits_tokens", "preemptions"],
        },
        Case {
            file: "tgi.txt",
            engine: Engine::Tgi,
            values: &[
                ("running", 0.0),
                ("queue_depth", 0.0),
                ("generation_tokens", 3423.0),
                ("prompt_tokens", 662.0),
                ("requests_completed", 109.0),
            ],
            absent: &[],
        },
        Case {
            // Triton core only: no TensorRT-LLM gauges, so queue_depth is
            // the scheduler's pending count, and there is no running batch.
            file: "triton.txt",
            engine: Engine::Triton,
            values: &[
                ("queue_depth", 0.0),
                ("requests_completed", 3.0),
                // 1326831 us of compute over 3 requests.
                ("avg_processing_time", 1.326831 / 3.0),
                ("server_e2e_p95", 3e-6),
            ],
            absent: &["running", "kv_usage", "generation_tokens", "prompt_tokens"],
        },
        Case {
            file: "triton-trtllm.txt",
            engine: Engine::Triton,
            values: &[("running", 0.0), ("queue_depth", 1.0), ("kv_usage", 0.4875)],
            absent: &["requests_completed"],
        },
    ];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn every_engine_capture_is_detected_and_its_profile_reads_the_file() {
        for case in CASES {
            let e = fixture(case.file);
            let found = detect(&e).unwrap_or_else(|| panic!("{}: nothing detected", case.file));
            assert_eq!(
                found.engine, case.engine,
                "{}: {}",
                case.file, found.evidence
            );
            assert_eq!(found.version, None, "{}", case.file);
            let queries = profile(case.engine);
            for &(name, want) in case.values {
                let got = derived(&queries, name, &e);
                assert!(
                    got.is_some_and(|v| close(v, want)),
                    "{}: {name} = {got:?}, file says {want}",
                    case.file
                );
            }
            for name in case.absent {
                assert!(queries.iter().any(|q| q.name == *name), "{name}");
                assert_eq!(derived(&queries, name, &e), None, "{}: {name}", case.file);
            }
        }
    }

    #[test]
    fn token_rates_are_the_counters_increase() {
        for case in CASES {
            let e = fixture(case.file);
            let queries = profile(case.engine);
            for (rate, counter) in [
                ("gen_tokens_rate", "generation_tokens"),
                ("prompt_tokens_rate", "prompt_tokens"),
                ("request_success_rate", "requests_completed"),
            ] {
                let (r, c) = (derived(&queries, rate, &e), derived(&queries, counter, &e));
                assert_eq!(r, c, "{}: {rate} vs {counter}", case.file);
            }
        }
    }

    #[test]
    fn evidence_names_the_profile_and_ties_go_to_the_first_engine() {
        let found = detect(&fixture("sglang.txt")).unwrap();
        assert!(
            found.evidence.contains("of the SGLang profile (sglang:"),
            "{}",
            found.evidence
        );
        let both = parse("vllm:num_requests_running 1\nsglang:num_running_reqs 1\n").unwrap();
        assert_eq!(detect(&both).unwrap().engine, Engine::Vllm);
        let versioned = parse("tgi_queue_size 0\ntgi_build_info{version=\"3.1.0\"} 1\n").unwrap();
        assert_eq!(
            detect(&versioned).unwrap().version.as_deref(),
            Some("3.1.0")
        );
    }

    #[test]
    fn dcgm_is_not_an_engine_and_the_dcgm_profile_reads_it() {
        let e = fixture("dcgm.txt");
        assert_eq!(detect(&e), None);
        assert_eq!(detect(&Exposition::default()), None);
        let dcgm = queries::builtin("dcgm").unwrap();
        let values = [
            ("gpu_util", 0.0),
            ("vram_used", 0.0),
            ("vram_free", 15109.0 * 1_048_576.0),
            ("gpu_power", 8.969),
            ("gpu_temp", 25.0),
        ];
        for (name, want) in values {
            let got = derived(&dcgm, name, &e);
            assert!(got.is_some_and(|v| close(v, want)), "{name} = {got:?}");
        }
    }

    #[test]
    fn names_parse_back_and_sets_are_built_in() {
        for engine in Engine::ALL {
            assert_eq!(Engine::parse(engine.name()), Some(engine));
            assert!(is_engine_set(engine.query_set()));
            assert!(!profile_metrics(engine).is_empty(), "{}", engine.name());
        }
        assert_eq!(Engine::parse("llama_cpp"), Some(Engine::LlamaCpp));
        assert_eq!(Engine::parse("ollama"), None);
        assert!(!is_engine_set("dcgm") && !is_engine_set("infercheck"));
        assert_eq!(Engine::LlamaCpp.label(), "llama.cpp");
    }
}
