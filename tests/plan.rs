//! Integration tests: every built-in plan resolves and runs end to end
//! against the embedded simulator with a small duration scale.

use infercheck::cli::RunArgs;
use infercheck::plan::{BUILTIN, Overrides, load};
use infercheck::runner::run_plan;

#[test]
fn every_built_in_plan_resolves() {
    for builtin in BUILTIN {
        let plan = load(builtin.name, &Overrides::default())
            .unwrap_or_else(|e| panic!("{}: {e}", builtin.name));
        assert_eq!(plan.name, builtin.name);
        assert!(
            !builtin.description().is_empty(),
            "{} has a description",
            builtin.name
        );
    }
    let staging = load("staging-full", &Overrides::default()).unwrap();
    let names: Vec<&str> = staging.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["smoke", "ramp-up", "sustained", "peak", "ramp-down"]
    );
    assert_eq!(staging.total_duration().as_secs(), 29 * 60);
    // Every target of examples/000's three tables, and the drain window's.
    assert_eq!(staging.thresholds.len(), 15);
}

#[test]
fn duration_scale_shrinks_every_phase_and_step() {
    let scaled = load(
        "stress-sweep",
        &Overrides {
            duration_scale: 0.05,
            ..Overrides::default()
        },
    )
    .unwrap();
    assert_eq!(
        scaled.total_duration().as_secs(),
        30,
        "10 levels × 1m × 0.05"
    );
}

/// Runs each built-in plan at 1% of its length (at most 6 s of timed
/// phases; a plan of request-count phases whole) and checks it yields its
/// tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_plan_runs_against_the_embedded_simulator() {
    let _exclusive = crate::util::exclusive().await;
    for builtin in BUILTIN {
        let plan = load(builtin.name, &Overrides::default()).unwrap();
        let timed: f64 = plan
            .phases
            .iter()
            .filter(|p| p.requests.is_none())
            .map(|p| p.duration.as_secs_f64())
            .sum();
        let dir = tempfile::tempdir().unwrap();
        let mut args = RunArgs::new(builtin.name, dir.path().to_path_buf());
        args.duration_scale = if timed == 0.0 {
            1.0 // only request-count stops: their longest durations stay
        } else {
            (6.0 / timed).min(0.01)
        };
        let result = run_plan(args)
            .await
            .unwrap_or_else(|f| panic!("{}: {}", builtin.name, f.message));
        let report = &result.report;
        assert!(report.target.embedded_simulator);
        for phase in report.phases.iter().filter(|p| p.load != "pause") {
            assert!(
                phase.stats.requests > 0,
                "{}: phase {} sent nothing",
                builtin.name,
                phase.name
            );
            assert_eq!(
                phase.stats.errors.values().sum::<u64>(),
                0,
                "{}: {}",
                builtin.name,
                phase.name
            );
        }
        let markdown = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
        assert!(
            markdown.contains("| Metric | Target | Achieved | Status |"),
            "{}",
            builtin.name
        );
        match builtin.name {
            "stress-sweep" => {
                let rows: usize = report.phases.iter().map(|p| p.steps.len()).sum();
                assert_eq!(rows, 10, "a row per concurrency level and payload");
                assert!(markdown.contains("| Concurrency | RPS | p95 Latency (s) |"));
            }
            "mix-70-30" => assert_eq!(report.models.len(), 2),
            "staging-full" => assert_eq!(report.phases.len(), 5),
            // examples/003: every scenario sent exactly its request count.
            name if name.starts_with("rust-") || name == "spike" => {
                for phase in &report.phases {
                    assert_eq!(
                        Some(phase.stats.requests),
                        phase.planned_requests,
                        "{name}: {}",
                        phase.name
                    );
                    assert_eq!(phase.stats.checks_failed, 0, "{name}: {}", phase.name);
                }
            }
            // examples/002: the task mix with its checks; pauses send nothing.
            name if name.starts_with("locust-") || name == "baseline" => {
                assert_eq!(report.tasks.len(), 6, "{name}");
                assert!(report.overall.checks_passed > 0, "{name}");
                for pause in report.phases.iter().filter(|p| p.load == "pause") {
                    assert_eq!(pause.stats.requests, 0, "{name}: {}", pause.name);
                }
            }
            _ => {}
        }
    }
}
