//! Before any load: does the target answer at all?
//!
//! A run against a target that is down, misspelt or behind the wrong port
//! would otherwise send its whole schedule into connection errors and end
//! as "thresholds failed" (exit 4), which a scheduled job cannot tell from
//! a regression. [`check`] asks `GET /health`, then `GET /v1/models`, and
//! fails only when neither gave an HTTP answer: refused, DNS, TLS, reset
//! before a response, timeout — what the load would count as `connect`
//! errors. Any HTTP status, 404 and 401 included, means something
//! answered, and whether it serves the plan's API is the load's to
//! measure. The runner maps a failure to exit 3 (could not run).
//!
//! It must not judge the answers: no status is a failure here.

use std::time::Duration;

use crate::tls::Access;

/// The paths asked, in order; the first answer ends the check.
const PROBES: [&str; 2] = ["/health", "/v1/models"];

/// Ok when `base_url` answered `GET /health` or `GET /v1/models` with any
/// HTTP status within `timeout`; otherwise the URL and each probe's
/// reason: "the target http://127.0.0.1:9 did not answer: GET /health:
/// connection refused; GET /v1/models: connection refused".
pub async fn check(base_url: &str, timeout: Duration, access: &Access) -> Result<(), String> {
    let base = base_url.trim_end_matches('/');
    let client = access
        .builder()
        .no_proxy() // ask where the load will go, never through a proxy
        .redirect(reqwest::redirect::Policy::none()) // a 3xx is an answer
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client for {base}: {e}"))?;
    let mut reasons = Vec::with_capacity(PROBES.len());
    for path in PROBES {
        match client.get(format!("{base}{path}")).send().await {
            Ok(_) => return Ok(()),
            Err(error) => reasons.push(format!("GET {path}: {}", reason(&error, timeout))),
        }
    }
    Err(format!(
        "the target {base} did not answer: {}",
        reasons.join("; ")
    ))
}

/// The cause in a few words: "connection refused", "no answer within 2s",
/// or the innermost error's own message (a DNS or TLS failure).
fn reason(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {}", humantime::format_duration(timeout));
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(cause) = innermost.source() {
        let refused = cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            return "connection refused".to_owned();
        }
        innermost = cause;
    }
    innermost.to_string()
}
