//! Integration tests through the binary: exit codes, located plan errors,
//! built-in plans, Ctrl-C, report re-rendering.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{binary, write_plan};

fn run_binary(args: &[&str]) -> (i32, String, String) {
    let out = binary().args(args).output().expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD_PHASE: &str =
    "[[phases]]\nname = 'a'\nduration = '1s'\nload = { type = 'constant', rate = 5 }\n";

/// Malformed plans: exit 2, the file:line:col of the mistake, nothing sent
/// (the target is a dead port, so any send would show as a connect error
/// in a report — and no results folder may be created).
#[test]
fn malformed_plans_fail_before_any_request_with_a_located_error() {
    let cases = [
        (
            "unknown field",
            format!("{GOOD_PHASE}rat = 5\n"),
            "unknown field `rat`",
            5,
        ),
        (
            "bad duration",
            "[[phases]]\nname = 'a'\nduration = '5x'\nload = { type = 'constant', rate = 5 }\n"
                .to_owned(),
            "invalid duration \"5x\"",
            3,
        ),
        (
            "negative rate",
            "[[phases]]\nname = 'a'\nduration = '1s'\nload = { type = 'constant', rate = -5 }\n"
                .to_owned(),
            "positive",
            4,
        ),
        (
            "missing prompt file",
            format!("[workload]\nprompts_file = 'nope.jsonl'\n{GOOD_PHASE}"),
            "cannot read prompts file",
            2,
        ),
        (
            "bad threshold",
            format!("thresholds = ['p95(latncy) < 1s']\n{GOOD_PHASE}"),
            "unknown metric `latncy`",
            1,
        ),
        (
            "backends job without prometheus",
            format!("[observe]\nbackends_job = 'vllm'\n{GOOD_PHASE}"),
            "backends_job: needs `prometheus`",
            2,
        ),
    ];
    for (name, toml, needle, line) in cases {
        let dir = tempfile::tempdir().unwrap();
        let plan = write_plan(dir.path(), &toml);
        let out = dir.path().join("results");
        let (code, _, stderr) = run_binary(&[
            "run",
            plan.to_str().unwrap(),
            "--target",
            "http://127.0.0.1:9",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(code, 2, "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("plan.toml:{line}:")),
            "{name} at line {line}: {stderr}"
        );
        assert!(!out.exists(), "{name}: nothing may be written or sent");
    }
}

#[test]
fn bad_command_lines_exit_1_and_unknown_plans_exit_2() {
    assert_eq!(run_binary(&["run", "--duration-scale", "-1"]).0, 1);
    assert_eq!(run_binary(&["frobnicate"]).0, 1);
    let (code, _, stderr) = run_binary(&["run", "no-such-plan", "--quiet"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("built-in plans: smoke"), "{stderr}");
}

#[test]
fn plans_lists_every_built_in_plan() {
    let (code, stdout, _) = run_binary(&["plans"]);
    assert_eq!(code, 0);
    for name in [
        "smoke",
        "baseline",
        "staging-full",
        "weekly-regression",
        "stress-sweep",
        "spike",
        "mix-70-30",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{stdout}"
        );
    }
}

/// Ctrl-C: the load stops, the partial report is written, exit is non-zero.
#[test]
fn ctrl_c_writes_the_partial_report() {
    let _exclusive = crate::util::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "[[phases]]\nname = 'long'\nduration = '5m'\nload = { type = 'constant', rate = 20 }\n",
    );
    let out = dir.path().join("results");
    let mut child = binary()
        .args([
            "run",
            plan.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let intervals = wait_for_intervals(&out, 2, Duration::from_secs(30));
    // SAFETY: kill only sends a signal to the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "interrupted runs exit 3");
    let run_dir = intervals.parent().unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["verdict"]["outcome"], "interrupted");
    assert!(report["overall"]["requests"].as_u64().unwrap() >= 20);
    assert!(report["duration_s"].as_f64().unwrap() < 60.0);
    assert!(run_dir.join("report.md").is_file());
}

/// Polls (bounded) until intervals.jsonl under `out` has `lines` lines.
fn wait_for_intervals(out: &std::path::Path, lines: usize, limit: Duration) -> std::path::PathBuf {
    let start = Instant::now();
    while start.elapsed() < limit {
        let run_dir = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(Result::ok);
        let file = run_dir.map(|e| e.path().join("intervals.jsonl"));
        if let Some(file) =
            file.filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.lines().count() >= lines))
        {
            return file;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no intervals appeared under {} within {limit:?}",
        out.display()
    );
}

#[test]
fn a_finished_run_re_renders_from_its_json() {
    let _exclusive = crate::util::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(
        dir.path(),
        "[[phases]]\nname = 'quick'\nduration = '1s'\nload = { type = 'concurrency', concurrency = 2 }\n",
    );
    let out = dir.path().join("results");
    let (code, stdout, stderr) = run_binary(&[
        "run",
        plan.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let run_dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json = run_dir.join("report.json");
    let (code, markdown, _) = run_binary(&["report", json.to_str().unwrap(), "--format", "md"]);
    assert_eq!(code, 0);
    assert_eq!(
        markdown,
        std::fs::read_to_string(run_dir.join("report.md")).unwrap()
    );
    let (code, _, stderr) = run_binary(&["report", "/nonexistent/report.json"]);
    assert_eq!(code, 3, "{stderr}");
}
