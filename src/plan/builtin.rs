//! The built-in plans shipped in plans/, compiled into the binary so that
//! `infercheck run staging-full` works from any directory.

/// A plan that ships with infercheck.
pub struct Builtin {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! builtin {
    ($name:literal) => {
        Builtin {
            name: $name,
            source: include_str!(concat!("../../plans/", $name, ".toml")),
        }
    };
}

pub const BUILTIN: &[Builtin] = &[
    builtin!("smoke"),
    builtin!("baseline"),
    builtin!("staging-full"),
    builtin!("weekly-regression"),
    builtin!("stress-sweep"),
    builtin!("spike"),
    builtin!("mix-70-30"),
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
