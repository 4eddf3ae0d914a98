//! `hotdesk replay`: a whole hot-desk call on virtual time, from a recorded caller.
//!
//! The same sans-IO [`Call`] the server runs answers a made-up INVITE from the desk, and the
//! recording is fed to it as the caller's RTP: a file of audio (any format `detect` reads)
//! becomes 20 ms PCMU packets, a pcap is replayed packet by packet at its capture times (G.711
//! and RFC 4733 as recorded). Time only moves when the next packet or the call's next timer is
//! due, so a minute of call takes milliseconds. The directory is asked exactly as on a live
//! call, and the transcript says what the caller heard, which keys were taken (a PIN's keys
//! masked), the decision, and the reports the directory wrote.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;

use crate::pcap::CapturedRtp;
use hotdesk_core::call::{Call, CallEvent, CallSettings, EndReason, FlowStart, SipOut};
use hotdesk_core::dsp::g711::linear_to_ulaw;
use hotdesk_core::ivr::executor::{self, FlowServices};
use hotdesk_core::ivr::{FlowContext, FlowSpec};
use hotdesk_core::media::DtmfMode;
use hotdesk_core::media::session::MediaSettings;
use hotdesk_core::prompts::loader::PromptCache;
use hotdesk_core::rtp::packet;
use hotdesk_core::sim::{self, CallDrive};
use hotdesk_core::sip::message::{self, Request, SipMessage};
use hotdesk_core::sip::sdp::Codec;

/// Longest a replayed call may run past the end of the recording (the flow's timers end it
/// well before: three silent prompts and goodbye).
const TAIL: Duration = Duration::from_secs(60);

/// What the caller sends.
#[derive(Debug, Clone)]
pub enum CallerMedia {
    /// 8 kHz linear audio (tones and all), sent as PCMU.
    Audio(Vec<i16>),
    /// Captured RTP packets of one stream, sent as captured.
    Rtp(Vec<CapturedRtp>),
}

/// Which call to replay.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// The flow (`login`, `release`, `callback` …).
    pub flow: &'static FlowSpec,
    /// Its desk, named user and `[ivr]` settings.
    pub ctx: FlowContext,
    /// Prompt language.
    pub language: String,
    /// `ivr.max_call_s` of the configuration.
    pub max_call: Duration,
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// Prompts started.
    Prompt {
        /// Virtual milliseconds since the answer.
        at_ms: u64,
        /// Prompt ids, in order.
        ids: Vec<String>,
    },
    /// A key taken (`digit` is `"•"` for a PIN's keys).
    Digit {
        /// Virtual milliseconds since the answer.
        at_ms: u64,
        /// The key, or the mask.
        digit: String,
        /// `rfc4733`, `info` or `inband`.
        source: String,
    },
    /// The flow's decision.
    Decision {
        /// Virtual milliseconds since the answer.
        at_ms: u64,
        /// What was decided.
        decision: String,
    },
    /// The call ended.
    Hangup {
        /// Virtual milliseconds since the answer.
        at_ms: u64,
        /// Who ended it.
        by: String,
    },
}

/// What a replay produced.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// What happened, in order.
    pub entries: Vec<Entry>,
    /// The decision, as in the activation states: `verified`, `failed`, `locked_out`,
    /// `released`, `no_input`, `not_a_desk`, `error`; `none` if the recording ended first.
    pub outcome: String,
    /// Virtual length of the call.
    pub call_ms: u64,
}

