//! Integration tests: the analysis against the simulator, whose capacity
//! and faults are known — a sweep's knee where the batch is full, graceful
//! until load is shed, a latency spike's recovery against the simulator's
//! own queue, and the built-in staging-full plan filling examples/000.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use infercheck::report::{Degradation, Report, Scope, ThresholdStatus};
use infercheck::sim::{SimConfig, Spike};

use crate::util;

/// Sixteen requests run at once on a simulator with no slowdown: below 16
/// throughput grows in proportion, above it requests wait.
fn capacity_plan(extra: &str) -> String {
    format!(
        "name = 'capacity'\nthresholds = ['p95(latency) < 2s', 'error_rate < 1%']\n\
         [workload]\nmax_tokens = 16\nprompts = [{{ tokens = 16 }}]\n\
         [[phases]]\nname = 'sweep'\n\
         load = {{ type = 'sweep', levels = [4, 8, 12, 16, 24, 32, 48], step_duration = '3s' }}\n\
         [simulator]\nmax_num_seqs = 16\nttft = '10ms'\nper_token = '10ms'\nslowdown = 0.0\n{extra}"
    )
}

fn saturation(report: &Report) -> &infercheck::report::Saturation {
    let found = &report.explanation.saturation;
    assert_eq!(found.len(), 1, "{found:?}");
    &found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_past_the_batch_limit_has_its_knee_there_and_degrades_gracefully() {
    let (result, _dir) = util::run(&capacity_plan(""), None).await;
    let s = saturation(&result.report);
    let knee = s.knee.expect("a knee");
    assert!(
        (12.0..=24.0).contains(&knee),
        "knee {knee}, within one level of 16: {s:#?}"
    );
    assert_eq!(s.degradation, Degradation::Graceful, "{:#?}", s.evidence);
    let exponent = s.latency_exponent.unwrap();
    assert!((0.7..=1.25).contains(&exponent), "p95 ∝ load^{exponent}");
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Saturation") && md.contains("- **Degradation past the knee**: graceful")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sweep_shedding_load_past_its_capacity_is_catastrophic() {
    let (result, _dir) = util::run(&capacity_plan("shed_when_waiting = 1\n"), None).await;
    let s = saturation(&result.report);
    assert_eq!(
        s.degradation,
        Degradation::Catastrophic,
        "{:#?}",
        s.evidence
    );
    assert!(
        s.evidence
            .iter()
            .any(|e| e.starts_with("errors began past the knee")),
        "{:#?}",
        s.evidence
    );
    let risks: Vec<&str> = result
        .report
        .explanation
        .risks
        .iter()
        .map(|r| r.rule.as_str())
        .collect();
    assert!(risks.contains(&"catastrophic_degradation"), "{risks:?}");
}

/// Polls the simulator's queue until `done`: (seconds since `t0`,
/// requests waiting).
async fn watch_queue(
    server: &infercheck::sim::SimServer,
    t0: Instant,
    done: &AtomicBool,
) -> Vec<(f64, u64)> {
    let mut seen = Vec::new();
    while !done.load(Ordering::Relaxed) && seen.len() < 10_000 {
        seen.push((t0.elapsed().as_secs_f64(), server.stats().waiting));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_latency_spike_recovers_once_the_simulators_queue_has_drained() {
    let held = util::exclusive().await;
    // Steps 6× slower from 8 s to 12 s: the queue builds, then drains.
    let (after, length) = (Duration::from_secs(8), Duration::from_secs(4));
    let config = SimConfig {
        max_num_seqs: 8,
        faults: infercheck::sim::Faults {
            latency_spike: Some(Spike {
                after,
                length,
                factor: 6.0,
            }),
            ..Default::default()
        },
        ..util::exact_sim(10, 10)
    };
    let t0 = Instant::now();
    let server = util::sim(config).await;
    let done = AtomicBool::new(false);
    let plan = "name = 'spike'\nthresholds = ['recovery_time < 30s']\n\
        [workload]\nmax_tokens = 16\nprompts = [{ tokens = 16 }]\n\
        [[phases]]\nname = 'before'\nduration = '8s'\nload = { type = 'constant', rate = 20 }\n\
        [[phases]]\nname = 'fault'\nduration = '4s'\nload = { type = 'constant', rate = 20 }\nstress = true\n\
        [[phases]]\nname = 'after'\nduration = '14s'\nload = { type = 'constant', rate = 20 }\n";
    let base_url = server.base_url();
    let run = async {
        let ran = util::run_holding(&held, plan, Some(&base_url)).await;
        done.store(true, Ordering::Relaxed);
        ran
    };
    let ((result, _dir), seen) = tokio::join!(run, watch_queue(&server, t0, &done));
    let fault_end = (after + length).as_secs_f64();
    let peak = seen.iter().map(|s| s.1).max().unwrap_or(0);
    assert!(
        peak >= 10,
        "the spike queued requests: at most {peak} waited"
    );
    // The simulator's own truth: when its queue was empty again.
    let drained = seen
        .iter()
        .find(|(t, waiting)| *t > fault_end && *waiting == 0)
        .map(|s| s.0)
        .expect("the queue drained");
    let r = &result.report.explanation.recovery;
    assert_eq!(r.len(), 1, "{r:?}");
    let recovered = r[0].recovered_at_s.expect("recovered");
    assert!(
        (recovered - drained).abs() <= 2.0,
        "recovered at {recovered:.1} s, the queue drained at {drained:.1} s (fault ended at {fault_end} s): {r:?}"
    );
    let threshold = &result.report.thresholds[0];
    assert_eq!(
        (&threshold.scope, threshold.status),
        (&Scope::Run, ThresholdStatus::Pass)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_full_fills_every_cell_of_the_hand_written_report() {
    let _held = util::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = infercheck::cli::RunArgs::new("staging-full", dir.path().join("results"));
    // 87 s: long enough for the peak to queue and the ramp-down to recover.
    args.duration_scale = 0.05;
    args.quiet = true;
    let result = infercheck::runner::run_plan(args)
        .await
        .unwrap_or_else(|f| panic!("{}", f.message));
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    // examples/000's three tables: every row has a target and a status.
    let rows = [
        "| P95 Latency |",
        "| P99 Latency |",
        "| Error Rate |",
        "| Timeout Rate |",
        "| Peak QPS |",
        // Resource rows name their machine or GPU after the label.
        "| GPU Util (duty cycle)",
        "| Memory (System)",
        "| VRAM Usage",
        "| CPU Load",
        "| Queue Depth |",
        "| Orphaned Tasks |",
        "| Avg Processing Time |",
        "| Trace Coverage |",
    ];
    for row in rows {
        let line = md
            .lines()
            .find(|l| l.starts_with(row))
            .unwrap_or_else(|| panic!("no {row}"));
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert!(
            cells[2] != "—" && cells[3] != "—" && cells.iter().all(|c| !c.is_empty()),
            "{line}"
        );
    }
    let peak = result
        .report
        .phases
        .iter()
        .find(|p| p.name == "peak")
        .unwrap();
    let queue = peak
        .sampled("queue_depth")
        .and_then(|q| q.stats.max)
        .unwrap_or(0.0);
    assert!(
        queue > 0.0,
        "the peak queues: {:?}",
        peak.sampled("queue_depth")
    );
    for section in [
        "## Latency Drivers",
        "## Saturation",
        "## Recovery",
        "## Identified Optimizations",
        "## Risk Assessment",
    ] {
        assert!(md.contains(&format!("{section}\n")), "{section} missing");
    }
    let e = &result.report.explanation;
    // The plan's simulator runs 96 sequences with the KV cache mostly
    // free, so the peak's queue is the batch limit's doing.
    assert!(
        e.optimizations
            .iter()
            .any(|f| f.rule == "raise_batch_limit"),
        "{:?}",
        e.optimizations
    );
    for finding in e.optimizations.iter().chain(&e.risks) {
        let text = std::iter::once(&finding.statement).chain(&finding.evidence);
        assert!(
            text.clone().any(|t| t.chars().any(|c| c.is_ascii_digit())),
            "a finding without a number: {finding:?}"
        );
    }
}

#[test]
fn a_built_in_plans_simulator_settings_do_not_apply_to_a_real_target() {
    let plan =
        infercheck::plan::load("staging-full", &infercheck::plan::Overrides::default()).unwrap();
    assert!(plan.simulator.is_some_and(|s| s.max_num_seqs.is_some()));
    let against = infercheck::plan::Overrides {
        target: Some("http://vllm:8000".into()),
        ..Default::default()
    };
    let real = infercheck::plan::load("staging-full", &against).unwrap();
    assert_eq!(real.simulator, None, "ignored against a real target");
}
