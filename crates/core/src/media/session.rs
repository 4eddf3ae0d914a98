//! The media side of one call, sans-IO: RTP in and out, every DTMF path merged into one digit
//! stream, prompts paced onto the wire.
//!
//! In: RTP datagrams (with their source and arrival time), SIP INFO keys, "play these prompts"
//! and "stop". Out: RTP datagrams to send, digits (tagged with the path that carried them) and
//! "prompt finished". Time only ever comes in as a parameter.
//!
//! - Audio is reordered by [`RtpReceiver`], decoded from G.711 and fed to the in-band
//!   [`DtmfDetector`]; detector time is the RTP timestamp, so a lost packet becomes silence of
//!   the right length instead of shifting every later key.
//! - Telephone-events go to the RFC 4733 receiver; both paths and INFO meet in [`DtmfMerger`],
//!   which keeps one key press one digit (dtmf-conformance.md §6, D1/D2).
//! - Outgoing audio is one 20 ms frame per tick on the absolute schedule of [`RtpSender`]:
//!   prompt frames while a prompt plays, G.711 silence otherwise, so the stream never stops
//!   (NAT bindings stay open, the far end's jitter buffer stays primed).
//! - Symmetric RTP: packets go to wherever the caller's audio comes from, once it has come.
//! - Nothing is sent before [`MediaSession::start_sending`] (the call's ACK), to an address
//!   outside the call's [`MediaScope`], or to a caller silent for longer than
//!   [`MediaSettings::rtp_timeout`] (RTP amplification towards a third party: an outside test
//!   drew 600× an INVITE's size in RTP from one that was never ACKed).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::Rng;

use crate::dsp::dtmf::{DtmfDetector, DtmfEvent, DtmfParams, SAMPLE_RATE};
use crate::dsp::g711::Law;
use crate::media::DtmfMode;
use crate::media::dtmf::{DtmfMerger, MergeConfig, MergedDigit};
use crate::prompts::loader::{Player, PromptCache};
use crate::prompts::{PromptError, Sequence};
use crate::rtp::packet;
use crate::rtp::session::{ReceiverConfig, RtpReceiver, RtpSender, SenderConfig};
use crate::rtp::source::{MediaScope, SourceFilter};
use crate::rtp::telephone_event::{ReceiverOutput, TelephoneEventReceiver};
use crate::sip::sdp::{Codec, Negotiated};

/// Longest loss concealed by repeating the last frame (G.711 Appendix I style, 40 ms): a key
/// must not split because one or two packets of its tone were lost.
const MAX_CONCEAL_SAMPLES: u32 = 320;
/// Longest gap in the caller's audio (by RTP timestamp) filled with silence for the detector;
/// a longer one is a new talkspurt or a restarted stream, and the detector just carries on.
const MAX_FILL_SAMPLES: u32 = SAMPLE_RATE;

/// How a call's media behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaSettings {
    /// Which DTMF paths to listen to.
    pub dtmf: DtmfMode,
    /// Stop sending to a caller that has sent nothing for this long; `None`: never.
    pub rtp_timeout: Option<Duration>,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            dtmf: DtmfMode::Auto,
            rtp_timeout: Some(Duration::from_secs(10)),
        }
    }
}

/// What the media side reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key press, once, whichever paths carried it.
    Digit(MergedDigit),
    /// The prompt sequence played to its end (not sent after [`MediaSession::stop`]).
    PromptFinished,
}

/// Counters for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    /// RTP packets sent.
    pub sent: u64,
    /// Datagrams received that parsed as RTP.
    pub received: u64,
    /// Datagrams that did not parse, or carried a payload type not negotiated.
    pub rejected: u64,
    /// RTP from an address other than the caller's (see [`SourceFilter`]), dropped.
    pub foreign: u64,
    /// Audio samples run through the in-band detector (the detector's load).
    pub detected_samples: u64,
    /// Frames not sent: no media address allowed yet, or the caller silent too long.
    pub withheld: u64,
}

