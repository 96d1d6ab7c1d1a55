//! The observability validator against a real Prometheus (Debian's, see
//! util::prometheus) scraping the simulator, its DCGM exporter and
//! infercheck itself, with alerts/ loaded: every panel of dashboards/
//! returns data; a renamed metric makes its panel fail by name, in the
//! library and through `infercheck validate`'s exit code; fault drills
//! raise their alerts within bound with no false positive, and a rule that
//! cannot fire fails its drill by name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use infercheck::report::{QueryOutcome, ThresholdStatus, Validation};
use infercheck::sim::{SimCluster, SimConfig};
use infercheck::validate::{self, Request};

use crate::util::prometheus::Prometheus;
use crate::util::{binary, exact_sim, exclusive, run_holding, sim};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// The rule files of alerts/ as one file (their groups under one
/// `groups:`), with `edit` applied to the text.
fn rules(files: &[&str], edit: &dyn Fn(String) -> String) -> String {
    let mut out = String::from("groups:\n");
    for f in files {
        let text = std::fs::read_to_string(root().join("alerts").join(f)).unwrap();
        let (_, groups) = text.split_once("groups:\n").expect("a rule file");
        out.push_str(groups);
    }
    edit(out)
}

/// Every `for: Nm` as `for: Ns`: the drills keep the rules' shape at a
/// test's pace.
fn minutes_as_seconds(text: String) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let trimmed = line.trim_start();
        match trimmed
            .strip_prefix("for: ")
            .and_then(|d| d.strip_suffix('m'))
        {
            Some(n) if n.chars().all(|c| c.is_ascii_digit()) => {
                out.push_str(&line[..line.len() - trimmed.len()]);
                out.push_str(&format!("for: {n}s"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn panels_without_data(v: &Validation) -> Vec<String> {
    v.dashboards
        .iter()
        .flat_map(|d| &d.queries)
        .filter(|q| !q.outcome.has_data())
        .map(|q| format!("{}: {} → {:?}", q.origin, q.expr, q.outcome))
        .collect()
}

/// Two engines behind the router, a DCGM exporter, infercheck's own
/// /metrics, recording and router rules: every panel of every shipped
/// dashboard returns data; one renamed metric fails that panel, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_of_the_shipped_dashboards_returns_data() {
    let held = exclusive().await;
    let config = SimConfig {
        max_num_seqs: 4,
        dcgm_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..exact_sim(20, 10)
    };
    let cluster = SimCluster::start("127.0.0.1:0".parse().unwrap(), config, 2)
        .await
        .unwrap();
    let own = free_addr();
    let router = addr_of(&cluster.base_url());
    let dcgm = addr_of(&cluster.dcgm_url().unwrap());
    let backends: Vec<SocketAddr> = cluster.backends().iter().map(|b| b.addr()).collect();
    let targets = [
        ("router", router),
        ("vllm", backends[0]),
        ("vllm", backends[1]),
        ("dcgm", dcgm),
        ("infercheck", own),
    ];
    let rule_text = rules(&["recording.yml", "router.yml"], &|t| t);
    let prometheus = Prometheus::start_with_rules(&targets, Some(&rule_text)).await;
    prometheus.wait_for_scrapes("vllm", 2).await;
    let plan = format!(
        "name = 'dashboards'\n[target]\nstream = true\n[workload]\nmax_tokens = 20\n\
         [observe]\nprometheus = '{}'\nmetrics_listen = '{own}'\ndashboards = ['{}']\ndrain_timeout = '5s'\n\
         [[phases]]\nname = 'warm'\nduration = '4s'\nload = {{ type = 'constant', rate = 10 }}\n\
         [[phases]]\nname = 'busy'\nduration = '8s'\nload = {{ type = 'concurrency', concurrency = 12 }}\n",
        prometheus.url(),
        root().join("dashboards").display()
    );
    let (result, _dir) = run_holding(&held, &plan, Some(&cluster.base_url())).await;
    let v = result
        .report
        .validation
        .as_ref()
        .expect("validated after the run");
    assert_eq!(v.dashboards.len(), 4, "{:?}", v.errors);
    let missing = panels_without_data(v);
    assert!(
        missing.is_empty(),
        "panels without data:\n{}",
        missing.join("\n")
    );
    for d in &v.dashboards {
        assert!(d.response.p95_ms.is_some_and(|ms| ms < 1000.0), "{d:?}");
    }
    // report.json's validation is what docs/report-schema.json documents.
    let schema = crate::report::strict(crate::report::schema());
    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.dir.join("report.json")).unwrap())
            .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    let md = std::fs::read_to_string(result.dir.join("report.md")).unwrap();
    assert!(
        md.contains("Dashboard Response (") && md.contains("### Dashboards"),
        "{md}"
    );

    // One metric renamed in one panel: that panel, and only it, fails.
    let broken_dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("dashboards/gpu.json")).unwrap();
    assert!(text.contains("DCGM_FI_DEV_GPU_UTIL"));
    let broken = text.replacen("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTILISATION", 1);
    let broken_path = broken_dir.path().join("gpu.json");
    std::fs::write(&broken_path, broken).unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    let request = Request {
        prometheus: prometheus.url().to_owned(),
        access: Default::default(),
        window: (now - 120.0, now),
        query_sets: Vec::new(),
        dashboards: vec![broken_path.clone()],
        rules: true,
    };
    let checked = validate::validate(&request).await;
    let failing: Vec<_> = checked.dashboards[0]
        .queries
        .iter()
        .filter(|q| !q.outcome.has_data())
        .collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    match &failing[0].outcome {
        QueryOutcome::NoData { absent_metrics, .. } => {
            assert_eq!(absent_metrics, &["DCGM_FI_DEV_GPU_UTILISATION"])
        }
        other => panic!("{other:?}"),
    }
    assert!(!checked.pass);
    let rules = checked.rules.as_ref().unwrap();
    assert!(rules.rules > 10 && rules.unhealthy.is_empty(), "{rules:?}");

    // The same through the command line: its exit code and its lines.
    let cli = |dashboards: &Path| {
        binary()
            .args([
                "validate",
                "--prometheus",
                prometheus.url(),
                "--window",
                "2m",
            ])
            .arg("--dashboards")
            .arg(dashboards)
            .output()
            .unwrap()
    };
    let good = cli(&root().join("dashboards"));
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert_eq!(
        good.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(
        stdout.contains("Dashboard Response") && stdout.contains("Rule Health"),
        "{stdout}"
    );
    let bad = cli(&broken_path);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("DCGM_FI_DEV_GPU_UTILISATION"), "{stdout}");
    cluster.stop().await;
}

