//! deploy/: the container image, the Kubernetes manifests and the CI
//! examples, checked offline so that the templates cannot drift from the
//! binary.
//!
//! - Every Kubernetes manifest passes `kubernetes-validate` (PyPI) in
//!   strict mode, so a misspelt field fails; a manifest with one does.
//! - The infercheck command lines inside the CronJob, the Job and both CI
//!   examples parse with the real command line (`Cli::try_parse_from`);
//!   every variable they read is defined where they run; the plans they
//!   name (built-in or in the plans ConfigMap) load.
//! - The CI examples publish the JUnit file and keep the history file the
//!   command writes; the image's user is the one the manifests run as.
//!
//! YAML is read through Python's `yaml` (PyYAML) and validation runs
//! `kubernetes-validate`, both from the venv scripts/test.sh installs; its
//! bin folder comes from `INFERCHECK_PYTOOLS` (default target/pytools/bin).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Output};

use clap::Parser;
use infercheck::cli::{Cli, Command, RunArgs};
use serde_json::Value;

/// The Kubernetes versions the manifests must be valid for: the oldest
/// supported here (CronJob `timeZone` and Job `podFailurePolicy` are on by
/// default from 1.30) and the newest kubernetes-validate ships (its
/// default, when no version is given).
const KUBERNETES_VERSIONS: [Option<&str>; 2] = [Some("1.30.0"), None];

/// The Kubernetes manifests (kustomization.yaml is kustomize's, not an API
/// object: it is checked against the files instead).
const MANIFESTS: [&str; 5] = [
    "pvc.yaml",
    "configmap-staging.yaml",
    "configmap-plans.yaml",
    "cronjob.yaml",
    "job.yaml",
];

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn manifest(name: &str) -> PathBuf {
    deploy_dir().join("kubernetes").join(name)
}

/// The venv's bin folder, or a failure that says how to get it.
fn pytools() -> PathBuf {
    let dir = std::env::var_os("INFERCHECK_PYTOOLS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pytools/bin"),
        PathBuf::from,
    );
    let wanted = ["python", "kubernetes-validate"];
    if let Some(missing) = wanted.iter().find(|tool| !dir.join(tool).is_file()) {
        panic!(
            "{missing} not found in {}: run scripts/test.sh (it installs kubernetes-validate \
             and pyyaml into target/pytools), or point INFERCHECK_PYTOOLS at a venv's bin \
             folder that has them",
            dir.display()
        );
    }
    dir
}