/// One call's media.
#[derive(Debug)]
pub struct MediaSession {
    law: Law,
    codec_pt: u8,
    event_pt: Option<u8>,
    mode: DtmfMode,
    rtp_timeout: Option<Duration>,
    language: String,
    cache: Arc<PromptCache>,
    /// Where RTP goes: the SDP's address if the scope allows it, else the caller's RTP source
    /// once learnt; `None` until then.
    remote: Option<SocketAddr>,
    /// When the session was made.
    created: Instant,
    /// When sending started (the ACK); `None` before.
    sending_since: Option<Instant>,
    /// When the caller's last accepted packet came.
    last_heard: Option<Instant>,
    /// Which source the caller's RTP is taken from.
    source: SourceFilter,
    sender: RtpSender,
    receiver: RtpReceiver,
    events: Option<TelephoneEventReceiver>,
    detector: DtmfDetector,
    /// Arrival time and RTP timestamp of the first audio packet: detector sample 0.
    audio_origin: Option<(Instant, u32)>,
    /// The caller's last decoded frame, for loss concealment.
    last_frame: Vec<i16>,
    merger: DtmfMerger,
    player: Option<Player>,
    silence: Bytes,
    out: VecDeque<(SocketAddr, Bytes, Instant)>,
    reports: VecDeque<MediaEvent>,
    stats: MediaStats,
}

/// Why a media session could not start or play.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// A prompt id is not in the catalog.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The telephone-event clock rate is not one RFC 4733 receivers support.
    #[error("telephone-event: {0}")]
    TelephoneEvent(String),
}

impl MediaSession {
    /// Media for a negotiated call with a peer in `scope`. Nothing is sent before
    /// [`MediaSession::start_sending`].
    #[allow(clippy::too_many_arguments)]
    pub fn new<R: Rng + ?Sized>(
        negotiated: &Negotiated,
        settings: &MediaSettings,
        scope: MediaScope,
        language: &str,
        cache: Arc<PromptCache>,
        now: Instant,
        rng: &mut R,
    ) -> Result<MediaSession, MediaError> {
        let law = match negotiated.codec {
            Codec::Pcmu => Law::Ulaw,
            Codec::Pcma => Law::Alaw,
        };
        let mode = settings.dtmf;
        let events = match negotiated.telephone_event {
            Some(te) if mode != DtmfMode::Inband && mode != DtmfMode::Info => Some(
                TelephoneEventReceiver::new(te.clock_rate)
                    .map_err(|e| MediaError::TelephoneEvent(e.to_string()))?,
            ),
            _ => None,
        };
        let sender = RtpSender::new(
            SenderConfig {
                payload_type: negotiated.codec_payload_type,
                clock_rate: 8000,
                ptime: Duration::from_millis(u64::from(negotiated.ptime)),
            },
            now,
            rng,
        );
        let mut merger = DtmfMerger::new(MergeConfig::default());
        merger.set_telephone_event(now, events.is_some());
        let mut silence = Vec::with_capacity(160);
        law.encode_into(&[0i16; 160], &mut silence);
        let source = SourceFilter::new(negotiated.remote, scope);
        Ok(MediaSession {
            law,
            codec_pt: negotiated.codec_payload_type,
            event_pt: negotiated.telephone_event.map(|t| t.payload_type),
            mode,
            rtp_timeout: settings.rtp_timeout,
            language: language.to_owned(),
            cache,
            remote: source.signalled(),
            created: now,
            sending_since: None,
            last_heard: None,
            source,
            sender,
            receiver: RtpReceiver::new(ReceiverConfig::default()),
            events,
            detector: DtmfDetector::new(DtmfParams::default()).without_diagnostics(),
            audio_origin: None,
            last_frame: Vec::new(),
            merger,
            player: None,
            silence: Bytes::from(silence),
            out: VecDeque::new(),
            reports: VecDeque::new(),
            stats: MediaStats::default(),
        })
    }

