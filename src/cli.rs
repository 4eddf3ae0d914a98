//! Command-line surface (`contract.md` §1): subcommands, their output formats and exit codes
//! (0 ok, 2 bad input, 1 internal error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hotdesk::config::Config;
use hotdesk::conformance::{self, Channel, Material};
use hotdesk::dsp::dtmf::{DtmfParams, KeyPress};
use hotdesk::{audio, qa};
use serde_json::json;

/// hotdesk: IVR and DTMF voice-prompt engine for phone hot desking.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the SIP/RTP media server (embedded defaults without --config).
    Serve {
        /// Configuration file (TOML, contract §2).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log line format on stderr.
        #[arg(long, value_enum, default_value_t = LogFormat::Human)]
        log_format: LogFormat,
    },
    /// Find DTMF digits in recorded audio files (any common format and rate).
    Detect {
        /// One JSON object per file per line instead of `PATH: DIGITS`.
        #[arg(long)]
        json: bool,
        /// Receiver limits of an administration.
        #[arg(long, value_enum, default_value_t = Profile::Att)]
        profile: Profile,
        /// Audio files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run every fixture suite (folders with a manifest.toml) under DIR.
    Qa {
        /// The fixtures folder, or one suite.
        dir: PathBuf,
        /// One JSON object per fixture per line instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Run the synthesised DTMF conformance battery and print its table.
    Conformance {
        /// One JSON object per case per line.
        #[arg(long)]
        json: bool,
        /// Seed for phases, noise, keying and alignment.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Channel the battery crosses before the detector.
        #[arg(long, value_enum, default_value_t = ChannelArg::Linear)]
        channel: ChannelArg,
        /// Speech for the prompt-echo case (any audio file).
        #[arg(long, default_value = "fixtures/talkoff/proxy/espeak_en-us_m_p50.flac")]
        speech: PathBuf,
    },
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event, with the span fields (Call-ID …).
    Json,
}

impl Cli {
    /// The log format and default filter the command wants: the server logs its calls at
    /// info, the QA commands only warnings (their output is on stdout).
    pub fn logging(&self) -> (LogFormat, &'static str) {
        match &self.command {
            Command::Serve { log_format, .. } => (*log_format, "info,symphonia=off"),
            _ => (LogFormat::Human, "warn,symphonia=off"),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Profile {
    /// ITU-T Q.24 AT&T column (default).
    Att,
    /// ITU-T Q.24 NTT column.
    Ntt,
    /// ETSI, 6 dB twist.
    Etsi,
}

impl Profile {
    fn params(self) -> DtmfParams {
        match self {
            Profile::Att => DtmfParams::default(),
            Profile::Ntt => DtmfParams::ntt(),
            Profile::Etsi => DtmfParams::etsi(),
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ChannelArg {
    Linear,
    Ulaw,
    Alaw,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve { config, .. } => serve(config.as_deref()),
        Command::Detect {
            json,
            profile,
            files,
        } => Ok(detect(&files, json, &profile.params())),
        Command::Qa { dir, json } => qa_command(&dir, json),
        Command::Conformance {
            json,
            seed,
            channel,
            speech,
        } => conformance_command(json, seed, channel, &speech),
    }
}

fn serve(config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let config = match config {
        Some(path) => match Config::load(path, |name| std::env::var(name).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("hotdesk: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Config::defaults(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let env = |name: &str| std::env::var(name).ok();
        match hotdesk::service::run(config, env, shutdown_signal()).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(hotdesk::service::ServiceError::Directory(e)) if e.is_bad_input() => {
                eprintln!("hotdesk: {e}");
                Ok(ExitCode::from(2))
            }
            Err(e) => Err(e.into()),
        }
    })
}

/// SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

fn detect(files: &[PathBuf], json: bool, params: &DtmfParams) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let mut stdout = std::io::stdout().lock();
    for file in files {
        match qa::decode_file(file, params) {
            Ok((presses, _)) => {
                let line = if json {
                    detect_json(file, &presses)
                } else {
                    let digits: String = presses.iter().map(|p| p.digit).collect();
                    let digits = if digits.is_empty() {
                        "-".into()
                    } else {
                        digits
                    };
                    format!("{}: {digits}", file.display())
                };
                // A closed pipe (`| head`) is not an error worth a message.
                if writeln!(stdout, "{line}").is_err() {
                    return status;
                }
            }
            Err(e) => {
                eprintln!("hotdesk detect: {e}");
                status = ExitCode::from(2);
            }
        }
    }
    status
}

fn ms(samples: u64) -> f64 {
    samples as f64 * 1000.0 / audio::TELEPHONE_RATE as f64
}

fn detect_json(file: &std::path::Path, presses: &[KeyPress]) -> String {
    let events: Vec<_> = presses
        .iter()
        .map(|p| {
            // Total power of the pair, as spandsp reports it; the per-tone levels follow.
            let total = 10.0
                * (10f64.powf(p.low_dbm0 as f64 / 10.0) + 10f64.powf(p.high_dbm0 as f64 / 10.0))
                    .log10();
            json!({
                "digit": p.digit.to_string(),
                "start_ms": ms(p.start),
                "end_ms": ms(p.end),
                "detected_ms": ms(p.detected_at),
                "level_dbm0": round2(total),
                "low_dbm0": round2(p.low_dbm0 as f64),
                "high_dbm0": round2(p.high_dbm0 as f64),
            })
        })
        .collect();
    json!({
        "file": file.display().to_string(),
        "digits": presses.iter().map(|p| p.digit).collect::<String>(),
        "events": events,
    })
    .to_string()
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

fn qa_command(dir: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let results = match qa::run(dir, &DtmfParams::default()) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("hotdesk qa: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", qa::render_table(&results));
    }
    Ok(if results.iter().all(|r| r.passed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn conformance_command(
    json: bool,
    seed: u64,
    channel: ChannelArg,
    speech: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let channel = match channel {
        ChannelArg::Linear => Channel::Linear,
        ChannelArg::Ulaw => Channel::Ulaw,
        ChannelArg::Alaw => Channel::Alaw,
    };
    let speech = match audio::load(speech) {
        Ok(a) => Some(a.samples),
        Err(e) => {
            eprintln!("hotdesk conformance: {e}; dtmf_over_prompt_echo not run");
            None
        }
    };
    let material = speech.as_deref().map(|speech| Material { speech });
    let outcomes = conformance::run(&DtmfParams::default(), channel, seed, material.as_ref());
    for o in &outcomes {
        if json {
            println!("{}", serde_json::to_string(o)?);
        } else {
            let verdict = match o.passed {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => "info",
            };
            println!(
                "{:<30} {:<10} {verdict:<4}  {}",
                o.name,
                format!("{:?}", o.kind).to_lowercase(),
                o.detail
            );
        }
    }
    let (passed, judged) = conformance::tally(&outcomes);
    if !json {
        println!("\n{passed}/{judged} standard and robustness cases passed");
    }
    Ok(if passed == judged && material.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
