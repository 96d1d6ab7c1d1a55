//! Routing correctness (examples/004) from the engines' own counters:
//! each engine behind the router as its `/metrics` told it, whether the
//! backends serving the same models shared the work evenly, and whether
//! the server's split across models followed the plan's weights.
//!
//! A split is called wrong only when chance cannot explain it (Pearson's
//! χ², p below [`P_SKEW`]) *and* it is off by more than a bound a reader
//! would care about: least-outstanding routing evens out requests in
//! flight, not counts, so backends of unequal speed legitimately finish
//! somewhat different numbers of requests.

use std::collections::BTreeMap;

use crate::plan::{Plan, SERVER_DEFAULT_MODEL};
use crate::report::{
    BackendRow, BackendStatus, BackendValues, BalanceCheck, ModelCounter, ModelReport,
    ObservedReport, ResponseModelCheck, Routing, SplitCheck,
};
use crate::stats::goodness::chi_square;

/// A split this unlikely under the expected shares is not chance.
pub const P_SKEW: f64 = 0.001;
/// A backend more than this far off its group's even share is skewed.
pub const BALANCE_BOUND: f64 = 0.25;
/// A model more than this far off its weight's share is misrouted.
pub const SPLIT_BOUND: f64 = 0.10;

const FINISHED: &str = "requests_completed";

/// The router's side of the run: the answers' model names, and from the
/// server's counters the split across models and (behind a router) each
/// engine's share.
pub fn routing(plan: &Plan, observed: Option<&ObservedReport>, models: &[ModelReport]) -> Routing {
    let mut backends: Vec<BackendRow> = observed
        .map(|o| o.per_backend.iter().map(backend_row).collect())
        .unwrap_or_default();
    // The models the client sent requests for (all, for the server's
    // default model).
    let asked: Vec<String> = models
        .iter()
        .filter(|m| m.stats.requests > 0)
        .map(|m| m.model.clone())
        .collect();
    let balance = balance(&mut backends, &asked);
    Routing {
        backends,
        balance,
        model_split: observed.and_then(|o| model_split(plan, &o.by_model)),
        response_model: response_model(models),
    }
}

/// Whether the answers named the models asked for; `None` when no
/// successful request named one.
fn response_model(models: &[ModelReport]) -> Option<ResponseModelCheck> {
    let named: Vec<&ModelReport> = models
        .iter()
        .filter(|m| m.model != SERVER_DEFAULT_MODEL && m.stats.ok > 0)
        .collect();
    let by_model: Vec<(String, u64, u64)> = named
        .iter()
        .map(|m| (m.model.clone(), m.stats.ok, m.stats.other_model))
        .collect();
    let checked: u64 = by_model.iter().map(|(_, ok, _)| ok).sum();
    if checked == 0 {
        return None;
    }
    let other: u64 = by_model.iter().map(|(_, _, o)| o).sum();
    let routing_error = other > 0 && named.len() >= 2;
    let wrong: Vec<String> = by_model
        .iter()
        .filter(|(_, _, o)| *o > 0)
        .map(|(m, ok, o)| format!("{o} of {ok} answers for {m}"))
        .collect();
    let detail = match (other, routing_error) {
        (0, _) => format!("all {checked} successful answers named the model asked for"),
        (_, true) => format!(
            "{} named another model: requests reached another model's engine, or the router rewrote the model",
            wrong.join(", ")
        ),
        (_, false) => format!(
            "{} named another model: the server answers under its own name (TGI and llama.cpp do), or an alias is configured",
            wrong.join(", ")
        ),
    };
    Some(ResponseModelCheck {
        checked,
        other,
        by_model,
        pass: other == 0,
        routing_error,
        detail,
    })
}

