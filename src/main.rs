//! The `hotdesk` binary: argument parsing, logging set-up and exit codes. The work is done in
//! the library; this is the only place `anyhow` is used.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // Logs go to stderr so that command output on stdout stays machine-readable. The audio
    // decoders log their own complaints about bad files; our error line already names the
    // file and the reason, so theirs are off unless asked for with RUST_LOG.
    let (format, default_filter) = args.logging();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        cli::LogFormat::Human => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hotdesk: {e:#}");
            ExitCode::from(1)
        }
    }
}
