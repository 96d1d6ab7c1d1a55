//! The infercheck binary: parse the command line, run, map to an exit code.

use std::process::ExitCode;

use clap::Parser;
use infercheck::{cli::Cli, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE as u8
            } else {
                exit::OK as u8
            });
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("infercheck-load")
        .build()
        .expect("the tokio runtime starts");
    let code = runtime.block_on(infercheck::run(cli.command));
    // Workers still draining after Ctrl-C must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(u8::try_from(code).unwrap_or(exit::COULD_NOT_RUN as u8))
}
