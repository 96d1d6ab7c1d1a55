//! The infercheck binary: parse the command line, run, map to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use infercheck::cli::{Cli, Command};
use infercheck::exit;

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((mut cli, matches)) => {
            if let Command::Run(args) = &mut cli.command {
                args.from_env = infercheck::cli::run_args_from_env(&matches);
            }
            cli
        }
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
