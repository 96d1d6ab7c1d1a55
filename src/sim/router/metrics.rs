//! The router's own Prometheus metrics, per backend, in a registry of its
//! own (several routers can run in one process, e.g. in tests). Label
//! values come from closed sets: backends are the configured base URLs,
//! models are those the backends list (anything else is `other`), statuses
//! are HTTP codes, error reasons are [`ErrorReason`].

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Seconds; from a health check to a long generation.
const DURATION_BUCKETS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Why a forwarded request failed on the router's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorReason {
    /// No response from the backend (refused, reset, timed out): 502.
    Unreachable,
    /// The backend's response body broke off.
    Body,
}

impl ErrorReason {
    fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Unreachable => "unreachable",
            ErrorReason::Body => "body",
        }
    }
}

#[derive(Debug)]
pub(crate) struct RouterMetrics {
    registry: Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    in_flight: IntGaugeVec,
    duration: HistogramVec,
    /// `router_backend_info{backend, pod} 1`: the pod each backend runs
    /// in, where the router knows it (as an inference gateway's endpoint
    /// picker names its model-server pods).
    info: IntGaugeVec,
}

impl RouterMetrics {
    /// Registers every family; each backend's gauge starts at 0 so that an
    /// idle backend is visible.
    pub fn new(backends: &[String]) -> prometheus::Result<RouterMetrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "router_requests_total",
                "Requests answered, by backend, model and status.",
            ),
            &["backend", "model", "status"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "router_request_errors_total",
                "Requests the router could not complete, by backend and reason.",
            ),
            &["backend", "reason"],
        )?;
        let in_flight = IntGaugeVec::new(
            Opts::new(
                "router_backend_in_flight",
                "Requests outstanding at each backend.",
            ),
            &["backend"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "router_request_duration_seconds",
                "From the request's arrival to the end of the response body.",
            )
            .buckets(DURATION_BUCKETS.to_vec()),
            &["backend"],
        )?;
        let info = IntGaugeVec::new(
            Opts::new("router_backend_info", "The pod each backend runs in."),
            &["backend", "pod"],
        )?;
        let registry = Registry::new();
        registry.register(Box::new(info.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        for backend in backends {
            in_flight.with_label_values(&[backend]).set(0);
        }
        Ok(RouterMetrics {
            registry,
            requests,
            errors,
            in_flight,
            duration,
            info,
        })
    }

    /// Names the pod `backend` runs in.
    pub fn name_pod(&self, backend: &str, pod: &str) {
        self.info.with_label_values(&[backend, pod]).set(1);
    }

    pub fn answered(&self, backend: &str, model: &str, status: u16) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[backend, model, &status])
            .inc();
    }

    pub fn failed(&self, backend: &str, reason: ErrorReason) {
        self.errors
            .with_label_values(&[backend, reason.as_str()])
            .inc();
    }

    pub fn in_flight(&self, backend: &str, delta: i64) {
        self.in_flight.with_label_values(&[backend]).add(delta);
    }

    pub fn observe_duration(&self, backend: &str, seconds: f64) {
        self.duration.with_label_values(&[backend]).observe(seconds);
    }

    /// Prometheus text format 0.0.4.
    pub fn render(&self) -> Vec<u8> {
        let mut text = Vec::new();
        // Encoding into a Vec fails only on a malformed family, which the
        // typed constructors above cannot produce.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut text);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_backend_labels() {
        let metrics = RouterMetrics::new(&["http://a".into(), "http://b".into()]).unwrap();
        metrics.answered("http://a", "m", 200);
        metrics.failed("http://b", ErrorReason::Unreachable);
        metrics.in_flight("http://a", 1);
        metrics.observe_duration("http://a", 0.2);
        let text = String::from_utf8(metrics.render()).unwrap();
        let expected = [
            r#"router_requests_total{backend="http://a",model="m",status="200"} 1"#,
            r#"router_request_errors_total{backend="http://b",reason="unreachable"} 1"#,
            r#"router_backend_in_flight{backend="http://a"} 1"#,
            r#"router_backend_in_flight{backend="http://b"} 0"#,
            r#"router_request_duration_seconds_count{backend="http://a"} 1"#,
            r#"router_request_duration_seconds_bucket{backend="http://a",le="0.25"} 1"#,
        ];
        for line in expected {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
    }
}
