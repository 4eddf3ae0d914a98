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
            eprintln!("hotdesk: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes on one line, without repeating a cause its message already says
/// (most of our errors name their cause in their own text).
fn one_line(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
