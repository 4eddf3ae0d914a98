//! The `hotdesk` binary: argument parsing, logging set-up and exit codes. The work is done in
//! the library; this is the only place `anyhow` is used.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Logs go to stderr so that command output on stdout stays machine-readable.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotdesk: {e:#}");
            ExitCode::from(1)
        }
    }
}
