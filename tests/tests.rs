//! The one integration-test binary, organised by feature (ripgrep style).
//! Every test binds servers to 127.0.0.1:0 and talks only to loopback.

mod util;

mod agreement;
mod alerts;
mod analysis;

mod ci_outputs;
mod cli;
mod coverage;
mod dashboards;
mod deploy;
mod engine;
mod engines;
mod faults;
mod fuzz;
mod history;
mod hostile;
mod layering;
mod nvml;
mod observe;
mod plan;
mod prometheus;
mod raw_data;
mod real_vllm;
mod regression;
mod remote_write;
mod report;
mod resources;
mod secrets;
mod shapes;
mod sim;
mod tasks;
mod telemetry_faults;
mod tls;
mod traces;
mod validate;
mod workloads;
