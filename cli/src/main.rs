//! The `lifeboat` binary: parses the command line (usage errors exit 2), runs the action, prints the answer (JSON
//! with --json, else tables, the run's own errors as warnings on stderr). A failure is one line on stderr, exit 1.

use std::io::{ErrorKind, Write};
use std::process::ExitCode;

use clap::Parser;

use lifeboat_cli::command::Cli;
use lifeboat_cli::render::render;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match lifeboat_cli::run(&cli).await {
        Ok(answer) if cli.json => print_answer(&format!("{answer:#}\n")),
        Ok(answer) => {
            let rendered = render(&answer);
            for warning in &rendered.warnings {
                eprintln!("lifeboat: warning: {warning}");
            }
            print_answer(&rendered.report)
        }
        Err(failure) => {
            eprintln!("lifeboat: {failure}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the answer; a reader that stopped early (`| head`) is no failure.
fn print_answer(text: &str) -> ExitCode {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lifeboat: cannot print the answer: {e}");
            ExitCode::FAILURE
        }
    }
}