/// A clean phase, an error burst, a clean phase, a queue flood, a clean
/// phase — against a real Prometheus evaluating recording.yml and
/// llm-serving.yml (with `for` in seconds).
fn drill_plan(prometheus: &str) -> String {
    format!(
        "name = 'drills'\n\
         thresholds = ['alerts_expected_fired == 100%', 'alerts_fired_unexpected == 0']\n\
         [target]\nstream = true\n[workload]\nmax_tokens = 20\n\
         [observe]\nprometheus = '{prometheus}'\ndrain_timeout = '10s'\n\
         [[phases]]\nname = 'clean'\nduration = '6s'\nload = {{ type = 'constant', rate = 10 }}\n\
         [[phases]]\nname = 'burst'\nduration = '8s'\nload = {{ type = 'constant', rate = 20 }}\n\
         drill = {{ fault = 'error_burst', expect = ['LLMErrorBudgetBurnRateFast', 'LLMErrorBudgetBurnRateSlow'] }}\n\
         [[phases]]\nname = 'calm'\nduration = '6s'\nload = {{ type = 'constant', rate = 10 }}\n\
         [[phases]]\nname = 'flood'\nduration = '8s'\nload = {{ type = 'constant', rate = 25 }}\n\
         drill = {{ fault = 'queue_flood', expect = ['LLMQueueBacklog'] }}\n\
         [[phases]]\nname = 'after'\nduration = '6s'\nload = {{ type = 'constant', rate = 10 }}\n"
    )
}

