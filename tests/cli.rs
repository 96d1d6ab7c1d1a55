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

/// A long run started in the background, once it has written `lines`
/// intervals: the child and its run folder.
fn long_run(out: &std::path::Path, lines: usize) -> (std::process::Child, std::path::PathBuf) {
    let plan = write_plan(
        out.parent().unwrap(),
        "[[phases]]\nname = 'long'\nduration = '5m'\nload = { type = 'constant', rate = 20 }\n",
    );
    let child = binary()
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
    let intervals = wait_for_intervals(out, lines, Duration::from_secs(30));
    (child, intervals.parent().unwrap().to_owned())
}

fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: kill only sends a signal to the child we spawned.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Every line of intervals.jsonl is a whole JSON object.
fn assert_intervals_whole(run_dir: &std::path::Path) -> usize {
    let text = std::fs::read_to_string(run_dir.join("intervals.jsonl")).unwrap();
    assert!(text.ends_with('\n'), "the last line is cut: {text:?}");
    for line in text.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(value["t"].is_number(), "{line}");
    }
    text.lines().count()
}

/// Ctrl-C and SIGTERM (what Kubernetes sends): the load stops, the partial
/// report is written (and is what docs/report-schema.json documents), exit 3.
#[test]
fn a_stop_signal_writes_the_partial_report() {
    let _exclusive = crate::util::exclusive_blocking();
    for (name, sig) in [("SIGINT", libc::SIGINT), ("SIGTERM", libc::SIGTERM)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("results");
        let (mut child, run_dir) = long_run(&out, 2);
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3), "{name}: interrupted runs exit 3");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(run_dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["verdict"]["outcome"], "interrupted", "{name}");
        let validator =
            jsonschema::draft202012::new(&crate::report::strict(crate::report::schema())).unwrap();
        let violations: Vec<String> = validator
            .iter_errors(&report)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(violations.is_empty(), "{name}: {violations:?}");
        assert!(
            report["overall"]["requests"].as_u64().unwrap() >= 20,
            "{name}"
        );
        assert!(report["duration_s"].as_f64().unwrap() < 60.0, "{name}");
        assert!(run_dir.join("report.md").is_file(), "{name}");
        assert!(assert_intervals_whole(&run_dir) >= 2, "{name}");
        let log = std::fs::read_to_string(run_dir.join("run.log")).unwrap();
        assert!(log.contains(name), "{name} not in run.log:\n{log}");
    }
}

/// A second signal exits at once, with what was flushed intact.
#[test]
fn a_second_signal_exits_at_once_with_the_flushed_lines_intact() {
    let _exclusive = crate::util::exclusive_blocking();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results");
    let (mut child, run_dir) = long_run(&out, 2);
    signal(&child, libc::SIGTERM);
    // The second signal after the first was taken (signals sent together
    // may arrive as one).
    let log = run_dir.join("run.log");
    let waiting = Instant::now();
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("SIGTERM: stopping the load")) {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the first SIGTERM was not taken"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, libc::SIGTERM);
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(assert_intervals_whole(&run_dir) >= 2);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("second SIGTERM: exiting now"), "{stderr}");
}

/// Polls (bounded) until intervals.jsonl under `out` has `lines` lines.
fn wait_for_intervals(out: &std::path::Path, lines: usize, limit: Duration) -> std::path::PathBuf {
    let start = Instant::now();
    while start.elapsed() < limit {
        let run_dir = crate::util::run_folder(out);
        let file = run_dir.map(|d| d.join("intervals.jsonl"));
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
    let run_dir = crate::util::run_folder(&out).expect("a run folder");
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
