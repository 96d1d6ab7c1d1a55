//! infercheck: put an LLM inference stack under controlled load and prove that
//! its observability tells the truth.
//!
//! The binary (`src/main.rs`) is thin: it parses the command line through
//! [`cli`], calls [`run`], and maps the result to an [`exit`] code. Everything
//! else lives here so that tests can drive it in-process. See ARCHITECTURE.md
//! for the module map and the invariants each module keeps.

// The ground floor: shared vocabulary that imports nothing of the project.
pub mod clock;
pub mod exit;
pub mod history;
pub mod outcome;
pub mod serve;
pub mod tls;
pub mod trace_id;
pub mod units;

// The stages of a run, bottom to top (ARCHITECTURE.md, "Layers").
pub mod aggregate;
pub mod analysis;
pub mod cli;
pub mod load;
pub mod metric;
pub mod otlp;
pub mod plan;
pub mod report;
pub mod runner;
pub mod sample;
pub mod sim;
pub mod stats;
pub mod traces;
pub mod validate;

pub use runner::run;
