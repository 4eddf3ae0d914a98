//! Command-line surface (`contract.md` §1): subcommands, their output formats and exit codes
//! (0 ok, 2 bad input, 1 internal error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hotdesk::config::Config;
use hotdesk_core::audio;
use hotdesk_core::dsp::dtmf::{
    DtmfDetector, DtmfEvent, DtmfParams, KeyPress, PressCollector, WARM_UP_SAMPLES,
};
use hotdesk_qa::conformance::{self, Channel, Material};
use hotdesk_qa::{qa, realworld};
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
        /// Also draw the file's spectrogram (300-2000 Hz) with the detected keys and the
        /// refused candidates to this PNG (one audio file only).
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
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
    /// Run a synthesised DTMF battery (the Q.24 conformance battery, or the real-world
    /// conditions) and print its table.
    Conformance {
        /// Which battery.
        #[arg(long, value_enum, default_value_t = Suite::Q24)]
        suite: Suite,
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
        /// The fixtures folder the real-world suite takes its speech and G.729 material from.
        #[arg(long, default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// Run a whole hot-desk call offline on virtual time, with a recording as the caller.
    Replay {
        /// One JSON object instead of the readable transcript.
        #[arg(long)]
        json: bool,
        /// Which flow the call runs.
        #[arg(long, value_enum)]
        flow: ReplayFlow,
        /// The desk phone's extension.
        #[arg(long)]
        device: String,
        /// For a callback: the user the activation names (then only the PIN is asked).
        #[arg(long)]
        user: Option<String>,
        /// The directory database (default: `store.url` of the configuration). The replay
        /// runs on a copy: nothing changes in it.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Configuration file (prompts, `[ivr]`, `[security]`, device range).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The caller: audio in any format `detect` reads, or a pcap with one RTP stream.
        caller: PathBuf,
    },
    /// The embedded directory: users, their names, prompt languages and PINs.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
        /// Configuration file (TOML, contract §2); default: the embedded defaults
        /// (`sqlite://hotdesk.db` in the working directory).
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Desk phones: who is logged in where; release a desk; clear a lockout.
    Devices {
        #[command(subcommand)]
        command: DevicesCommand,
        /// Configuration file (TOML, contract §2); default: the embedded defaults.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add a user (without a PIN: set one with set-pin).
    Add {
        /// Extension, which is also the account number keyed at a desk.
        extension: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Prompt language (en, fr, pt-BR …); default: the server's.
        #[arg(long)]
        language: Option<String>,
    },
    /// Set a user's PIN (4-10 digits), read from standard input or a terminal prompt; never
    /// from the command line, where other users could see it.
    SetPin {
        /// Extension.
        extension: String,
    },
    /// Remove a user (releasing their desk, if any).
    Remove {
        /// Extension.
        extension: String,
    },
    /// List the users.
    List {
        /// One JSON object per user per line.
        #[arg(long)]
        json: bool,
    },
    /// Import users from CSV lines `extension,name,pin[,language]`.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Every desk in features.device_range, with who is logged in.
    List {
        /// One JSON object per desk per line.
        #[arg(long)]
        json: bool,
    },
    /// Only the desks someone is logged in at.
    Logins {
        /// One JSON object per login per line.
        #[arg(long)]
        json: bool,
    },
    /// Log the user out of a desk (the phone goes back to its owner).
    Release {
        /// The desk's extension.
        device: String,
    },
    /// Clear the lockout of an account (or of a desk) after too many wrong PINs.
    Unlock {
        /// The account's (or desk's) extension.
        extension: String,
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
enum ReplayFlow {
    /// `*88`.
    Login,
    /// `*89`.
    Release,
    /// The portal's *Activate Phone*.
    Callback,
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
enum Suite {
    /// The conformance battery of ITU-T Q.24 and the Mitel tests.
    Q24,
    /// The real-world conditions: noise, talk-down, clicks, sags, fast dialling, codec and
    /// loss, off-nominal keys in noise, no-tone files.
    Realworld,
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
            plot,
            files,
        } => match plot {
            Some(png) => plot_command(&files, json, &profile.params(), &png),
            None => Ok(detect(&files, json, &profile.params())),
        },
        Command::Qa { dir, json } => qa_command(&dir, json),
        Command::Conformance {
            suite: Suite::Q24,
            json,
            seed,
            channel,
            speech,
            ..
        } => conformance_command(json, seed, channel, &speech),
        Command::Conformance {
            suite: Suite::Realworld,
            json,
            seed,
            channel,
            fixtures,
            ..
        } => realworld_command(json, seed, channel, &fixtures),
        Command::Replay {
            json,
            flow,
            device,
            user,
            db,
            config,
            caller,
        } => replay_command(json, flow, device, user, db, config.as_deref(), caller),
        Command::Users { command, config } => users_command(command, config.as_deref()),
        Command::Devices { command, config } => devices_command(command, config.as_deref()),
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

fn load_config(path: Option<&std::path::Path>) -> Result<hotdesk::config::Validated, String> {
    match path {
        Some(path) => {
            Config::load(path, |name| std::env::var(name).ok()).map_err(|e| e.to_string())
        }
        None => Ok(Config::defaults()),
    }
}

#[allow(clippy::too_many_arguments)]
fn replay_command(
    json: bool,
    flow: ReplayFlow,
    device: String,
    user: Option<String>,
    db: Option<PathBuf>,
    config: Option<&std::path::Path>,
    caller: PathBuf,
) -> anyhow::Result<ExitCode> {
    use hotdesk_core::ivr::FlowContext;
    use hotdesk_core::ivr::hotdesk as flows;
    use hotdesk_qa::replay::{FileReplay, FileReplayError, ReplaySpec};
    let config = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hotdesk: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    if let Err(e) = hotdesk_core::identity::Extension::parse(&device) {
        eprintln!("hotdesk: --device {device:?}: {e}");
        return Ok(ExitCode::from(2));
    }
    let spec = match flow {
        ReplayFlow::Login => &flows::LOGIN,
        ReplayFlow::Release => &flows::RELEASE,
        ReplayFlow::Callback => &flows::CALLBACK,
    };
    let request = FileReplay {
        spec: ReplaySpec {
            flow: spec,
            ctx: FlowContext {
                is_desk: config.is_device(&device),
                device,
                user,
                settings: config.flow_settings(),
            },
            language: config.config.ivr.language.clone(),
            max_call: std::time::Duration::from_secs(config.config.ivr.max_call_s),
        },
        caller,
        store_url: match db {
            Some(path) => format!("sqlite://{}", path.display()),
            None => config.config.store.url.clone(),
        },
        pepper_env: std::env::var(hotdesk_store::directory::PEPPER_ENV).ok(),
        policy: config.lockout_policy(),
    };
    let prompts =
        match hotdesk_core::prompts::loader::PromptCache::load_dir(&config.config.prompts.dir) {
            Ok(p) => std::sync::Arc::new(p),
            Err(e) => {
                eprintln!("hotdesk: {e} (prompts.dir; give --config)");
                return Ok(ExitCode::from(2));
            }
        };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let output = match runtime.block_on(hotdesk_qa::replay::run_file(&request, prompts)) {
        Ok(output) => output,
        Err(e @ (FileReplayError::Caller { .. } | FileReplayError::Copy { .. })) => {
            eprintln!("hotdesk: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(FileReplayError::Directory(e)) if e.is_bad_input() => {
            eprintln!("hotdesk: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&output)?)?;
    } else {
        print_transcript(&mut out, &output)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_transcript(
    out: &mut impl Write,
    output: &hotdesk_qa::replay::FileReplayOutput,
) -> std::io::Result<()> {
    use hotdesk_qa::replay::Entry;
    writeln!(out, "{}", output.file)?;
    for entry in &output.transcript.entries {
        let line = match entry {
            Entry::Prompt { at_ms, ids } => {
                format!("{:>8.3}s  plays   {}", secs(*at_ms), ids.join(" "))
            }
            Entry::Digit {
                at_ms,
                digit,
                source,
            } => format!("{:>8.3}s  key     {digit} ({source})", secs(*at_ms)),
            Entry::Decision { at_ms, decision } => {
                format!("{:>8.3}s  decides {decision}", secs(*at_ms))
            }
            Entry::Hangup { at_ms, by } => format!("{:>8.3}s  hangup  by {by}", secs(*at_ms)),
        };
        writeln!(out, "{line}")?;
    }
    writeln!(
        out,
        "outcome: {} after {:.3} s of call",
        output.transcript.outcome,
        secs(output.transcript.call_ms)
    )?;
    for report in &output.reports {
        writeln!(out, "report: {}", String::from_utf8_lossy(&report.body()))?;
    }
    Ok(())
}

fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// Samples in one piece of a recording that `detect` decodes on its own core (128 s, a whole
/// number of the detector's hops).
const PIECE: usize = 1_024_000;

/// Streams a file through the detector in bounded memory, each 128 s piece decoded on a thread
/// of its own while the file is still being read, as many at once as there are cores. A
/// piece's detector first reads the end of the piece before it ([`WARM_UP_SAMPLES`]); its
/// events are kept only if it then stands exactly where the reading of everything before
/// stands ([`DtmfDetector::same_state`]); otherwise that piece is read again in order. The
/// result is the one-pass result, bit for bit.
fn detect_file(
    file: &std::path::Path,
    params: &DtmfParams,
) -> Result<Vec<KeyPress>, audio::AudioError> {
    let mut run = PieceRun {
        params: params.clone(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        chain: DtmfDetector::new(params.clone()),
        presses: PressCollector::default(),
        in_flight: std::collections::VecDeque::new(),
        current: Vec::with_capacity(PIECE),
        tail: Vec::new(),
        next_start: 0,
    };
    audio::stream(file, &mut |mut block| {
        while !block.is_empty() {
            let take = (PIECE - run.current.len()).min(block.len());
            run.current.extend_from_slice(&block[..take]);
            block = &block[take..];
            if run.current.len() == PIECE {
                run.dispatch();
            }
        }
    })?;
    if !run.current.is_empty() {
        run.dispatch();
    }
    while !run.in_flight.is_empty() {
        run.settle_oldest();
    }
    run.chain.finish();
    run.presses.drain(&mut run.chain);
    Ok(run.presses.into_presses())
}

/// The state of [`detect_file`].
struct PieceRun {
    params: DtmfParams,
    cores: usize,
    /// The detector that has read everything before the pieces in flight.
    chain: DtmfDetector,
    presses: PressCollector,
    in_flight: std::collections::VecDeque<std::thread::JoinHandle<Ahead>>,
    current: Vec<i16>,
    /// The last [`WARM_UP_SAMPLES`] of the piece before `current`.
    tail: Vec<i16>,
    /// Where `current` starts in the stream.
    next_start: u64,
}

/// A piece read ahead: the piece, the detector's state where it starts, its events, its end
/// state.
struct Ahead {
    piece: Vec<i16>,
    joined: DtmfDetector,
    events: Vec<DtmfEvent>,
    end: DtmfDetector,
}

impl PieceRun {
    /// Sends the current piece to a thread, first settling the oldest if all cores are busy.
    fn dispatch(&mut self) {
        if self.in_flight.len() >= self.cores {
            self.settle_oldest();
        }
        let piece = std::mem::replace(&mut self.current, Vec::with_capacity(PIECE));
        let warm = (WARM_UP_SAMPLES as usize).min(piece.len());
        let tail = std::mem::replace(&mut self.tail, piece[piece.len() - warm..].to_vec());
        let (params, at) = (self.params.clone(), self.next_start);
        self.next_start += piece.len() as u64;
        self.in_flight.push_back(std::thread::spawn(move || {
            read_ahead(&params, at, &tail, piece)
        }));
    }

    /// Takes the oldest piece's events if its detector joined in the chain's state, else reads
    /// it again in order.
    fn settle_oldest(&mut self) {
        let Some(handle) = self.in_flight.pop_front() else {
            return;
        };
        let ahead = handle.join().expect("a detector thread panicked");
        if self.chain.same_state(&ahead.joined) {
            self.presses.extend(ahead.events);
            self.chain = ahead.end;
        } else {
            // A key or a candidate across the join: read the piece in order.
            self.chain.push(&ahead.piece);
            self.presses.drain(&mut self.chain);
        }
    }
}

/// Reads `piece`, which starts at sample `at`, after `before` (the samples just before it).
fn read_ahead(params: &DtmfParams, at: u64, before: &[i16], piece: Vec<i16>) -> Ahead {
    let mut detector = DtmfDetector::starting_at(params.clone(), at - before.len() as u64);
    detector.push(before);
    while detector.poll_event().is_some() {}
    let joined = detector.clone();
    detector.push(&piece);
    let events = std::iter::from_fn(|| detector.poll_event()).collect();
    Ahead {
        piece,
        joined,
        events,
        end: detector,
    }
}

fn detect_line(file: &std::path::Path, json: bool, presses: &[KeyPress]) -> String {
    if json {
        detect_json(file, presses)
    } else {
        let digits: String = presses.iter().map(|p| p.digit).collect();
        let digits = if digits.is_empty() {
            "-".into()
        } else {
            digits
        };
        format!("{}: {digits}", file.display())
    }
}

/// `detect --plot`: one file, its result line, and the picture.
fn plot_command(
    files: &[PathBuf],
    json: bool,
    params: &DtmfParams,
    png: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let [file] = files else {
        eprintln!(
            "hotdesk detect: --plot draws one file; {} given",
            files.len()
        );
        return Ok(ExitCode::from(2));
    };
    let analysis = match hotdesk_qa::plot::analyse(file, params) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hotdesk detect: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    println!("{}", detect_line(file, json, &analysis.presses));
    if let Err(e) = hotdesk_qa::plot::draw(&analysis, &file.display().to_string(), png) {
        eprintln!("hotdesk detect: {}: {e}", png.display());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn detect(files: &[PathBuf], json: bool, params: &DtmfParams) -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    let mut stdout = std::io::stdout().lock();
    for file in files {
        match detect_file(file, params) {
            Ok(presses) => {
                let line = detect_line(file, json, &presses);
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

impl ChannelArg {
    fn channel(self) -> Channel {
        match self {
            ChannelArg::Linear => Channel::Linear,
            ChannelArg::Ulaw => Channel::Ulaw,
            ChannelArg::Alaw => Channel::Alaw,
        }
    }
}

fn realworld_command(
    json: bool,
    seed: u64,
    channel: ChannelArg,
    fixtures: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let material = match realworld::Material::load(fixtures) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("hotdesk conformance: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let results = realworld::run(&DtmfParams::default(), channel.channel(), seed, &material);
    if json {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", realworld::render(&results));
    }
    Ok(if realworld::verdict(&results).0 {
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
    let channel = channel.channel();
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

/// Runs `work` on the directory of the configuration (`--config`, else the embedded
/// defaults). Errors are one line on stderr prefixed with `what`; exit status 2 when the input
/// (configuration, arguments, file) is at fault, 1 otherwise.
fn with_directory(
    what: &str,
    config: Option<&std::path::Path>,
    work: impl AsyncFnOnce(
        &dyn hotdesk_store::Store,
        &hotdesk::config::Validated,
    ) -> Result<ExitCode, hotdesk_store::directory::DirectoryError>,
) -> anyhow::Result<ExitCode> {
    let config = match config {
        Some(path) => match Config::load(path, |name| std::env::var(name).ok()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{what}: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        None => Config::defaults(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let outcome = match config.open_directory(|name| std::env::var(name).ok()).await {
            Ok(directory) => {
                let outcome = work(&directory as &dyn hotdesk_store::Store, &config).await;
                directory.close().await;
                outcome
            }
            Err(e) => Err(e),
        };
        Ok(outcome.unwrap_or_else(|e| {
            eprintln!("{what}: {e}");
            ExitCode::from(if e.is_bad_input() { 2 } else { 1 })
        }))
    })
}

fn users_command(
    command: UsersCommand,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    // The PIN is read before the store is opened, so that a prompt is not held up by it.
    let pin = match &command {
        UsersCommand::SetPin { extension } => match read_pin(extension) {
            Ok(pin) => Some(pin),
            Err(message) => {
                eprintln!("hotdesk users set-pin: {message}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => None,
    };
    with_directory("hotdesk users", config, async move |directory, _| {
        match command {
            UsersCommand::Add {
                extension,
                name,
                language,
            } => {
                directory
                    .add_user(&extension, name.as_deref(), language.as_deref())
                    .await?;
                println!("added {extension}");
            }
            UsersCommand::SetPin { extension } => {
                let pin = pin.unwrap_or_else(|| secrecy::SecretString::from(""));
                directory.set_pin(&extension, &pin).await?;
                println!("PIN set for {extension}");
            }
            UsersCommand::Remove { extension } => {
                if !directory.remove_user(&extension).await? {
                    return Err(hotdesk_store::directory::DirectoryError::UnknownUser(
                        extension,
                    ));
                }
                println!("removed {extension}");
            }
            UsersCommand::List { json } => {
                let users = directory.list_users().await?;
                let mut out = std::io::stdout().lock();
                if !json && !users.is_empty() {
                    let _ = writeln!(out, "EXTENSION\tPIN\tLANGUAGE\tNAME");
                }
                for user in users {
                    let line = if json {
                        serde_json::to_string(&user).unwrap_or_default()
                    } else {
                        format!(
                            "{}\t{}\t{}\t{}",
                            user.extension,
                            if user.has_pin { "set" } else { "none" },
                            user.language.as_deref().unwrap_or("-"),
                            user.name
                        )
                    };
                    if writeln!(out, "{line}").is_err() {
                        break;
                    }
                }
            }
            UsersCommand::Import { file } => {
                let csv = std::fs::read(&file).map_err(|e| {
                    hotdesk_store::directory::DirectoryError::Read {
                        path: file.display().to_string(),
                        reason: e.to_string(),
                    }
                })?;
                let report = directory.import_csv(&csv).await?;
                for error in &report.errors {
                    eprintln!("{}:{}: {}", file.display(), error.line, error.message);
                }
                println!(
                    "{}: {} added, {} updated, {} lines refused",
                    file.display(),
                    report.added,
                    report.updated,
                    report.errors.len()
                );
                if !report.errors.is_empty() {
                    return Ok(ExitCode::from(2));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The PIN for `set-pin`: from a terminal, prompted twice without echo; otherwise the first
/// line of standard input. The message of an error never contains the PIN.
fn read_pin(extension: &str) -> Result<secrecy::SecretString, String> {
    use secrecy::ExposeSecret;
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New PIN for {extension}: "))
            .map_err(|e| format!("cannot read the PIN: {e}"))?;
        let first = secrecy::SecretString::from(first);
        let again = rpassword::prompt_password("Again: ")
            .map_err(|e| format!("cannot read the PIN: {e}"))?;
        let again = secrecy::SecretString::from(again);
        if first.expose_secret() != again.expose_secret() {
            return Err("the two PINs differ".into());
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the PIN from standard input: {e}"))?;
        let pin = secrecy::SecretString::from(line.trim_end_matches(['\r', '\n']));
        // Zero the copy the buffer still holds.
        secrecy::zeroize::Zeroize::zeroize(&mut line);
        if pin.expose_secret().is_empty() {
            return Err("no PIN on standard input (one line of 4-10 digits)".into());
        }
        Ok(pin)
    }
}

fn devices_command(
    command: DevicesCommand,
    config: Option<&std::path::Path>,
) -> anyhow::Result<ExitCode> {
    with_directory("hotdesk devices", config, async move |directory, config| {
        let mut out = std::io::stdout().lock();
        match command {
            DevicesCommand::List { json } => {
                let logins = directory.logins().await?;
                // Every desk of the range, plus any login outside it (the range may have
                // changed since).
                let mut devices: Vec<String> =
                    config.devices.clone().map(|d| d.to_string()).collect();
                for login in &logins {
                    if !devices.contains(&login.device) {
                        devices.push(login.device.clone());
                    }
                }
                for device in devices {
                    let login = logins.iter().find(|l| l.device == device);
                    let line = if json {
                        match login {
                            Some(l) => serde_json::to_string(l).unwrap_or_default(),
                            None => json!({"device": device, "user": null}).to_string(),
                        }
                    } else {
                        match login {
                            Some(l) => format!(
                                "{}\t{}\t{}\t{}",
                                l.device,
                                l.user,
                                hotdesk::report::format_time(l.since),
                                l.via.as_str()
                            ),
                            None => format!("{device}\t-"),
                        }
                    };
                    if writeln!(out, "{line}").is_err() {
                        break;
                    }
                }
            }
            DevicesCommand::Logins { json } => {
                for l in directory.logins().await? {
                    let line = if json {
                        serde_json::to_string(&l).unwrap_or_default()
                    } else {
                        format!(
                            "{}\t{}\t{}\t{}",
                            l.device,
                            l.user,
                            hotdesk::report::format_time(l.since),
                            l.via.as_str()
                        )
                    };
                    if writeln!(out, "{line}").is_err() {
                        break;
                    }
                }
            }
            DevicesCommand::Release { device } => {
                // Idempotent: a desk nobody is logged in at is already what was asked for.
                match directory
                    .release(&device, hotdesk_store::directory::Via::Api, None)
                    .await?
                {
                    Some(user) => {
                        let _ = writeln!(out, "released {device} ({user} was logged in)");
                    }
                    None => {
                        let _ = writeln!(out, "{device}: nobody was logged in");
                    }
                }
            }
            DevicesCommand::Unlock { extension } => {
                let line = if directory.unlock(&extension).await? {
                    format!("unlocked {extension}")
                } else {
                    format!("{extension} was not locked")
                };
                let _ = writeln!(out, "{line}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
