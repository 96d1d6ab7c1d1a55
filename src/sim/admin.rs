//! `GET`/`POST /admin/faults`: the faults in force, read and changed while
//! the simulator runs. A POST is a JSON patch: fields it names change,
//! others stay; windows it sets (`stall`, `latency_spike`) start `after`
//! the call, and a window of length 0 clears one. Durations are strings
//! like "1500ms" or "2s". Resource pressure ([`ResourceFaults`]) is patched
//! beside the faults: `kv_squeeze` (a share in `[0, 1)`) and
//! `gpu_memory_climb_mib_per_s` (MiB/s ≥ 0, climbing from the call); 0
//! clears either.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::time::Instant;

use super::config::{Faults, ResourceFaults, Spike, Stall};
use super::faults::FaultState;
use super::http::{error_response, json_response};
use super::state::Shared;

/// A patch of [`Faults`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsPatch {
    error_rate: Option<f64>,
    error_status: Option<u16>,
    stall: Option<WindowBody>,
    latency_spike: Option<WindowBody>,
    truncate_rate: Option<f64>,
    error_event_rate: Option<f64>,
    disconnect_rate: Option<f64>,
    malformed_rate: Option<f64>,
    span_drop_rate: Option<f64>,
    trace_drop_rate: Option<f64>,
    orphan_on_disconnect: Option<bool>,
    metrics_delay: Option<String>,
    metrics_error_rate: Option<f64>,
    token_underreport: Option<f64>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    crash_after: Option<Option<u64>>,
    cold_start: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    shed_when_waiting: Option<Option<u64>>,
    /// Share of the KV blocks taken away, in `[0, 1)`.
    kv_squeeze: Option<f64>,
    /// MiB/s the GPU memory used climbs by, from the call (0 clears).
    gpu_memory_climb_mib_per_s: Option<f64>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct WindowBody {
    #[serde(default = "zero")]
    after: String,
    length: String,
    /// Step cost multiplier (latency spikes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    factor: Option<f64>,
}

fn zero() -> String {
    "0s".to_string()
}

/// What GET (and POST) answer: every fault, windows as configured.
#[derive(Debug, Serialize)]
struct FaultsView {
    error_rate: f64,
    error_status: u16,
    stall: Option<WindowBody>,
    latency_spike: Option<WindowBody>,
    truncate_rate: f64,
    error_event_rate: f64,
    disconnect_rate: f64,
    malformed_rate: f64,
    span_drop_rate: f64,
    trace_drop_rate: f64,
    orphan_on_disconnect: bool,
    metrics_delay: String,
    metrics_error_rate: f64,
    token_underreport: f64,
    crash_after: Option<u64>,
    cold_start: String,
    shed_when_waiting: Option<u64>,
    kv_squeeze: f64,
    gpu_memory_climb_mib_per_s: f64,
}

fn text(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl From<&FaultState> for FaultsView {
    fn from(state: &FaultState) -> FaultsView {
        let f = &state.faults;
        FaultsView {
            error_rate: f.error_rate,
            error_status: f.error_status,
            stall: f.stall.map(|s| WindowBody {
                after: text(s.after),
                length: text(s.length),
                factor: None,
            }),
            latency_spike: f.latency_spike.map(|s| WindowBody {
                after: text(s.after),
                length: text(s.length),
                factor: Some(s.factor),
            }),
            truncate_rate: f.truncate_rate,
            error_event_rate: f.error_event_rate,
            disconnect_rate: f.disconnect_rate,
            malformed_rate: f.malformed_rate,
            span_drop_rate: f.span_drop_rate,
            trace_drop_rate: f.trace_drop_rate,
            orphan_on_disconnect: f.orphan_on_disconnect,
            metrics_delay: text(f.metrics_delay),
            metrics_error_rate: f.metrics_error_rate,
            token_underreport: f.token_underreport,
            crash_after: f.crash_after,
            cold_start: text(f.cold_start),
            shed_when_waiting: f.shed_when_waiting,
            kv_squeeze: state.resources.kv_squeeze,
            gpu_memory_climb_mib_per_s: state.resources.gpu_memory_climb_mib_per_s,
        }
    }
}

pub(crate) async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    view(&shared.faults())
}

