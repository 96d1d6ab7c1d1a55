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
    builtin!("baseline", LOCUST),
    builtin!("spike", RUST_SUITE),
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