impl Transcript {
    /// The keys taken, PIN keys masked.
    pub fn digits(&self) -> String {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Digit { digit, .. } => Some(digit.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The recording has nothing to send.
    #[error("the recording holds no audio or RTP")]
    Empty,
    /// The call could not be set up (prompts missing, …).
    #[error("cannot set up the call: {0}")]
    Setup(String),
}

const CALLER: &str = "127.0.0.1:5062";
const CALLER_RTP: &str = "127.0.0.1:40000";
const SERVER_RTP: &str = "127.0.0.1:30000";

/// Runs the call. The directory is asked exactly as the server asks it, through the same
/// executor.
pub async fn run(
    spec: &ReplaySpec,
    media: &CallerMedia,
    prompts: Arc<PromptCache>,
    directory: &dyn FlowServices,
) -> Result<Transcript, ReplayError> {
    let packets = caller_packets(media);
    let Some(last) = packets.last().map(|(t, _)| *t) else {
        return Err(ReplayError::Empty);
    };
    let t0 = Instant::now();
    let invite = invite(spec, media)?;
    let flow = FlowStart {
        spec: spec.flow,
        ctx: spec.ctx.clone(),
        // A recording has no source address to count.
        source: None,
    };
    let caller: SocketAddr = CALLER.parse().expect("literal");
    let (mut call, ok) = Call::accept(
        t0,
        &invite,
        caller,
        flow,
        settings(&spec.language, spec.max_call),
        prompts,
        &mut rand::rng(),
    )
    .map_err(|e| ReplayError::Setup(e.to_string()))?;
    call.handle_ack(t0, &message::ack_for(&invite, &ok));
    let caller_rtp: SocketAddr = CALLER_RTP.parse().expect("literal");
    let script = sim::rtp_script(caller_rtp, packets);
    let mut drive = CallDrive::new(call, t0, script, last + TAIL);
    while let Some(request) = drive.run() {
        let answer = executor::execute(directory, request).await;
        drive.answer(answer);
    }
    let mut log = Log::new(t0);
    for (at, event) in drive.record.events.drain(..) {
        log.entry(at, event);
    }
    let hung_up_by_us = drive
        .record
        .sip
        .iter()
        .any(|(_, out)| matches!(out, SipOut::Request { .. }));
    log.set_hangup_by_us(hung_up_by_us);
    Ok(log.finish(drive.drive.now()))
}

/// The transcript being written.
struct Log {
    t0: Instant,
    entries: Vec<Entry>,
    outcome: Option<String>,
}

impl Log {
    fn new(t0: Instant) -> Log {
        Log {
            t0,
            entries: Vec::new(),
            outcome: None,
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.t0).as_millis() as u64
    }

    /// Whether hotdesk sent the BYE (else the caller did, or nobody).
    fn set_hangup_by_us(&mut self, by_us: bool) {
        for entry in &mut self.entries {
            if let Entry::Hangup { by, .. } = entry
                && by_us
                && by != "caller"
            {
                *by = "hotdesk".into();
            }
        }
    }

    /// One event of the call into the transcript.
    fn entry(&mut self, now: Instant, event: CallEvent) {
        let at_ms = self.ms(now);
        let entry = match event {
            CallEvent::Prompt(ids) => Entry::Prompt { at_ms, ids },
            CallEvent::Digit {
                digit,
                source,
                after,
            } => Entry::Digit {
                at_ms: after.as_millis() as u64,
                digit: digit.to_string(),
                source: source.as_str().into(),
            },
            CallEvent::SecretDigit { source, after } => Entry::Digit {
                at_ms: after.as_millis() as u64,
                digit: "•".into(),
                source: source.as_str().into(),
            },
            CallEvent::Decision(decision) => {
                self.outcome = Some(decision.name().into());
                Entry::Decision {
                    at_ms,
                    decision: format!("{decision:?}"),
                }
            }
            CallEvent::Ended(reason) => Entry::Hangup {
                at_ms,
                by: match reason {
                    EndReason::RemoteBye => "caller".into(),
                    other => format!("{other:?}"),
                },
            },
        };
        self.entries.push(entry);
    }

    fn finish(self, now: Instant) -> Transcript {
        Transcript {
            call_ms: self.ms(now),
            entries: self.entries,
            outcome: self.outcome.unwrap_or_else(|| "none".into()),
        }
    }
}

fn settings(language: &str, max_call: Duration) -> CallSettings {
    CallSettings {
        // Offline: a recording's gaps are no reason to stop, and nothing is sent anywhere.
        media: MediaSettings {
            dtmf: DtmfMode::Auto,
            rtp_timeout: None,
        },
        media_networks: Arc::from(vec![
            "0.0.0.0/0".parse().expect("literal"),
            "::/0".parse().expect("literal"),
        ]),
        ack_timeout: Duration::from_secs(8),
        max_duration: max_call,
        codecs: vec![Codec::Pcmu, Codec::Pcma],
        language: language.into(),
        rtp: SERVER_RTP.parse().expect("literal"),
        sent_by: "127.0.0.1:5060".into(),
        contact: "sip:hotdesk@127.0.0.1:5060".into(),
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        agent: "hotdesk-replay".into(),
    }
}

/// The caller's datagrams with their offsets from the first.
fn caller_packets(media: &CallerMedia) -> Vec<(Duration, Bytes)> {
    match media {
        CallerMedia::Audio(samples) => {
            let mut out = Vec::new();
            for (n, frame) in samples.chunks(160).enumerate() {
                let payload: Vec<u8> = frame.iter().map(|&s| linear_to_ulaw(s)).collect();
                let p = packet::build(
                    0,
                    n == 0,
                    n as u16,
                    (n * 160) as u32,
                    0x5EED_CA11,
                    Bytes::from(payload),
                );
                if let Ok(bytes) = packet::serialize(&p) {
                    out.push((Duration::from_millis(20 * n as u64), bytes));
                }
            }
            out
        }
        CallerMedia::Rtp(packets) => {
            let Some(first) = packets.first().map(|p| p.time) else {
                return Vec::new();
            };
            packets
                .iter()
                .filter_map(|p| {
                    let bytes = packet::serialize(&p.packet).ok()?;
                    Some((p.time.saturating_sub(first), bytes))
                })
                .collect()
        }
    }
}

/// The payload types a recording uses: its audio codec, and its telephone-event type (a
/// dynamic type carrying 4-byte payloads).
fn recorded_types(media: &CallerMedia) -> (u8, Option<u8>) {
    let CallerMedia::Rtp(packets) = media else {
        return (0, None);
    };
    let audio = packets
        .iter()
        .map(|p| p.packet.header.payload_type)
        .find(|pt| *pt == 0 || *pt == 8)
        .unwrap_or(0);
    let events = packets
        .iter()
        .find(|p| p.packet.header.payload_type >= 96 && p.packet.payload.len() == 4)
        .map(|p| p.packet.header.payload_type);
    (audio, events)
}

/// The INVITE the desk would have sent (or, for a callback, the one its answer stands for),
/// offering what the recording carries.
fn invite(spec: &ReplaySpec, media: &CallerMedia) -> Result<Request, ReplayError> {
    let (audio, events) = recorded_types(media);
    let event_pt = events.unwrap_or(101);
    let codec = if audio == 8 { "PCMA" } else { "PCMU" };
    let (ip, port) = CALLER_RTP.split_once(':').expect("literal");
    let sdp = format!(
        "v=0\r\no=replay 1 1 IN IP4 {ip}\r\ns=replay\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {audio} {event_pt}\r\na=rtpmap:{audio} {codec}/8000\r\n\
         a=rtpmap:{event_pt} telephone-event/8000\r\na=fmtp:{event_pt} 0-15\r\na=ptime:20\r\n"
    );
    let text = format!(
        "INVITE sip:replay@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CALLER};branch=z9hG4bKreplay\r\n\
         From: <sip:{device}@127.0.0.1>;tag=replay\r\n\
         To: <sip:replay@127.0.0.1>\r\n\
         Call-ID: replay-{device}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:{device}@{CALLER}>\r\n\
         Max-Forwards: 70\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {len}\r\n\r\n{sdp}",
        device = spec.ctx.device,
        len = sdp.len(),
    );
    match message::parse(text.as_bytes()) {
        Ok(SipMessage::Request(r)) => Ok(r),
        // Only the device (from the command line) varies.
        _ => Err(ReplayError::Setup(format!(
            "device {:?} is not a SIP user",
            spec.ctx.device
        ))),
    }
}

/// `hotdesk replay` on a file: what to run it on.
#[derive(Debug, Clone)]
pub struct FileReplay {
    /// The call.
    pub spec: ReplaySpec,
    /// The caller's recording: audio in any format `detect` reads, or a pcap.
    pub caller: std::path::PathBuf,
    /// The directory database (`sqlite://…` URL); the replay runs on a copy of it, so lockouts
    /// and logins it causes never reach the real one.
    pub store_url: String,
    /// `HOTDESK_PIN_PEPPER`, if set.
    pub pepper_env: Option<String>,
    /// `[security]` of the configuration.
    pub policy: hotdesk_store::directory::LockoutPolicy,
}

/// What `hotdesk replay` prints.
#[derive(Debug, Clone, Serialize)]
pub struct FileReplayOutput {
    /// The recording.
    pub file: String,
    /// The transcript.
    #[serde(flatten)]
    pub transcript: Transcript,
    /// The reports the call would have sent, as the webhook bodies.
    pub reports: Vec<hotdesk_core::model::Report>,
}

/// Why a file replay could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileReplayError {
    /// The recording could not be read.
    #[error("{path}: {reason}")]
    Caller {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The directory could not be copied or opened.
    #[error(transparent)]
    Directory(#[from] hotdesk_store::directory::DirectoryError),
    /// The directory file could not be copied.
    #[error("copying the directory {path}: {reason}")]
    Copy {
        /// The database file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The call could not run.
    #[error(transparent)]
    Replay(#[from] ReplayError),
    /// The prompts could not be loaded.
    #[error(transparent)]
    Prompts(#[from] hotdesk_core::prompts::PromptError),
}

/// Reads the caller's file: a pcap (by its magic number) or audio.
pub fn read_caller(path: &std::path::Path) -> Result<CallerMedia, FileReplayError> {
    let failed = |reason: String| FileReplayError::Caller {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
    let pcap_magic = [
        [0xD4, 0xC3, 0xB2, 0xA1],
        [0xA1, 0xB2, 0xC3, 0xD4],
        [0x4D, 0x3C, 0xB2, 0xA1],
        [0xA1, 0xB2, 0x3C, 0x4D],
        [0x0A, 0x0D, 0x0D, 0x0A],
    ];
    if bytes.len() >= 4 && pcap_magic.iter().any(|m| bytes[..4] == m[..]) {
        let capture = crate::pcap::read(&bytes).map_err(|e| failed(e.to_string()))?;
        let packets = capture.rtp();
        // One stream: the first packet's SSRC.
        let Some(ssrc) = packets.first().map(|p| p.packet.header.ssrc) else {
            return Err(failed("no RTP in the capture".into()));
        };
        Ok(CallerMedia::Rtp(
            packets
                .into_iter()
                .filter(|p| p.packet.header.ssrc == ssrc)
                .collect(),
        ))
    } else {
        let audio = hotdesk_core::audio::load(path).map_err(|e| failed(e.to_string()))?;
        Ok(CallerMedia::Audio(audio.samples))
    }
}

/// Runs `hotdesk replay`: the call on a private copy of the directory, then the reports it
/// wrote there.
pub async fn run_file(
    request: &FileReplay,
    prompts: Arc<PromptCache>,
) -> Result<FileReplayOutput, FileReplayError> {
    use hotdesk_store::directory::{Directory, Pepper, pepper_path};
    use hotdesk_store::{Store, StoreFlows};
    let media = read_caller(&request.caller)?;
    // Removed when dropped, whichever way this function returns.
    let scratch = tempfile::Builder::new()
        .prefix("hotdesk-replay-")
        .tempdir()
        .map_err(|e| FileReplayError::Copy {
            path: request.store_url.clone(),
            reason: e.to_string(),
        })?;
    let pepper = Pepper::resolve(&request.store_url, request.pepper_env.as_deref())?;
    let copy = scratch.path().join("replay.db");
    if let Some(original) = pepper_path(&request.store_url).map(|p| p.with_extension("")) {
        if !original.exists() {
            return Err(FileReplayError::Copy {
                path: original.display().to_string(),
                reason: "no such database (give --db FILE or --config)".into(),
            });
        }
        for suffix in ["", "-wal", "-shm"] {
            let from = std::path::PathBuf::from(format!("{}{suffix}", original.display()));
            if from.exists() {
                let to = format!("{}{suffix}", copy.display());
                std::fs::copy(&from, &to).map_err(|e| FileReplayError::Copy {
                    path: from.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
        }
    }
    let url = format!("sqlite://{}", copy.display());
    let directory: Arc<dyn Store> = Arc::new(Directory::open(&url, pepper, request.policy).await?);
    let before = directory
        .events_after(None, u32::MAX)
        .await?
        .last()
        .map(|r| r.id.clone());
    let flows = StoreFlows(directory.clone());
    let transcript = run(&request.spec, &media, prompts, &flows).await?;
    let reports = directory.events_after(before.as_deref(), u32::MAX).await?;
    directory.close().await;
    Ok(FileReplayOutput {
        file: request.caller.display().to_string(),
        transcript,
        reports,
    })
}
