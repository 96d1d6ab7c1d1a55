//! The built-in plans shipped in plans/, compiled into the binary so that
//! `infercheck run staging-full` works from any directory.

/// A plan that ships with infercheck.
pub struct Builtin {
    pub name: &'static str,
    /// The suite or hand-written report it reproduces (`infercheck plans`
    /// groups by it).
    pub suite: &'static str,
    pub source: &'static str,
}

macro_rules! builtin {
    ($name:literal, $suite:expr) => {
        Builtin {
            name: $name,
            suite: $suite,
            source: include_str!(concat!("../../plans/", $name, ".toml")),
        }
    };
    // A plan whose `[[tasks]]` are shared with others of its suite: the
    // tasks file (plans/tasks/) is appended to the plan's own.
    ($name:literal, $suite:expr, tasks: $tasks:literal) => {
        Builtin {
            name: $name,
            suite: $suite,
            source: concat!(
                include_str!(concat!("../../plans/", $name, ".toml")),
                include_str!(concat!("../../plans/tasks/", $tasks, ".toml")),
            ),
        }
    };
}

const OWN: &str = "infercheck";
const STAGING: &str = "examples/000: the staging load-test report";
const SWEEP: &str = "examples/001: the breaking-point sweep";
const LOCUST: &str = "examples/002: the Locust suite";
const RUST_SUITE: &str = "examples/003: the Rust load-test suite";
const SCRIPTS: &str = "examples/004: vegeta, k6 and the async scripts";

/// In the order `infercheck plans` lists them; a suite's plans together.
pub const BUILTIN: &[Builtin] = &[
    builtin!("smoke", OWN),
    builtin!("weekly-regression", OWN),
    builtin!("staging-full", STAGING),
    builtin!("stress-sweep", SWEEP),
    builtin!("locust-smoke", LOCUST, tasks: "locust-user"),
    builtin!("baseline", LOCUST, tasks: "locust-user"),
    builtin!("locust-medium", LOCUST, tasks: "locust-user"),
    builtin!("locust-high", LOCUST, tasks: "locust-user"),
    builtin!("locust-stress", LOCUST, tasks: "locust-user"),
    builtin!("locust-burst", LOCUST, tasks: "locust-user"),
    builtin!("locust-endurance", LOCUST, tasks: "locust-user"),
    builtin!("locust-sequence", LOCUST, tasks: "locust-user"),
    builtin!("rust-health", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-tokenize", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-generate", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-batch-tokenize", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-batch-generate", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-sustained", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("spike", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("rust-suite", RUST_SUITE, tasks: "realizar-endpoints"),
    builtin!("vegeta-fixed-rate", SCRIPTS),
    builtin!("k6-ramp-soak", SCRIPTS),
    builtin!("async-blast", SCRIPTS),
    builtin!("mix-70-30", SCRIPTS),
];

impl Builtin {
    /// The plan's `description` line, read without resolving the plan.
    pub fn description(&self) -> &'static str {
        self.source
            .lines()
            .find_map(|l| l.strip_prefix("description = \""))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or("")
    }
}
