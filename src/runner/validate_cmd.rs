//! `infercheck validate`: the validator against a running Prometheus,
//! printed as Markdown (or JSON), with an exit code a pipeline can act on.

use std::io::Write;

use super::Failure;
use crate::cli::ValidateArgs;
use crate::exit;
use crate::validate::{self, Request};

pub async fn validate(args: &ValidateArgs) -> Result<i32, Failure> {
    let mut query_sets = Vec::new();
    for name in &args.query_sets {
        let queries = crate::sample::queries::builtin(name)
            .map_err(|e| Failure::new(exit::PLAN_INVALID, format!("--query-set {name}: {e}")))?;
        query_sets.push((name.clone(), queries));
    }
    for path in &args.dashboards {
        validate::dashboard::load_all(path, 15.0)
            .map_err(|e| Failure::new(exit::PLAN_INVALID, format!("--dashboards: {e}")))?;
    }
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let request = Request {
        prometheus: args.prometheus.trim_end_matches('/').to_owned(),
        access: crate::tls::Access::default(),
        window: (now - args.window.as_secs_f64(), now),
        query_sets,
        dashboards: args.dashboards.clone(),
        rules: !args.no_rules,
    };
    let v = validate::validate(&request).await;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        serde_json::to_writer_pretty(&mut out, &v)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        crate::report::render_validation(&v, &mut out)
    };
    written.map_err(|e| Failure::new(exit::COULD_NOT_RUN, e))?;
    let unreachable = v.queries.is_empty() && v.dashboards.is_empty() && v.rules.is_none();
    Ok(match (v.pass, unreachable && !v.errors.is_empty()) {
        (true, _) => exit::OK,
        (false, true) => exit::COULD_NOT_RUN,
        (false, false) => exit::THRESHOLDS_FAILED,
    })
}