fn backend_row(b: &BackendValues) -> BackendRow {
    let max = |name: &str| b.value(name).and_then(|v| v.stats.max);
    let finished = b.by_model.iter().find(|c| c.query == FINISHED);
    let requests = b.value(FINISHED).and_then(|v| v.value);
    let status = if b.scrapes_answered == 0 {
        BackendStatus::Unreachable
    } else if requests.is_none() {
        BackendStatus::NotCounted
    } else {
        BackendStatus::Ok
    };
    BackendRow {
        url: b.url.clone(),
        models: finished
            .map(|c| c.by_model.keys().cloned().collect())
            .unwrap_or_default(),
        requests: requests.map(|r| r.max(0.0)),
        share: None,
        running_max: max("running"),
        waiting_max: max("queue_depth"),
        kv_usage_max: max("kv_usage"),
        tokens_per_s_avg: b.value("gen_tokens_rate").and_then(|v| v.stats.avg),
        gpus: b.gpus.clone(),
        gpu_util_max: max("gpu_util"),
        vram_used_max_bytes: max("vram_used"),
        scrapes_answered: b.scrapes_answered,
        scrapes_missed: b.scrapes_missed,
        status,
    }
}

/// Groups the counted backends by the models they serve, fills each
/// one's share and status, and tests each group of two or more; marks
/// idle the engines that finished nothing of the models in `asked`.
fn balance(rows: &mut [BackendRow], asked: &[String]) -> Vec<BalanceCheck> {
    let mut groups: BTreeMap<Vec<String>, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row.requests.is_some() {
            groups.entry(row.models.clone()).or_default().push(i);
        }
    }
    let checks = groups
        .into_iter()
        .filter_map(|(models, members)| balance_group(rows, models, &members))
        .collect();
    mark_idle(rows, asked);
    checks
}

/// A backend that finished nothing while the others together finished
/// so much that an even split would almost surely have given it some is
/// idle — when requests were sent for a model it serves, or it names no
/// model (an engine never sent a request may have none on its counters).
/// One serving only models nobody asked for was rightly left alone.
fn mark_idle(rows: &mut [BackendRow], asked: &[String]) {
    let counted: Vec<f64> = rows.iter().filter_map(|r| r.requests).collect();
    let (k, total) = (counted.len() as f64, counted.iter().sum::<f64>());
    if k < 2.0 || (1.0 - 1.0 / k).powf(total) >= P_SKEW {
        return;
    }
    let default_asked = asked.iter().any(|m| m == SERVER_DEFAULT_MODEL);
    for row in rows.iter_mut() {
        let was_asked =
            default_asked || row.models.is_empty() || row.models.iter().any(|m| asked.contains(m));
        if row.requests == Some(0.0) && row.status == BackendStatus::Ok && was_asked {
            row.status = BackendStatus::NoTraffic;
        }
    }
}

fn balance_group(
    rows: &mut [BackendRow],
    models: Vec<String>,
    members: &[usize],
) -> Option<BalanceCheck> {
    let counts: Vec<f64> = members
        .iter()
        .map(|&i| rows[i].requests.unwrap_or(0.0))
        .collect();
    let total: f64 = counts.iter().sum();
    let k = members.len() as f64;
    for (&i, &n) in members.iter().zip(&counts) {
        rows[i].share = (total > 0.0).then(|| n / total);
    }
    if members.len() < 2 || total <= 0.0 {
        return None;
    }
    let fit = chi_square(&counts, &vec![1.0; members.len()])?;
    let departure = |n: f64| (n / (total / k) - 1.0).abs();
    // The chance an even split leaves one given backend with nothing.
    let p_zero = (1.0 - 1.0 / k).powf(total);
    let mut worst: Vec<String> = Vec::new();
    for (&i, &n) in members.iter().zip(&counts) {
        let row = &mut rows[i];
        if n == 0.0 && p_zero < P_SKEW {
            row.status = BackendStatus::NoTraffic;
        } else if fit.p_value < P_SKEW && departure(n) > BALANCE_BOUND {
            row.status = BackendStatus::Skewed;
        }
        if row.status != BackendStatus::Ok {
            worst.push(format!("{} {n:.0} of {total:.0}", row.url));
        }
    }
    let max_departure = counts.iter().map(|&n| departure(n)).fold(0.0, f64::max);
    let pass = worst.is_empty();
    let even = total / k;
    let detail = if pass {
        format!(
            "{k:.0} backends finished {total:.0} requests, each within {:.0} % of the even {even:.0} or by chance (χ² {:.1}, p {:.2})",
            max_departure * 100.0,
            fit.chi2,
            fit.p_value
        )
    } else {
        format!(
            "uneven beyond chance (χ² {:.1}, p {:.1e}) and the ±{:.0} % bound around the even {even:.0}: {} — check the router's backend list, its health checks and its balancing policy",
            fit.chi2,
            fit.p_value,
            BALANCE_BOUND * 100.0,
            worst.join(", ")
        )
    };
    Some(BalanceCheck {
        models,
        backends: members.len(),
        requests: total,
        chi2: fit.chi2,
        p_value: fit.p_value,
        max_departure,
        pass,
        detail,
    })
}