    /// Where RTP goes now (`None`: nowhere yet).
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// Starts the outgoing stream at `now` (the dialog is confirmed). Idempotent.
    pub fn start_sending(&mut self, now: Instant) {
        if self.sending_since.is_none() {
            self.sending_since = Some(now);
            self.sender.delay_start(now);
        }
    }

    /// Whether `remote` may be the caller's media address (a re-INVITE's offer).
    pub fn allows_remote(&self, remote: SocketAddr) -> bool {
        self.source.allows(remote)
    }

    /// A re-INVITE moved the caller's media (hold/resume, new address). An address outside
    /// the call's scope is not taken (check with [`MediaSession::allows_remote`] first).
    pub fn set_remote(&mut self, remote: SocketAddr) {
        if self.source.allows(remote) {
            self.remote = Some(remote);
            self.source.resignal(remote);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> MediaStats {
        MediaStats {
            detected_samples: self.detector.position(),
            ..self.stats
        }
    }

    /// Starts a prompt sequence from its beginning, replacing whatever played.
    pub fn play(&mut self, ids: &[String]) -> Result<(), MediaError> {
        let mut sequence = Sequence::default();
        for id in ids {
            sequence.push(id);
        }
        self.player = Some(Player::new(
            &self.cache,
            &sequence,
            &self.language,
            self.law,
        )?);
        Ok(())
    }

    /// Stops the prompt at the next frame (barge-in).
    pub fn stop(&mut self) {
        self.player = None;
    }

    /// A key from SIP INFO.
    pub fn handle_info(&mut self, now: Instant, digit: char, duration: Option<Duration>) {
        if matches!(self.mode, DtmfMode::Auto | DtmfMode::Info) {
            self.merger.handle_info(now, digit, duration);
            self.drain_digits();
        }
    }

    /// A datagram arrived on our RTP port.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let Ok(pkt) = packet::parse(datagram) else {
            self.stats.rejected += 1;
            return;
        };
        let pt = pkt.header.payload_type;
        if pt != self.codec_pt && Some(pt) != self.event_pt {
            self.stats.rejected += 1;
            return;
        }
        if !self.source.accept(source, pkt.header.sequence_number) {
            self.stats.foreign += 1;
            return;
        }
        self.stats.received += 1;
        self.last_heard = Some(now);
        // Symmetric RTP (RFC 4961): answer where the caller's media really comes from.
        self.remote = Some(source);
        if Some(pt) == self.event_pt {
            if let Some(events) = &mut self.events
                && events.handle_packet(now, &pkt).is_ok()
            {
                self.drain_events(now);
            }
        } else {
            self.receiver.handle_packet(now, pkt);
            self.drain_audio(now);
        }
        self.drain_digits();
    }

