//! Weighted task mixes and k6-style checks against the embedded
//! simulator: each task's share of requests against its weight, its own
//! prompts, output length and endpoint proven by the simulator's counts,
//! checks that pass and checks that fail with their evidence.

use infercheck::report::{Report, Scope, TaskReport, ThresholdStatus};

use crate::util::{exact_sim, run, sim, sim_counter};

fn task<'a>(report: &'a Report, name: &str) -> &'a TaskReport {
    report
        .tasks
        .iter()
        .find(|t| t.task == name)
        .unwrap_or_else(|| panic!("no task {name}: {:?}", report.tasks))
}

/// examples/002's LLMInferenceUser: short / medium / long prompts 10 / 5
/// / 2, a high-temperature generation, a health check and a model-info
/// request, 1 each. 8,000 requests make the binomial SD of the largest
/// share 0.56 points, so 2 points is 3.6 SD.
const LOCUST_MIX: &str = r#"
[target]
stream = false
[workload]
max_tokens = 1
[[tasks]]
name = "short"
weight = 10
prompts = [{ tokens = 64 }]
[[tasks]]
name = "medium"
weight = 5
prompts = [{ tokens = 128 }]
max_tokens = 2
[[tasks]]
name = "long"
weight = 2
prompts = [{ tokens = 256 }]
max_tokens = 3
[[tasks]]
name = "hot"
weight = 1
temperature = 1.5
prompts = [{ tokens = 8 }]
[[tasks]]
name = "health"
weight = 1
get = "/health"
checks = [{ status = 200 }, { json = "/status", equals = "ok" }]
[[tasks]]
name = "models"
weight = 1
get = "/v1/models"
checks = [{ status = 200 }, { json = "/data/0/id", not_empty = true }]
[[phases]]
name = "mix"
requests = 8000
load = { type = "concurrency", concurrency = 32 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locust_task_mix_gives_each_task_its_share_and_its_own_statistics() {
    let server = sim(exact_sim(0, 0)).await;
    let (result, _dir) = run(LOCUST_MIX, Some(&server.base_url())).await;
    let report = &result.report;
    assert_eq!(report.overall.requests, 8000);
    assert_eq!(report.overall.ok, 8000, "{:?}", report.overall.errors);
    let weights = [
        ("short", 10.0),
        ("medium", 5.0),
        ("long", 2.0),
        ("hot", 1.0),
        ("health", 1.0),
        ("models", 1.0),
    ];
    for (name, weight) in weights {
        let t = task(report, name);
        let share = t.stats.requests as f64 / 8000.0;
        assert!(
            (share - weight / 20.0).abs() <= 0.02,
            "{name}: share {share:.4} against weight {}",
            weight / 20.0
        );
        assert!((t.weight - weight / 20.0).abs() < 1e-12);
    }
    // Each generation task sent its own prompt length and asked its own
    // output length: the server's usage says so, request by request.
    for (name, prompt, output) in [
        ("short", 64, 1),
        ("medium", 128, 2),
        ("long", 256, 3),
        ("hot", 8, 1),
    ] {
        let s = &task(report, name).stats;
        assert_eq!(s.prompt_tokens, prompt * s.ok, "{name}");
        assert_eq!(s.output_tokens, output * s.ok, "{name}");
        assert_eq!(task(report, name).endpoint, "POST /v1/chat/completions");
    }
    // The GETs went to their own paths and generated nothing: the
    // simulator's token counters hold exactly the generation tasks'.
    let generated: u64 = ["short", "medium", "long", "hot"]
        .iter()
        .map(|n| task(report, n).stats.output_tokens)
        .sum();
    assert_eq!(
        sim_counter(&server.base_url(), "vllm:generation_tokens_total").await as u64,
        generated
    );
    assert_eq!(task(report, "health").endpoint, "GET /health");
    assert_eq!(task(report, "health").stats.output_tokens, 0);
    // Per-task latency distributions exist for every task.
    for (name, _) in weights {
        let latency = task(report, name)
            .stats
            .quantiles(infercheck::stats::Distribution::Latency);
        assert!(latency.is_some(), "{name} has no latency");
    }
    // Checks ran only where declared, on every request of the task.
    let health = task(report, "health");
    assert_eq!(health.checks.len(), 2);
    assert!(
        health
            .checks
            .iter()
            .all(|c| c.passed == health.stats.requests && c.failed == 0)
    );
    assert_eq!(task(report, "short").stats.checks_passed, 0);
    assert_eq!(report.overall.checks_failed, 0);
    // The phase breaks down by task too.
    assert_eq!(report.phases[0].tasks.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_health_check_and_a_wrong_pointer_that_fails_with_a_sample() {
    let server = sim(exact_sim(30, 1)).await;
    let plan = r#"
thresholds = ["checks > 99%"]
[target]
stream = true
[workload]
max_tokens = 2
[[tasks]]
name = "health"
get = "/health"
checks = [{ status = 200 }, { json = "/status", equals = "ok" }]
thresholds = ["checks > 99%"]
[[tasks]]
name = "models"
get = "/v1/models"
checks = [{ name = "lists a model", json = "/models/0/name", exists = true }]
thresholds = ["checks > 99%"]
[[tasks]]
name = "chat"
checks = [{ content_not_empty = true }, { latency = "< 20ms" }]
[[phases]]
name = "checks"
requests = 60
load = { type = "concurrency", concurrency = 3 }
"#;
    let (result, dir) = run(plan, Some(&server.base_url())).await;
    let report = &result.report;
    // A failed check is not an error: every request succeeded.
    assert_eq!(report.overall.ok, 60, "{:?}", report.overall.errors);
    assert_eq!(result.exit_code, 4);
    let health = task(report, "health");
    assert!(health.checks.iter().all(|c| c.failed == 0 && c.passed > 0));
    let models = task(report, "models");
    let wrong = &models.checks[0];
    assert_eq!(wrong.name, "lists a model");
    assert_eq!((wrong.passed, wrong.failed), (0, models.stats.requests));
    assert_eq!(wrong.pass_rate, Some(0.0));
    let sample = &wrong.samples[0];
    assert_eq!(
        (sample.status, sample.detail.as_str()),
        (200, "/models/0/name is missing")
    );
    assert!(wrong.samples.len() <= 5);
    // Streamed chat: content arrived; the 30 ms TTFT misses a 20 ms bound.
    let chat = task(report, "chat");
    assert_eq!(chat.checks[0].failed, 0);
    assert_eq!(chat.checks[1].passed, 0);
    assert!(
        chat.checks[1].samples[0].detail.starts_with("latency 3"),
        "{:?}",
        chat.checks[1].samples[0]
    );
    // Thresholds: per task and for the run, from the same counts.
    let status = |scope: Scope| {
        report
            .thresholds
            .iter()
            .find(|t| t.scope == scope)
            .map(|t| (t.status, t.achieved))
            .unwrap()
    };
    assert_eq!(
        status(Scope::Task("health".into())),
        (ThresholdStatus::Pass, Some(1.0))
    );
    assert_eq!(
        status(Scope::Task("models".into())),
        (ThresholdStatus::Fail, Some(0.0))
    );
    let run_checks = report.overall.checks_passed as f64
        / (report.overall.checks_passed + report.overall.checks_failed) as f64;
    assert_eq!(
        status(Scope::Run),
        (ThresholdStatus::Fail, Some(run_checks))
    );
    // The report shows the failure's evidence.
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Per-Task Breakdown") && md.contains("### Checks"),
        "{md}"
    );
    assert!(md.contains("/models/0/name is missing"), "{md}");
    // tasks.csv holds a row per task with its check counts.
    let mut csv = Vec::new();
    infercheck::report::csv::render_table(report, infercheck::report::csv::Table::Tasks, &mut csv)
        .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let failed_column = header.iter().position(|h| *h == "checks_failed").unwrap();
    let models_row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("models,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(models_row[failed_column], models.stats.requests.to_string());
    assert_eq!(csv.lines().count(), 4, "{csv}");
    // And report.json is what docs/report-schema.json documents.
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::validator_for(&schema).unwrap();
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.dir.join("report.json")).unwrap())
            .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    drop(dir);
}

#[test]
fn tasks_and_checks_that_cannot_work_are_refused_before_any_request() {
    let cases = [
        (
            "[[tasks]]\nname = 'a'\nstream = true\nchecks = [{ json = '/x', exists = true }]\n",
            "streamed",
        ),
        (
            "[[tasks]]\nname = 'a'\n[[tasks]]\nname = 'a'\n",
            "two tasks are named `a`",
        ),
        (
            "[[tasks]]\nname = 'a'\nget = '/health'\nchecks = [{ model_matches = true }]\n",
            "needs an OpenAI answer",
        ),
        (
            "[[tasks]]\nname = 'a'\nget = 'health'\n",
            "must start with `/`",
        ),
        ("[[tasks]]\nname = 'a'\nweight = 0\n", "weights sum to 0"),
        (
            "[[tasks]]\nname = 'a'\nchecks = [{ status = 200, latency = '< 1s' }]\n",
            "exactly one of",
        ),
        (
            "[[tasks]]\nname = 'a'\napi = 'template'\n",
            "needs a `template` table",
        ),
    ];
    for (tasks, wanted) in cases {
        let source = format!(
            "{tasks}[[phases]]\nname = 'p'\nduration = '1s'\nload = {{ type = 'constant', rate = 1 }}\n"
        );
        let err = infercheck::plan::resolve_source(
            "plan.toml",
            &source,
            None,
            &infercheck::plan::Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(wanted), "{tasks}: {err}");
        assert!(err.contains("plan.toml"), "{err}");
    }
    let unknown = "[[tasks]]\nname = 'a'\n[[phases]]\nname = 'p'\nduration = '1s'\ntasks = ['b']\n\
                   load = { type = 'constant', rate = 1 }\n";
    let err = infercheck::plan::resolve_source(
        "plan.toml",
        unknown,
        None,
        &infercheck::plan::Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("names task `b`"), "{err}");
}