/// The server's finished requests per model against the plan's weights;
/// `None` with fewer than two named models or no per-model counters.
fn model_split(plan: &Plan, by_model: &[ModelCounter]) -> Option<SplitCheck> {
    let finished = by_model.iter().find(|c| c.query == FINISHED)?;
    let models: Vec<(String, f64, f64)> = plan
        .models
        .iter()
        .filter(|m| m.name != SERVER_DEFAULT_MODEL)
        .map(|m| {
            let served = finished.by_model.get(&m.name).copied().unwrap_or(0.0);
            (m.name.clone(), m.weight, served)
        })
        .collect();
    let counts: Vec<f64> = models.iter().map(|(_, _, n)| *n).collect();
    let weights: Vec<f64> = models.iter().map(|(_, w, _)| *w).collect();
    let fit = chi_square(&counts, &weights)?;
    let total: f64 = counts.iter().sum();
    let weight_sum: f64 = weights.iter().sum();
    let departure = |w: f64, n: f64| (n / (total * w / weight_sum) - 1.0).abs();
    let max_departure = models
        .iter()
        .map(|(_, w, n)| departure(*w, *n))
        .fold(0.0, f64::max);
    let pass = fit.p_value >= P_SKEW || max_departure <= SPLIT_BOUND;
    let split: Vec<String> = models
        .iter()
        .map(|(m, w, n)| {
            format!(
                "{m} {:.1} % (weight {:.1} %)",
                n / total * 100.0,
                w / weight_sum * 100.0
            )
        })
        .collect();
    let detail = format!(
        "{} of {total:.0} requests; χ² {:.1}, p {:.1e}; largest departure {:.0} % (bound ±{:.0} % unless chance explains it, p ≥ {P_SKEW}){}",
        split.join(", "),
        fit.chi2,
        fit.p_value,
        max_departure * 100.0,
        SPLIT_BOUND * 100.0,
        if pass {
            ""
        } else {
            " — requests reached engines of another model, or the generator did not follow the weights (see the per-model rows)"
        }
    );
    Some(SplitCheck {
        models,
        chi2: fit.chi2,
        p_value: fit.p_value,
        max_departure,
        pass,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(url: &str, models: &[&str], requests: f64) -> BackendRow {
        crate::report::test_report::backend_row(url, models, requests)
    }

    #[test]
    fn an_even_group_passes_and_shares_are_filled() {
        let mut rows = vec![row("a", &["m"], 510.0), row("b", &["m"], 490.0)];
        let checks = balance(&mut rows, &[]);
        assert_eq!(checks.len(), 1);
        assert!(checks[0].pass, "{}", checks[0].detail);
        assert_eq!(rows[0].share, Some(0.51));
        assert!((checks[0].max_departure - 0.02).abs() < 1e-12);
    }

    #[test]
    fn a_starved_and_a_skewed_backend_are_named() {
        let mut rows = vec![
            row("a", &["m"], 700.0),
            row("b", &["m"], 300.0),
            row("c", &["m"], 0.0),
        ];
        let checks = balance(&mut rows, &[]);
        assert!(!checks[0].pass);
        // a: 700 of an even 333 (+110 %); b: 300 (−10 %, within bound).
        assert_eq!(
            rows.iter().map(|r| r.status).collect::<Vec<_>>(),
            [
                BackendStatus::Skewed,
                BackendStatus::Ok,
                BackendStatus::NoTraffic
            ]
        );
        assert!(
            checks[0].detail.contains("c 0 of 1000"),
            "{}",
            checks[0].detail
        );
    }

    #[test]
    fn few_requests_do_not_make_a_skew() {
        // 3 requests over 2 backends: 3/0 happens one time in four.
        let mut rows = vec![row("a", &["m"], 3.0), row("b", &["m"], 0.0)];
        assert!(balance(&mut rows, &[])[0].pass);
        assert_eq!(rows[1].status, BackendStatus::Ok);
    }

    #[test]
    fn an_engine_never_sent_a_request_is_idle() {
        let mut rows = vec![row("a", &["m1"], 60.0), row("b", &[], 0.0)];
        assert!(balance(&mut rows, &[]).is_empty(), "no group of two");
        assert_eq!(rows[1].status, BackendStatus::NoTraffic);
        let mut unasked = vec![row("a", &["m1"], 60.0), row("b", &["m2"], 0.0)];
        balance(&mut unasked, &["m1".to_owned()]);
        assert_eq!(unasked[1].status, BackendStatus::Ok, "nobody asked for m2");
        let mut asked = vec![row("a", &["m1"], 60.0), row("b", &["m2"], 0.0)];
        balance(&mut asked, &["m1".to_owned(), "m2".to_owned()]);
        assert_eq!(
            asked[1].status,
            BackendStatus::NoTraffic,
            "m2 was asked for"
        );
        let mut few = vec![row("a", &["m1"], 5.0), row("b", &[], 0.0)];
        balance(&mut few, &[]);
        assert_eq!(few[1].status, BackendStatus::Ok, "0.5^5 is chance");
    }

    #[test]
    fn backends_of_different_models_are_not_compared() {
        let mut rows = vec![row("a", &["m1"], 900.0), row("b", &["m2"], 100.0)];
        assert!(balance(&mut rows, &[]).is_empty());
        assert_eq!(rows[1].share, Some(1.0));
    }

    fn plan_with(models: &[(&str, f64)]) -> Plan {
        let mut plan = crate::plan::load("smoke", &Default::default()).unwrap();
        plan.models = models
            .iter()
            .map(|(name, weight)| crate::plan::Model {
                name: name.to_string(),
                weight: *weight,
                thresholds: Vec::new(),
            })
            .collect();
        plan
    }

    fn finished(counts: &[(&str, f64)]) -> Vec<ModelCounter> {
        vec![ModelCounter {
            query: FINISHED.into(),
            by_model: counts.iter().map(|(m, n)| (m.to_string(), *n)).collect(),
        }]
    }

    #[test]
    fn the_split_follows_the_weights_or_says_by_how_much() {
        let plan = plan_with(&[("a", 0.75), ("b", 0.25)]);
        let good = model_split(&plan, &finished(&[("a", 742.0), ("b", 258.0)])).unwrap();
        assert!(good.pass, "{}", good.detail);
        let bad = model_split(&plan, &finished(&[("a", 1000.0), ("b", 0.0)])).unwrap();
        assert!(!bad.pass);
        assert!((bad.max_departure - 1.0).abs() < 1e-12, "b got none");
        assert!(
            bad.detail.contains("b 0.0 % (weight 25.0 %)"),
            "{}",
            bad.detail
        );
    }
}