pub(crate) async fn set_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch = match parse_patch(&body) {
        Ok(patch) => patch,
        Err(message) => return error_response(StatusCode::BAD_REQUEST, &message),
    };
    let current = shared.faults();
    match apply(&current, patch, Instant::now()) {
        Ok(next) => {
            let response = view(&next);
            shared.set_faults(next);
            response
        }
        Err(message) => error_response(StatusCode::BAD_REQUEST, &message),
    }
}

/// The patch in `body`, or an error naming the field at fault: serde names
/// an unknown field but not one of the wrong type (`"error_rate":"high"`),
/// so the fields are tried one by one to find it.
fn parse_patch(body: &[u8]) -> Result<FaultsPatch, String> {
    use serde_json::{Map, Value};
    serde_json::from_slice(body).map_err(|e| {
        let culprit = serde_json::from_slice::<Map<String, Value>>(body)
            .ok()
            .and_then(|fields| {
                fields.into_iter().find_map(|(name, value)| {
                    let alone = Value::Object(Map::from_iter([(name.clone(), value)]));
                    serde_json::from_value::<FaultsPatch>(alone)
                        .is_err()
                        .then_some(name)
                })
            });
        match culprit {
            Some(name) => format!("invalid faults: {name}: {e}"),
            None => format!("invalid faults: {e}"),
        }
    })
}

fn view(state: &FaultState) -> Response {
    let body = serde_json::to_vec(&FaultsView::from(state)).unwrap_or_default();
    json_response(StatusCode::OK, body)
}

/// The state after `patch`, windows it sets placed from `now`.
fn apply(current: &FaultState, patch: FaultsPatch, now: Instant) -> Result<FaultState, String> {
    let mut f = current.faults.clone();
    let rates = [
        ("error_rate", patch.error_rate, &mut f.error_rate),
        ("truncate_rate", patch.truncate_rate, &mut f.truncate_rate),
        (
            "error_event_rate",
            patch.error_event_rate,
            &mut f.error_event_rate,
        ),
        (
            "disconnect_rate",
            patch.disconnect_rate,
            &mut f.disconnect_rate,
        ),
        (
            "malformed_rate",
            patch.malformed_rate,
            &mut f.malformed_rate,
        ),
        (
            "span_drop_rate",
            patch.span_drop_rate,
            &mut f.span_drop_rate,
        ),
        (
            "trace_drop_rate",
            patch.trace_drop_rate,
            &mut f.trace_drop_rate,
        ),
        (
            "metrics_error_rate",
            patch.metrics_error_rate,
            &mut f.metrics_error_rate,
        ),
        (
            "token_underreport",
            patch.token_underreport,
            &mut f.token_underreport,
        ),
    ];
    for (name, value, field) in rates {
        if let Some(v) = value {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} must be between 0 and 1, got {v}"));
            }
            *field = v;
        }
    }
    if let Some(status) = patch.error_status {
        if !(400..=599).contains(&status) {
            return Err(format!(
                "error_status must be a 4xx or 5xx status, got {status}"
            ));
        }
        f.error_status = status;
    }
    if let Some(b) = patch.orphan_on_disconnect {
        f.orphan_on_disconnect = b;
    }
    if let Some(d) = patch.metrics_delay {
        f.metrics_delay = duration("metrics_delay", &d)?;
    }
    if let Some(d) = patch.cold_start {
        f.cold_start = duration("cold_start", &d)?;
    }
    if let Some(shed) = patch.shed_when_waiting {
        f.shed_when_waiting = shed;
    }
    if let Some(crash) = patch.crash_after {
        f.crash_after = crash;
    }
    let mut next = FaultState::new(f.clone(), now);
    next.stall = current.stall;
    next.spike = current.spike;
    next.faults.stall = current.faults.stall;
    next.faults.latency_spike = current.faults.latency_spike;
    let resources = ResourcePatch {
        kv_squeeze: patch.kv_squeeze,
        gpu_memory_climb_mib_per_s: patch.gpu_memory_climb_mib_per_s,
    };
    apply_resources(&mut next, current, resources, now)?;
    if let Some(w) = patch.stall {
        let stall = Stall {
            after: duration("stall.after", &w.after)?,
            length: duration("stall.length", &w.length)?,
        };
        let placed = FaultState::new(
            Faults {
                stall: Some(stall),
                ..Faults::default()
            },
            now,
        );
        let keep = !stall.length.is_zero();
        next.faults.stall = keep.then_some(stall);
        next.stall = placed.stall.filter(|_| keep);
    }
    if let Some(w) = patch.latency_spike {
        let factor = w.factor.unwrap_or(5.0);
        if !(factor.is_finite() && factor > 0.0) {
            return Err(format!(
                "latency_spike.factor must be positive, got {factor}"
            ));
        }
        let spike = Spike {
            after: duration("latency_spike.after", &w.after)?,
            length: duration("latency_spike.length", &w.length)?,
            factor,
        };
        let placed = FaultState::new(
            Faults {
                latency_spike: Some(spike),
                ..Faults::default()
            },
            now,
        );
        let keep = !spike.length.is_zero();
        next.faults.latency_spike = keep.then_some(spike);
        next.spike = placed.spike.filter(|_| keep);
    }
    Ok(next)
}

