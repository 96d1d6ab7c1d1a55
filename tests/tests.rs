//! The one integration-test binary, organised by feature (ripgrep style).
//! Every test binds servers to 127.0.0.1:0 and talks only to loopback.

mod util;

mod agreement;
mod alerts;
mod analysis;

mod cli;
mod coverage;
mod dashboards;
mod engine;
mod engines;
mod faults;
mod layering;
mod nvml;
mod observe;
mod plan;
mod prometheus;
mod real_vllm;
mod report;
mod resources;
mod sim;
mod telemetry_faults;
mod traces;
mod validate;
