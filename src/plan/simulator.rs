//! The plan's `[simulator]` table: settings of the embedded simulator, for
//! a plan that runs against it (no `target.base_url`) — its capacity
//! (`max_num_seqs`, `kv_blocks`), its speed, and faults to inject, so a
//! plan can make the demo queue, shed load or spike on purpose. The plan
//! holds plain values; the runner applies them to the simulator's own
//! configuration (the plan does not depend on the simulator).

use std::ops::Range;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

use super::PlanError;
use super::raw::DurationValue;

/// The table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSimulator {
    pub max_num_seqs: Option<usize>,
    pub kv_blocks: Option<u32>,
    pub ttft: Option<DurationValue>,
    pub per_token: Option<DurationValue>,
    pub slowdown: Option<f64>,
    pub seed: Option<u64>,
    pub error_rate: Option<f64>,
    pub shed_when_waiting: Option<u64>,
    pub orphan_on_disconnect: Option<bool>,
    pub spike: Option<RawSpike>,
    /// Whose metric names `/metrics` uses (one of [`METRIC_NAMINGS`]).
    pub metric_naming: Option<String>,
    /// Telemetry faults: share of the running batch the running gauge
    /// leaves out, in `[0, 1]`.
    pub running_underreport: Option<Spanned<f64>>,
    /// Telemetry faults: relative error of every queue time the queue-time
    /// histogram observes, -1 or more (-0.5 halves them, 1 doubles them).
    pub queue_time_misreport: Option<Spanned<f64>>,
    /// Router mode: this many engines behind the simulator's router (each
    /// its own replica with its own GPU; default 1, no router).
    pub backends: Option<Spanned<usize>>,
}

/// The most engines the embedded simulator puts behind its router.
pub const MAX_BACKENDS: usize = 16;

/// The simulator's metric namings (its `MetricNaming`; a runner test
/// checks that the two lists agree).
pub const METRIC_NAMINGS: &[&str] = &["vllm", "vllm-legacy", "sglang"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpike {
    pub after: DurationValue,
    pub length: DurationValue,
    pub factor: f64,
}

/// The resolved settings; `None`: the simulator's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SimulatorSettings {
    pub max_num_seqs: Option<usize>,
    pub kv_blocks: Option<u32>,
    #[serde(with = "optional_secs")]
    pub ttft: Option<Duration>,
    #[serde(with = "optional_secs")]
    pub per_token: Option<Duration>,
    pub slowdown: Option<f64>,
    pub seed: Option<u64>,
    pub error_rate: Option<f64>,
    pub shed_when_waiting: Option<u64>,
    pub orphan_on_disconnect: Option<bool>,
    /// (after, length, factor): every engine step `factor` times slower in
    /// that window of the run.
    pub spike: Option<(f64, f64, f64)>,
    pub metric_naming: Option<String>,
    /// Telemetry faults (the simulator's `TelemetryFaults`): `/metrics`
    /// lies while the engine works as configured.
    pub running_underreport: Option<f64>,
    pub queue_time_misreport: Option<f64>,
    /// Engines behind the router (`None`: one engine, no router).
    pub backends: Option<usize>,
}

mod optional_secs {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

/// Where the plan's target comes from, which decides what `[simulator]`
/// means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetSource {
    /// No target: the embedded simulator runs, with these settings.
    Embedded,
    /// `--target` on the command line: a built-in plan aimed at a real
    /// stack; its `[simulator]` table does not apply.
    CommandLine,
    /// `target.base_url` in the plan itself: `[simulator]` is a mistake.
    Plan,
}