/// The resource-pressure fields of a [`FaultsPatch`].
struct ResourcePatch {
    kv_squeeze: Option<f64>,
    gpu_memory_climb_mib_per_s: Option<f64>,
}

/// Carries the resource pressure of `current` into `next`, changed where
/// `patch` names it: a climb it sets starts at `now`, 0 clears either.
fn apply_resources(
    next: &mut FaultState,
    current: &FaultState,
    patch: ResourcePatch,
    now: Instant,
) -> Result<(), String> {
    next.resources = current.resources;
    next.climb_since = current.climb_since;
    if let Some(share) = patch.kv_squeeze {
        if !(0.0..1.0).contains(&share) {
            return Err(format!(
                "kv_squeeze must be a share of the KV blocks, at least 0 and below 1, got {share}"
            ));
        }
        next.resources.kv_squeeze = share;
    }
    if let Some(rate) = patch.gpu_memory_climb_mib_per_s {
        if !(rate.is_finite() && rate >= 0.0) {
            return Err(format!(
                "gpu_memory_climb_mib_per_s must be MiB per second, 0 or more, got {rate}"
            ));
        }
        let resources = ResourceFaults {
            gpu_memory_climb_mib_per_s: rate,
            ..next.resources
        };
        *next = std::mem::take(next).with_resources(resources, now);
    }
    Ok(())
}

