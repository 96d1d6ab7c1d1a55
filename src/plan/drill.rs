//! A phase's fault drill (`drill = { fault = "queue_flood", expect =
//! ["LLMQueueBacklog"] }`): the fault the phase injects into the embedded
//! simulator (or any `infercheck serve-sim`, through `/admin/faults`) for
//! its whole length — or `external`, a window in which the user causes the
//! fault in their own stack — and the Prometheus alerts it must raise.
//! The plan holds plain values; the runner turns a fault into the
//! simulator's patch.

use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::PlanError;

/// The table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    pub fault: Spanned<String>,
    #[serde(default)]
    pub expect: Vec<Spanned<String>>,
    /// `error_burst`: share of requests that fail (default 0.9).
    pub rate: Option<Spanned<f64>>,
    /// `queue_flood`: how many times slower each engine step is (default 20).
    pub factor: Option<Spanned<f64>>,
    /// `kv_saturation`: share of the KV cache taken away (default 0.97).
    pub share: Option<Spanned<f64>>,
    /// `gpu_memory_climb`: MiB per second the framebuffer grows (default 2000).
    pub mib_per_s: Option<Spanned<f64>>,
    /// `external`: what the user does, for the report.
    pub description: Option<String>,
}

/// The fault a drill injects.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Every engine step `factor` times slower: the queue floods.
    QueueFlood { factor: f64 },
    /// A share of the streams ends in an error event.
    ErrorBurst { rate: f64 },
    /// A share of the KV cache is taken away: usage near full, preemptions.
    KvSaturation { share: f64 },
    /// The engine freezes: requests run and no token comes.
    EngineStall,
    /// `/metrics` answers 500: the engine's target goes down.
    MetricsDown,
    /// The GPU's framebuffer use climbs.
    GpuMemoryClimb { mib_per_s: f64 },
    /// The user causes it; nothing is injected.
    External { description: String },
}

/// Fault names as plans write them.
pub const FAULTS: &[&str] = &[
    "queue_flood",
    "error_burst",
    "kv_saturation",
    "engine_stall",
    "metrics_down",
    "gpu_memory_climb",
    "external",
];

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::QueueFlood { .. } => "queue_flood",
            Fault::ErrorBurst { .. } => "error_burst",
            Fault::KvSaturation { .. } => "kv_saturation",
            Fault::EngineStall => "engine_stall",
            Fault::MetricsDown => "metrics_down",
            Fault::GpuMemoryClimb { .. } => "gpu_memory_climb",
            Fault::External { .. } => "external",
        }
    }
}

/// A resolved drill.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Drill {
    pub fault: Fault,
    /// Alert names that must fire.
    pub expect: Vec<String>,
}

/// Resolves a phase's drill.
pub fn resolve(
    raw: RawDrill,
    error: &dyn Fn(Range<usize>, String) -> PlanError,
) -> Result<Drill, PlanError> {
    let fraction = |v: &Option<Spanned<f64>>, default: f64, what: &str, max_inclusive: bool| {
        let Some(v) = v else { return Ok(default) };
        let x = *v.get_ref();
        let ok = x > 0.0 && (x < 1.0 || (max_inclusive && x == 1.0));
        if ok {
            Ok(x)
        } else {
            Err(error(
                v.span(),
                format!(
                    "{what} must be in (0, 1{}",
                    if max_inclusive { "]" } else { ")" }
                ),
            ))
        }
    };
    let positive = |v: &Option<Spanned<f64>>, default: f64, what: &str| {
        let Some(v) = v else { return Ok(default) };
        if v.get_ref().is_finite() && *v.get_ref() > 0.0 {
            Ok(*v.get_ref())
        } else {
            Err(error(v.span(), format!("{what} must be a positive number")))
        }
    };
    let fault = match raw.fault.get_ref().as_str() {
        "queue_flood" => Fault::QueueFlood {
            factor: positive(&raw.factor, 20.0, "factor")?,
        },
        "error_burst" => Fault::ErrorBurst {
            rate: fraction(&raw.rate, 0.9, "rate", true)?,
        },
        "kv_saturation" => Fault::KvSaturation {
            share: fraction(&raw.share, 0.97, "share", false)?,
        },
        "engine_stall" => Fault::EngineStall,
        "metrics_down" => Fault::MetricsDown,
        "gpu_memory_climb" => Fault::GpuMemoryClimb {
            mib_per_s: positive(&raw.mib_per_s, 2000.0, "mib_per_s")?,
        },
        "external" => Fault::External {
            description: raw.description.clone().unwrap_or_default(),
        },
        other => {
            return Err(error(
                raw.fault.span(),
                format!(
                    "unknown fault `{other}`; expected one of {}",
                    FAULTS.join(", ")
                ),
            ));
        }
    };
    let mut expect = Vec::new();
    for name in raw.expect {
        let valid = name
            .get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.get_ref().is_empty();
        if !valid {
            return Err(error(
                name.span(),
                format!("`{}` is not an alert name", name.get_ref()),
            ));
        }
        expect.push(name.into_inner());
    }
    Ok(Drill { fault, expect })
}

#[cfg(test)]
mod tests {
    use super::super::{Overrides, PlanError, resolve_source};
    use super::*;

    fn plan(drill: &str, observe: &str) -> Result<super::super::Plan, PlanError> {
        let source = format!(
            "name = 'd'\n{observe}\n[[phases]]\nname = 'flood'\nduration = '5s'\n\
             load = {{ type = 'constant', rate = 5 }}\n{drill}\n"
        );
        resolve_source("d.toml", &source, None, &Overrides::default())
    }

    const PROM: &str = "[observe]\nprometheus = 'http://127.0.0.1:9090'";

    #[test]
    fn a_drill_resolves_with_its_defaults() {
        let p = plan(
            "drill = { fault = 'queue_flood', expect = ['LLMQueueBacklog'] }",
            PROM,
        )
        .unwrap();
        let drill = p.phases[0].drill.clone().unwrap();
        assert_eq!(drill.fault, Fault::QueueFlood { factor: 20.0 });
        assert_eq!(drill.expect, vec!["LLMQueueBacklog"]);
        let burst = plan("drill = { fault = 'error_burst', rate = 0.5 }", PROM).unwrap();
        assert_eq!(
            burst.phases[0].drill.as_ref().unwrap().fault,
            Fault::ErrorBurst { rate: 0.5 }
        );
    }

    #[test]
    fn bad_drills_fail_before_anything_is_sent_with_a_location() {
        let unknown = plan("drill = { fault = 'meteor' }", PROM)
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("unknown fault `meteor`") && unknown.contains("d.toml:"),
            "{unknown}"
        );
        let rate = plan("drill = { fault = 'error_burst', rate = 1.5 }", PROM)
            .unwrap_err()
            .to_string();
        assert!(rate.contains("rate must be in (0, 1]"), "{rate}");
        let name = plan("drill = { fault = 'engine_stall', expect = ['a b'] }", PROM)
            .unwrap_err()
            .to_string();
        assert!(name.contains("not an alert name"), "{name}");
        let no_prom = plan("drill = { fault = 'engine_stall' }", "")
            .unwrap_err()
            .to_string();
        assert!(no_prom.contains("set [observe] prometheus"), "{no_prom}");
    }

    #[test]
    fn dashboards_must_exist_and_need_a_prometheus() {
        let missing = plan("", &format!("{PROM}\ndashboards = ['/no/such/dashboards']"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no such file or folder"), "{missing}");
        let alone = plan("", "[observe]\ndashboards = ['.']")
            .unwrap_err()
            .to_string();
        assert!(alone.contains("set prometheus too"), "{alone}");
    }
}