    /// When [`MediaSession::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.sending_since.and(self.sender.poll_timeout()),
            self.receiver.poll_timeout(),
            self.events.as_ref().and_then(|e| e.poll_timeout()),
            self.merger.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passed: send due frames, flush timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.sending_since.is_some() {
            self.send_due(now);
        }
        self.receiver.handle_timeout(now);
        self.drain_audio(now);
        if let Some(events) = &mut self.events {
            events.handle_timeout(now);
        }
        self.drain_events(now);
        self.merger.handle_timeout(now);
        self.drain_digits();
    }

    /// Produces the frames due by `now` and queues those that may go out.
    fn send_due(&mut self, now: Instant) {
        let mut finished = false;
        let player = &mut self.player;
        let silence = &self.silence;
        self.sender.handle_timeout(now, |_| {
            let frame = player.as_mut().and_then(Player::next_frame);
            if frame.is_none() && player.take().is_some() {
                // The sequence ran out (stop() drops the player, so this is a real end).
                finished = true;
            }
            Some(frame.unwrap_or_else(|| silence.clone()))
        });
        if finished {
            self.reports.push_back(MediaEvent::PromptFinished);
        }
        let to = self.remote.filter(|_| !self.caller_silent(now));
        while let Some((due, pkt)) = self.sender.poll_transmit() {
            match (to, packet::serialize(&pkt)) {
                (Some(to), Ok(bytes)) => {
                    self.stats.sent += 1;
                    self.out.push_back((to, bytes, due));
                }
                _ => self.stats.withheld += 1,
            }
        }
    }

    /// Whether the caller has sent nothing for longer than the RTP timeout (counting from
    /// when sending started, if it never sent anything).
    fn caller_silent(&self, now: Instant) -> bool {
        let (Some(timeout), Some(since)) = (self.rtp_timeout, self.sending_since) else {
            return false;
        };
        let heard = self.last_heard.map_or(since, |t| t.max(since));
        now.saturating_duration_since(heard) > timeout
    }

    /// Next datagram to send, with the time it was due on the sender's schedule.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes, Instant)> {
        self.out.pop_front()
    }

    /// Next report.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.reports.pop_front()
    }

    fn drain_audio(&mut self, now: Instant) {
        while let Some(pkt) = self.receiver.poll_packet() {
            if pkt.header.payload_type != self.codec_pt {
                continue;
            }
            let ts = pkt.header.timestamp;
            let (_, base_ts) = *self.audio_origin.get_or_insert((now, ts));
            let expected = base_ts.wrapping_add(self.detector.position() as u32);
            let ahead = ts.wrapping_sub(expected);
            if ahead > 0 && ahead <= MAX_CONCEAL_SAMPLES && !self.last_frame.is_empty() {
                // A short loss: repeat the last frame, as a G.711 receiver's concealment would.
                let fill: Vec<i16> = self
                    .last_frame
                    .iter()
                    .copied()
                    .cycle()
                    .take(ahead as usize)
                    .collect();
                self.detector.push(&fill);
            } else if ahead > 0 && ahead <= MAX_FILL_SAMPLES {
                // A longer one: silence of the right length keeps detector time = RTP time.
                self.detector.push(&vec![0i16; ahead as usize]);
            } else if ahead > u32::MAX / 2 {
                // Older than what was already played into the detector: a late duplicate.
                continue;
            }
            let mut samples = Vec::with_capacity(pkt.payload.len());
            self.law.decode_into(&pkt.payload, &mut samples);
            self.detector.push(&samples);
            self.last_frame = samples;
        }
        self.drain_detector(now);
    }

    fn sample_time(&self, sample: u64) -> Instant {
        // Detector events only follow audio, so the origin is set; the creation time is a
        // harmless stand-in that keeps the clock out of this sans-IO object.
        let origin = self.audio_origin.map_or(self.created, |(t, _)| t);
        origin + Duration::from_nanos(sample * 1_000_000_000 / u64::from(SAMPLE_RATE))
    }

    fn drain_detector(&mut self, now: Instant) {
        let inband = matches!(self.mode, DtmfMode::Auto | DtmfMode::Inband);
        while let Some(event) = self.detector.poll_event() {
            if !inband {
                continue;
            }
            match event {
                DtmfEvent::KeyDown { digit, start, .. } => {
                    let onset = self.sample_time(start);
                    self.merger.handle_inband_down(now, digit, onset);
                }
                DtmfEvent::KeyUp { digit, end, .. } => {
                    let end = self.sample_time(end);
                    self.merger.handle_inband_up(now, digit, end);
                }
            }
        }
    }

    fn drain_events(&mut self, now: Instant) {
        let Some(events) = &mut self.events else {
            return;
        };
        while let Some(output) = events.poll_output() {
            match output {
                ReceiverOutput::KeyDown { digit, start, .. } => {
                    self.merger.handle_rfc4733_down(now, digit, start);
                }
                ReceiverOutput::KeyUp(d) => {
                    self.merger
                        .handle_rfc4733_up(now, d.digit, d.start + d.duration);
                }
            }
        }
    }

    fn drain_digits(&mut self) {
        while let Some(digit) = self.merger.poll_digit() {
            self.reports.push_back(MediaEvent::Digit(digit));
        }
    }
}