fn duration(field: &str, text: &str) -> Result<Duration, String> {
    crate::units::parse_duration(text).map_err(|e| format!("{field}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> FaultsPatch {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let now = Instant::now();
        let start = FaultState::new(
            Faults {
                error_rate: 0.5,
                ..Faults::default()
            },
            now,
        );
        let next = apply(
            &start,
            patch(r#"{"error_status":429,"crash_after":10}"#),
            now,
        )
        .unwrap();
        assert_eq!(next.faults.error_rate, 0.5);
        assert_eq!(next.faults.error_status, 429);
        assert_eq!(next.faults.crash_after, Some(10));
        let cleared = apply(&next, patch(r#"{"crash_after":null}"#), now).unwrap();
        assert_eq!(cleared.faults.crash_after, None);
        assert_eq!(cleared.faults.error_status, 429);
    }

    #[test]
    fn windows_start_from_the_call_and_length_zero_clears() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let s = apply(
            &FaultState::default(),
            patch(r#"{"latency_spike":{"length":"2s","factor":3}}"#),
            later,
        )
        .unwrap();
        assert_eq!(s.slow_factor(later + Duration::from_secs(1)), 3.0);
        assert_eq!(s.slow_factor(t0), 1.0);
        let s = apply(
            &s,
            patch(r#"{"stall":{"after":"1s","length":"500ms"}}"#),
            later,
        )
        .unwrap();
        assert_eq!(
            s.release_at(later + Duration::from_millis(1200)),
            later + Duration::from_millis(1500)
        );
        assert_eq!(
            s.slow_factor(later + Duration::from_secs(1)),
            3.0,
            "spike kept"
        );
        let s = apply(&s, patch(r#"{"stall":{"length":"0s"}}"#), later).unwrap();
        assert!(s.stall.is_none() && s.faults.stall.is_none());
    }

    #[test]
    fn resource_pressure_is_set_kept_and_cleared() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(5);
        let s = apply(
            &FaultState::default(),
            patch(r#"{"kv_squeeze":0.97,"gpu_memory_climb_mib_per_s":512}"#),
            t0,
        )
        .unwrap();
        assert_eq!(s.resources.kv_squeeze, 0.97);
        assert_eq!((s.climb_since, s.climbed_mib(later)), (Some(t0), 2560));
        let s = apply(&s, patch(r#"{"error_rate":0.1}"#), later).unwrap();
        assert_eq!(s.resources.kv_squeeze, 0.97, "kept when not named");
        assert_eq!(s.climb_since, Some(t0), "the climb goes on");
        let s = apply(&s, patch(r#"{"gpu_memory_climb_mib_per_s":100}"#), later).unwrap();
        assert_eq!(s.climb_since, Some(later), "a new rate starts at the call");
        let s = apply(
            &s,
            patch(r#"{"kv_squeeze":0,"gpu_memory_climb_mib_per_s":0}"#),
            later,
        )
        .unwrap();
        assert_eq!(s.resources, ResourceFaults::default());
        assert_eq!(s.climbed_mib(later + Duration::from_secs(60)), 0);
        let view = serde_json::to_value(FaultsView::from(&s)).unwrap();
        assert_eq!(view["kv_squeeze"], 0.0);
        assert_eq!(view["gpu_memory_climb_mib_per_s"], 0.0);
    }

    #[test]
    fn resource_pressure_out_of_range_is_refused() {
        let s = FaultState::default();
        let now = Instant::now();
        for (json, field) in [
            (r#"{"kv_squeeze":1}"#, "kv_squeeze"),
            (r#"{"kv_squeeze":-0.01}"#, "kv_squeeze"),
            (
                r#"{"gpu_memory_climb_mib_per_s":-1}"#,
                "gpu_memory_climb_mib_per_s",
            ),
        ] {
            let err = apply(&s, patch(json), now).unwrap_err();
            assert!(err.contains(field), "{json}: {err}");
        }
        let err = parse_patch(br#"{"kv_squeeze":"most"}"#).unwrap_err();
        assert!(err.contains("kv_squeeze:"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named() {
        let s = FaultState::default();
        let now = Instant::now();
        let err = apply(&s, patch(r#"{"error_rate":1.5}"#), now).unwrap_err();
        assert!(err.contains("error_rate"), "{err}");
        let err = apply(&s, patch(r#"{"cold_start":"soon"}"#), now).unwrap_err();
        assert!(err.contains("cold_start"), "{err}");
        assert!(serde_json::from_str::<FaultsPatch>(r#"{"nope":1}"#).is_err());
        let err = parse_patch(br#"{"error_status":503,"error_rate":"high"}"#).unwrap_err();
        assert!(err.contains("error_rate:"), "{err}");
        let err = parse_patch(br#"{"stall":{"length":5}}"#).unwrap_err();
        assert!(err.contains("stall:"), "{err}");
    }
}