async fn drill_run(edit: &dyn Fn(String) -> String) -> infercheck::report::Report {
    let held = exclusive().await;
    let server = sim(SimConfig {
        max_num_seqs: 4,
        ..exact_sim(20, 5)
    })
    .await;
    let rule_text = rules(&["recording.yml", "llm-serving.yml"], &|t| {
        edit(minutes_as_seconds(t))
    });
    let prometheus =
        Prometheus::start_with_rules(&[("vllm", server.addr())], Some(&rule_text)).await;
    prometheus.wait_for_scrapes("vllm", 3).await;
    let (result, _dir) = run_holding(
        &held,
        &drill_plan(prometheus.url()),
        Some(&server.base_url()),
    )
    .await;
    server.stop().await;
    result.report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_drills_raise_their_alerts_within_bound_and_nothing_else() {
    let report = drill_run(&|t| t).await;
    let v = report.validation.as_ref().unwrap();
    let drills = v.drills.as_ref().expect("the drills were judged");
    let alerts: Vec<_> = drills.drills.iter().flat_map(|d| &d.alerts).collect();
    eprintln!("{alerts:#?}\nunexpected {:#?}", drills.unexpected);
    for a in &alerts {
        assert!(a.pass, "{a:?}");
        let (delay, bound) = (a.delay_s.unwrap(), a.bound_s.unwrap());
        // `for` (2m → 2 s; the slow burn's 15m → 15 s) + 2 evaluations +
        // 2 scrapes + the 1 s step the alert state is read at.
        let for_s = if a.name == "LLMErrorBudgetBurnRateSlow" {
            15.0
        } else {
            2.0
        };
        assert_eq!(bound, for_s + 5.0, "{a:?}");
        assert!(delay >= for_s && delay <= bound, "{a:?}");
    }
    assert_eq!((drills.expected_fired, drills.expected), (3, 3));
    assert!(drills.unexpected.is_empty(), "{:?}", drills.unexpected);
    for t in &report.thresholds {
        assert_eq!(t.status, ThresholdStatus::Pass, "{t:?}");
    }
    let mut md = Vec::new();
    infercheck::report::render(&report, infercheck::report::Format::Markdown, &mut md).unwrap();
    let md = String::from_utf8(md).unwrap();
    assert!(
        md.contains(
            "**Alert Rules**: 3/3 expected alerts fired within bound (LLMErrorBudgetBurnRateFast "
        ),
        "{md}"
    );
    assert!(
        md.contains("### Fault Drills") && md.contains("0 false positives"),
        "{md}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_cannot_fire_fails_its_drill_by_name() {
    let never = |t: String| t.replace("llm:queue_depth > 20", "llm:queue_depth > 1e9");
    let report = drill_run(&never).await;
    let drills = report.validation.as_ref().unwrap().drills.as_ref().unwrap();
    let backlog = drills
        .drills
        .iter()
        .flat_map(|d| &d.alerts)
        .find(|a| a.name == "LLMQueueBacklog")
        .unwrap();
    assert!(!backlog.pass && backlog.delay_s.is_none(), "{backlog:?}");
    assert!(backlog.detail.contains("never fired"), "{backlog:?}");
    let expected = report
        .thresholds
        .iter()
        .find(|t| t.expression == "alerts_expected_fired == 100%")
        .unwrap();
    assert_eq!(expected.status, ThresholdStatus::Fail, "{expected:?}");
    assert!(
        (expected.achieved.unwrap() - 2.0 / 3.0).abs() < 1e-9,
        "{expected:?}"
    );
}

/// A Prometheus that does not answer is measured: exit 3, and the reason.
#[test]
fn validate_against_a_dead_prometheus_exits_3_and_says_why() {
    let out = binary()
        .args(["validate", "--prometheus", &crate::util::dead_address()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("Prometheus did not answer"), "{stdout}");
    let bad = binary()
        .args([
            "validate",
            "--prometheus",
            "http://127.0.0.1:1",
            "--query-set",
            "nope",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--query-set nope"));
}

/// `infercheck assets` writes what the binary embeds: rules promtool
/// accepts, the dashboards, the query sets and the provisioning files.
#[test]
fn assets_writes_rules_promtool_accepts_and_the_dashboards() {
    let dir = tempfile::tempdir().unwrap();
    let out = binary()
        .args(["assets", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "dashboards/llm-serving.json",
        "dashboards/load-test.json",
        "alerts/RUNBOOK.md",
        "queries/vllm.toml",
        "prometheus/scrape-infercheck.yml",
        "grafana/provisioning/dashboards/infercheck.yml",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let rules: Vec<PathBuf> = std::fs::read_dir(dir.path().join("alerts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    let check = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .args(&rules)
        .output()
        .expect("promtool (scripts/test.sh installs Debian's prometheus)");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let again = binary()
        .args(["assets", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}