/// Resolves the table for the plan's target.
pub fn resolve(
    raw: Option<Spanned<RawSimulator>>,
    target: TargetSource,
    error: &dyn Fn(Range<usize>, String) -> PlanError,
) -> Result<Option<SimulatorSettings>, PlanError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let span = raw.span();
    match target {
        TargetSource::Embedded => {}
        TargetSource::CommandLine => return Ok(None),
        TargetSource::Plan => {
            return Err(error(
                span,
                "[simulator] sets up the embedded simulator, but the plan names a target.base_url"
                    .to_owned(),
            ));
        }
    }
    let raw = raw.into_inner();
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(error(span.clone(), format!("[simulator] {what}")))
        }
    };
    check(
        raw.max_num_seqs != Some(0),
        "max_num_seqs must be at least 1",
    )?;
    check(raw.kv_blocks != Some(0), "kv_blocks must be at least 1")?;
    check(
        raw.slowdown.is_none_or(|s| s.is_finite() && s >= 0.0),
        "slowdown must be 0 or more",
    )?;
    check(
        raw.error_rate.is_none_or(|r| (0.0..=1.0).contains(&r)),
        "error_rate must be between 0 and 1",
    )?;
    check(
        raw.spike
            .as_ref()
            .is_none_or(|s| s.factor.is_finite() && s.factor >= 1.0),
        "spike.factor must be 1 or more",
    )?;
    // The telemetry faults are located at their values.
    let check_at = |value: &Option<Spanned<f64>>, ok: fn(f64) -> bool, what: &str| match value {
        Some(v) if !ok(*v.get_ref()) => Err(error(
            v.span(),
            format!("[simulator] {what}, got {}", v.get_ref()),
        )),
        _ => Ok(()),
    };
    check_at(
        &raw.running_underreport,
        |r| (0.0..=1.0).contains(&r),
        "running_underreport must be between 0 and 1",
    )?;
    check_at(
        &raw.queue_time_misreport,
        |r| r.is_finite() && r >= -1.0,
        "queue_time_misreport must be -1 or more",
    )?;
    if let Some(n) = &raw.backends
        && !(1..=MAX_BACKENDS).contains(n.get_ref())
    {
        return Err(error(
            n.span(),
            format!(
                "[simulator] backends must be between 1 and {MAX_BACKENDS}, got {}",
                n.get_ref()
            ),
        ));
    }
    if let Some(naming) = &raw.metric_naming {
        check(
            METRIC_NAMINGS.contains(&naming.as_str()),
            &format!(
                "metric_naming {naming:?}: expected one of {}",
                METRIC_NAMINGS.join(", ")
            ),
        )?;
    }
    Ok(Some(SimulatorSettings {
        max_num_seqs: raw.max_num_seqs,
        kv_blocks: raw.kv_blocks,
        ttft: raw.ttft.map(|d| d.0),
        per_token: raw.per_token.map(|d| d.0),
        slowdown: raw.slowdown,
        seed: raw.seed,
        error_rate: raw.error_rate,
        shed_when_waiting: raw.shed_when_waiting,
        orphan_on_disconnect: raw.orphan_on_disconnect,
        spike: raw
            .spike
            .map(|s| (s.after.0.as_secs_f64(), s.length.0.as_secs_f64(), s.factor)),
        metric_naming: raw.metric_naming,
        running_underreport: raw.running_underreport.map(Spanned::into_inner),
        queue_time_misreport: raw.queue_time_misreport.map(Spanned::into_inner),
        backends: raw.backends.map(Spanned::into_inner),
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Overrides, PlanError, resolve_source};

    const PLAN: &str = "name = 'lies'\n\
        [[phases]]\nname = 'p'\nduration = '1s'\nload = { type = 'constant', rate = 1 }\n\
        [simulator]\nmax_num_seqs = 4\n";

    fn resolve(extra: &str) -> Result<super::super::Plan, PlanError> {
        resolve_source(
            "p.toml",
            &format!("{PLAN}{extra}"),
            None,
            &Overrides::default(),
        )
    }

    #[test]
    fn telemetry_faults_resolve_to_the_settings() {
        let plan = resolve("running_underreport = 0.25\nqueue_time_misreport = -0.5\n").unwrap();
        let settings = plan.simulator.unwrap();
        assert_eq!(settings.running_underreport, Some(0.25));
        assert_eq!(settings.queue_time_misreport, Some(-0.5));
        assert_eq!(settings.max_num_seqs, Some(4));
        // Unset: the simulator's truthful default.
        let plain = resolve("").unwrap().simulator.unwrap();
        assert_eq!(
            (plain.running_underreport, plain.queue_time_misreport),
            (None, None)
        );
    }

    #[test]
    fn out_of_range_telemetry_faults_are_located_at_their_value() {
        // Line 8 of the plan: PLAN has 7 lines.
        for (extra, message, column) in [
            (
                "running_underreport = 1.5\n",
                "[simulator] running_underreport must be between 0 and 1, got 1.5",
                23,
            ),
            (
                "running_underreport = -0.1\n",
                "[simulator] running_underreport must be between 0 and 1, got -0.1",
                23,
            ),
            (
                "queue_time_misreport = -2.0\n",
                "[simulator] queue_time_misreport must be -1 or more, got -2",
                24,
            ),
            (
                "queue_time_misreport = nan\n",
                "[simulator] queue_time_misreport must be -1 or more, got NaN",
                24,
            ),
        ] {
            let Err(PlanError::Invalid(err)) = resolve(extra) else {
                panic!("{extra:?} resolved");
            };
            assert_eq!(err.message, message);
            assert_eq!((err.line, err.column), (8, column), "{err}");
            assert!(err.to_string().contains(&format!("--> p.toml:8:{column}")));
        }
    }

    #[test]
    fn a_telemetry_fault_of_the_wrong_type_is_located_too() {
        let Err(PlanError::Invalid(err)) = resolve("running_underreport = 'half'\n") else {
            panic!("a string resolved");
        };
        assert_eq!(err.line, 8, "{err}");
    }
}