fn run_tool(program: &Path, args: &[&str], files: &[&Path]) -> Output {
    Process::new(program)
        .args(args)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every document of a YAML file, as JSON (through PyYAML's safe loader).
fn yaml_documents(path: &Path) -> Vec<Value> {
    const TO_JSON: &str = "import json, sys, yaml\n\
        with open(sys.argv[1], encoding='utf-8') as f:\n    \
            docs = list(yaml.safe_load_all(f))\n\
        print(json.dumps(docs, default=str))\n";
    let python = pytools().join("python");
    let output = run_tool(&python, &["-c", TO_JSON], &[path]);
    assert!(
        output.status.success(),
        "{} is not valid YAML:\n{}",
        path.display(),
        text(&output)
    );
    serde_json::from_slice(&output.stdout).expect("the converter prints JSON")
}

/// The one document of a YAML file.
fn yaml_document(path: &Path) -> Value {
    let mut documents = yaml_documents(path);
    assert_eq!(documents.len(), 1, "{}: one document", path.display());
    documents.remove(0)
}

/// Runs kubernetes-validate in strict mode on `files` against `version`.
fn kubernetes_validate(files: &[&Path], version: Option<&str>) -> Output {
    let program = pytools().join("kubernetes-validate");
    let mut args = vec!["--strict"];
    if let Some(version) = version {
        args.extend(["--kubernetes-version", version]);
    }
    run_tool(&program, &args, files)
}

#[test]
fn every_kubernetes_manifest_passes_strict_schema_validation() {
    let paths: Vec<PathBuf> = MANIFESTS.iter().map(|m| manifest(m)).collect();
    let files: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    for version in KUBERNETES_VERSIONS {
        let output = kubernetes_validate(&files, version);
        let said = text(&output);
        let against = version.unwrap_or("its newest version");
        assert!(output.status.success(), "against {against}:\n{said}");
        // A kind it has no schema for is only a warning: each document must
        // say it passed.
        for path in &paths {
            let passed = said
                .lines()
                .any(|l| l.contains(&*path.to_string_lossy()) && l.contains(" passed for "));
            assert!(
                passed,
                "{} not validated against {against}:\n{said}",
                path.display()
            );
        }
    }
}

#[test]
fn a_manifest_with_a_misspelt_field_is_rejected() {
    let cronjob = std::fs::read_to_string(manifest("cronjob.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let typos = [
        ("concurrencyPolicy:", "concurencyPolicy:"),
        ("readOnlyRootFilesystem:", "readOnlyRootFileSystem:"),
    ];
    for (field, typo) in typos {
        assert!(cronjob.contains(field), "cronjob.yaml has {field}");
        let path = dir.path().join("cronjob.yaml");
        std::fs::write(&path, cronjob.replacen(field, typo, 1)).unwrap();
        let output = kubernetes_validate(&[&path], KUBERNETES_VERSIONS[0]);
        let said = text(&output);
        assert!(!output.status.success(), "{typo} accepted:\n{said}");
        let name = typo.trim_end_matches(':');
        assert!(said.contains(name), "the error names {name}:\n{said}");
    }
}

/// The `infercheck` argument lists of a shell script: each logical line
/// (continuations joined) whose first word is `infercheck`, split into
/// words as the shell would, without the program name.
fn infercheck_commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|line| {
            let words = shell_words(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            (words.first().map(String::as_str) == Some("infercheck")).then(|| words[1..].to_vec())
        })
        .collect()
}

/// One line split into words: whitespace separates them, quotes group,
/// a backslash escapes, `#` at a word's start comments out the rest.
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '#' if word.is_none() => break,
            '\'' => {
                let quoted: String = chars.by_ref().take_while(|&c| c != '\'').collect();
                word.get_or_insert_default().push_str(&quoted);
            }
            '"' => {
                let current = word.get_or_insert_default();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => current.extend(chars.next()),
                        Some(c) => current.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => word.get_or_insert_default().extend(chars.next()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[test]
fn shell_words_split_as_the_shell_does() {
    let words = shell_words(r#"infercheck run "$PLAN" --out 'a b' c\ d # a comment"#).unwrap();
    assert_eq!(words, ["infercheck", "run", "$PLAN", "--out", "a b", "c d"]);
    let script = "set -e\ninfercheck run smoke \\\n  --junit j.xml\necho done\n";
    assert_eq!(
        infercheck_commands(script),
        [["run", "smoke", "--junit", "j.xml"]]
    );
}

/// Replaces each variable reference of `syntax` in `word` with `value_of`
/// its name, and records the name.
fn expand(
    word: &str,
    syntax: Syntax,
    used: &mut BTreeSet<String>,
    value_of: &dyn Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = syntax.reference(after);
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&value_of(name));
        used.insert(name.to_owned());
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// How a variable is referenced.
#[derive(Clone, Copy)]
enum Syntax {
    /// Kubernetes' `$(NAME)` in a container's args.
    Kubernetes,
    /// The shell's `$NAME` and `${NAME}`.
    Shell,
}

impl Syntax {
    /// The name referenced at the start of `after` (what follows a `$`)
    /// and how many bytes the reference takes; an empty name when none.
    fn reference(self, after: &str) -> (&str, usize) {
        let bracketed = |open: char, close: char| {
            let inner = after.strip_prefix(open)?;
            let end = inner.find(close)?;
            Some((&inner[..end], end + 2))
        };
        let bare = || {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        match self {
            Syntax::Kubernetes => bracketed('(', ')').unwrap_or(("", 0)),
            Syntax::Shell => bracketed('{', '}').unwrap_or_else(bare),
        }
    }
}

/// Parses an argument list with the real command line; it must be a run.
fn parse_run(args: &[String], whose: &str) -> RunArgs {
    let argv = std::iter::once("infercheck").chain(args.iter().map(String::as_str));
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Run(run),
        }) => *run,
        Ok(other) => panic!("{whose}: not a run: {other:?}"),
        Err(error) => panic!("{whose}: {args:?} does not parse:\n{error}"),
    }
}

/// What every scheduled run must ask for: a baseline from the history,
/// the history on a path that is kept, a JUnit file.
fn assert_scheduled_run(run: &RunArgs, whose: &str) {
    assert_eq!(run.baseline.as_deref(), Some("latest-pass"), "{whose}");
    assert!(
        run.history.is_some() && !run.no_history,
        "{whose}: keeps a history"
    );
    assert!(run.junit.is_some(), "{whose}: writes JUnit XML");
    assert!(run.target.is_some(), "{whose}: names its target");
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    let Some(object) = value.as_object() else {
        return BTreeMap::new();
    };
    object
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// The container of a Job's pod template.
fn job_container(job_spec: &Value) -> &Value {
    let containers = job_spec["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1);
    &containers[0]
}

fn cronjob_job_spec() -> Value {
    let cronjob = yaml_document(&manifest("cronjob.yaml"));
    cronjob["spec"]["jobTemplate"]["spec"].clone()
}

fn job_spec() -> Value {
    yaml_document(&manifest("job.yaml"))["spec"].clone()
}

/// A container's args with its `$(VAR)`s replaced by the staging
/// ConfigMap's values, each of which must exist.
fn container_run(container: &Value, whose: &str) -> RunArgs {
    let settings = yaml_document(&manifest("configmap-staging.yaml"));
    let values = string_map(&settings["data"]);
    let refs = container["envFrom"].as_array().unwrap();
    let named = |r: &Value| r["configMapRef"]["name"] == settings["metadata"]["name"];
    assert!(
        refs.iter().any(named),
        "{whose} reads the staging ConfigMap"
    );
    assert!(
        container["command"].is_null(),
        "{whose} runs the image's entrypoint"
    );
    let mut used = BTreeSet::new();
    let value_of = |name: &str| {
        values
            .get(name)
            .unwrap_or_else(|| panic!("{whose}: $({name}) is not in the ConfigMap"))
            .clone()
    };
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            expand(
                a.as_str().unwrap(),
                Syntax::Kubernetes,
                &mut used,
                &value_of,
            )
        })
        .collect();
    assert!(
        used.contains("TARGET"),
        "{whose}: the target comes from the ConfigMap"
    );
    parse_run(&args, whose)
}

#[test]
fn the_cronjob_and_the_job_run_the_same_valid_command() {
    let (cron, once) = (cronjob_job_spec(), job_spec());
    let scheduled = container_run(job_container(&cron), "cronjob.yaml");
    assert_scheduled_run(&scheduled, "cronjob.yaml");
    assert_eq!(scheduled.plan, "weekly-regression");
    infercheck::plan::load(&scheduled.plan, &Default::default())
        .unwrap_or_else(|e| panic!("the CronJob's plan: {e}"));
    let history = scheduled.history.as_deref().unwrap();
    let mounts = job_container(&cron)["volumeMounts"].as_array().unwrap();
    let on_volume = |path: &Path| {
        mounts
            .iter()
            .any(|m| m["name"] == "data" && path.starts_with(m["mountPath"].as_str().unwrap()))
    };
    assert!(
        on_volume(history) && on_volume(&scheduled.out),
        "history and results are kept"
    );
    // "The same": the Job's pod is the CronJob's, only its lifetime differs.
    assert_eq!(
        cron["template"], once["template"],
        "the Job is the CronJob's run"
    );
    assert_eq!(cron["podFailurePolicy"], once["podFailurePolicy"]);
    assert_eq!(cron["backoffLimit"], once["backoffLimit"]);
}

#[test]
fn the_scheduled_runs_forbid_overlap_and_run_as_the_images_user() {
    let cronjob = yaml_document(&manifest("cronjob.yaml"));
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let user = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile names its USER");
    let (uid, gid) = user.trim().split_once(':').expect("USER uid:gid");
    for spec in [cronjob_job_spec(), job_spec()] {
        assert!(spec["ttlSecondsAfterFinished"].is_u64());
        let pod = &spec["template"]["spec"];
        let security = &pod["securityContext"];
        assert_eq!(security["runAsNonRoot"], true);
        assert_eq!(security["runAsUser"].to_string(), uid, "the image's uid");
        assert_eq!(security["runAsGroup"].to_string(), gid, "the image's gid");
        let container = job_container(&spec);
        assert!(container["resources"]["requests"].is_object());
        assert!(container["resources"]["limits"].is_object());
        // The stop policy's exit codes are infercheck's.
        let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
        let codes = &rules[0]["onExitCodes"]["values"];
        let expected = [
            infercheck::exit::USAGE,
            infercheck::exit::PLAN_INVALID,
            infercheck::exit::THRESHOLDS_FAILED,
            infercheck::exit::RUN_INVALID,
        ];
        assert_eq!(codes, &serde_json::json!(expected));
    }
}

#[test]
fn the_images_toolchain_is_at_least_the_crates_rust_version() {
    let dockerfile = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION=");
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let crate_needs = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("Cargo.toml's rust-version")
        .trim_matches('"');
    let version = |v: &str| -> Vec<u32> { v.split('.').map(|n| n.parse().unwrap()).collect() };
    assert!(
        version(image.trim()) >= version(crate_needs),
        "the image builds with Rust {image}, the crate needs {crate_needs}"
    );
}

#[test]
fn the_kustomization_lists_the_scheduled_manifests_and_names_the_image() {
    let kustomization = yaml_document(&manifest("kustomization.yaml"));
    let resources: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let scheduled: BTreeSet<&str> = MANIFESTS.into_iter().filter(|m| *m != "job.yaml").collect();
    assert_eq!(resources, scheduled, "job.yaml starts a run: left out");
    let spec = cronjob_job_spec();
    let image = job_container(&spec)["image"].as_str().unwrap();
    let name = image.split(':').next().unwrap();
    assert_eq!(kustomization["images"][0]["name"], name);
}

#[test]
fn the_plans_in_the_configmap_load() {
    let plans = yaml_document(&manifest("configmap-plans.yaml"));
    let data = string_map(&plans["data"]);
    assert!(!data.is_empty());
    let dir = tempfile::tempdir().unwrap();
    for (name, toml) in data {
        let path = dir.path().join(&name);
        std::fs::write(&path, toml).unwrap();
        let plan = infercheck::plan::load(path.to_str().unwrap(), &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!plan.phases.is_empty(), "{name}");
    }
}

/// The GitHub Actions workflow's job, its env, and its steps.
fn github_job() -> Value {
    let workflow = yaml_document(&deploy_dir().join("ci/github-actions.yml"));
    // YAML 1.1 (PyYAML) reads the key `on` as true.
    let triggers = workflow.get("on").or_else(|| workflow.get("true"));
    assert!(
        triggers.is_some_and(|t| t.get("schedule").is_some()),
        "runs on a schedule"
    );
    let jobs = workflow["jobs"].as_object().expect("jobs");
    assert_eq!(jobs.len(), 1);
    jobs.values().next().unwrap().clone()
}

fn step_using<'a>(steps: &'a [Value], action: &str) -> &'a Value {
    steps
        .iter()
        .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
        .unwrap_or_else(|| panic!("no step uses {action}"))
}

/// The one infercheck run among `scripts`, with its shell variables
/// replaced by placeholders and their names.
fn ci_run(scripts: &[&str], whose: &str) -> (RunArgs, BTreeSet<String>) {
    let commands: Vec<Vec<String>> = scripts
        .iter()
        .flat_map(|s| infercheck_commands(s))
        .collect();
    assert_eq!(commands.len(), 1, "{whose}: one infercheck command");
    let mut used = BTreeSet::new();
    let placeholder = |name: &str| format!("placeholder-{name}");
    let args: Vec<String> = commands[0]
        .iter()
        .map(|w| expand(w, Syntax::Shell, &mut used, &placeholder))
        .collect();
    (parse_run(&args, whose), used)
}

#[test]
fn the_github_workflow_runs_a_valid_command_and_publishes_what_it_writes() {
    let job = github_job();
    let steps = job["steps"].as_array().expect("steps");
    let scripts: Vec<&str> = steps.iter().filter_map(|s| s["run"].as_str()).collect();
    let (run, used) = ci_run(&scripts, "github-actions.yml");
    assert_scheduled_run(&run, "github-actions.yml");
    let env = string_map(&job["env"]);
    for name in &used {
        let defined = env.contains_key(name) || name.starts_with("GITHUB_");
        assert!(
            defined,
            "github-actions.yml: ${name} is not in the job's env"
        );
    }
    let junit = run.junit.unwrap();
    let history = run.history.unwrap();
    let report = step_using(steps, "mikepenz/action-junit-report");
    assert_eq!(report["with"]["report_paths"], junit.to_str().unwrap());
    for cache in ["actions/cache/restore", "actions/cache/save"] {
        let step = step_using(steps, cache);
        assert_eq!(step["with"]["path"], history.to_str().unwrap(), "{cache}");
    }
    let upload = step_using(steps, "actions/upload-artifact");
    let uploaded = upload["with"]["path"].as_str().unwrap();
    let paths: Vec<&str> = uploaded.lines().map(str::trim).collect();
    assert!(
        paths.contains(&run.out.to_str().unwrap()),
        "uploads the results"
    );
    for step in [report, upload, step_using(steps, "actions/cache/save")] {
        assert_eq!(step["if"], "always()", "also after a failing run");
    }
}

#[test]
fn the_gitlab_job_runs_a_valid_command_and_reports_its_junit() {
    let pipeline = yaml_document(&deploy_dir().join("ci/gitlab-ci.yml"));
    let jobs: Vec<&Value> = pipeline
        .as_object()
        .unwrap()
        .values()
        .filter(|v| v.get("script").is_some())
        .collect();
    assert_eq!(jobs.len(), 1);
    let job = jobs[0];
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let (run, _) = ci_run(&script, "gitlab-ci.yml");
    assert_scheduled_run(&run, "gitlab-ci.yml");
    let junit = run.junit.unwrap();
    let artifacts = &job["artifacts"];
    assert_eq!(artifacts["reports"]["junit"], junit.to_str().unwrap());
    assert_eq!(artifacts["when"], "always");
    let kept: Vec<&str> = artifacts["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().trim_end_matches('/'))
        .collect();
    assert!(
        kept.contains(&run.out.to_str().unwrap()),
        "keeps the results"
    );
    let cached = job["cache"]["paths"].as_array().unwrap();
    assert_eq!(cached[0], run.history.unwrap().to_str().unwrap());
}
