//! infercheck: put an LLM inference stack under controlled load and prove that
//! its observability tells the truth.
//!
//! The binary (`src/main.rs`) is thin: it parses the command line through
//! [`cli`], calls [`run`], and maps the result to an [`exit`] code. Everything
//! else lives here so that tests can drive it in-process. See ARCHITECTURE.md
//! for the module map and the invariants each module keeps.

pub mod aggregate;
pub mod analysis;
pub mod cli;
pub mod exit;
pub mod load;
pub mod otlp;
pub mod plan;
pub mod report;
pub mod runner;
pub mod sample;
pub mod serve;
pub mod sim;
pub mod stats;
pub mod traces;

pub use runner::run;
