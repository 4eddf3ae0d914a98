//! One digit stream from three DTMF paths: RFC 4733 telephone-events, SIP INFO
//! (`application/dtmf-relay`, `application/dtmf`) and the in-band detector on the decoded audio.
//!
//! A phone or gateway often sends a key press on more than one path: RFC 4733 events while the
//! tone also leaks into the audio (`dtmf-conformance.md` §6 **D1**), or the first 20-60 ms of tone
//! in the audio before the gateway switches to events (**D2**, the run-in of rtpengine #1123 and
//! FreeSWITCH #2560). Every key press must still be exactly one digit, tagged with the path that
//! carried it. The rules:
//!
//! 1. Out-of-band (RFC 4733 or INFO) digits are authoritative and reported as soon as they start.
//! 2. An in-band key whose onset falls inside an out-of-band press of the same key, widened by
//!    `run_in` before its start and `guard` after its end (or any time while it is still down),
//!    is the same press heard twice: dropped.
//! 3. When telephone-event is negotiated, an in-band key that matches nothing yet is *held* for
//!    `hold`, because its RFC 4733 twin may still be on its way (D2: the tone reaches the
//!    detector before the first event packet). An out-of-band start of the same key within
//!    `run_in` of its onset withdraws it; otherwise it is released with its own onset time.
//!    Without telephone-event there is nothing to wait for, so in-band keys are released at once
//!    (**D3**).
//! 4. An out-of-band start that matches an in-band key already released (rule 3 without
//!    telephone-event, or a very late event) is dropped, and INFO that duplicates an RFC 4733
//!    press (phones that send both) likewise: each press counts once, first path wins.
//!
//! All times are instants on the call's clock: the caller maps the detector's sample indices and
//! the packets' arrival to it. Sans-IO: `poll_timeout`/`handle_timeout` release held keys.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Which path carried a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigitSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// A SIP INFO request.
    Info,
    /// The in-band tone detector.
    Inband,
}

impl DigitSource {
    /// The tag used in logs and the DTMF test code (`rfc4733`, `info`, `inband`).
    pub fn as_str(&self) -> &'static str {
        match self {
            DigitSource::Rfc4733 => "rfc4733",
            DigitSource::Info => "info",
            DigitSource::Inband => "inband",
        }
    }

    fn out_of_band(&self) -> bool {
        !matches!(self, DigitSource::Inband)
    }
}

/// One key press in the merged stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MergedDigit {
    /// The key.
    pub digit: char,
    /// The path that carried it.
    pub source: DigitSource,
    /// When the key went down.
    #[serde(skip)]
    pub at: Instant,
}

/// Merge tuning (the windows of `dtmf-conformance.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeConfig {
    /// Whether telephone-event was negotiated (in-band keys are held only then).
    pub telephone_event: bool,
    /// In-band tone allowed before an out-of-band start of the same press (D2: up to 60 ms, plus
    /// one 20 ms frame for the difference between the two clocks).
    pub run_in: Duration,
    /// In-band onsets this long after an out-of-band press ended still belong to it (D1: tails).
    pub guard: Duration,
    /// How long an unmatched in-band key waits for its RFC 4733 twin.
    pub hold: Duration,
    /// INFO travels on the signalling path and may trail the tone by this much.
    pub info_slack: Duration,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            telephone_event: true,
            run_in: Duration::from_millis(80),
            guard: Duration::from_millis(100),
            hold: Duration::from_millis(120),
            info_slack: Duration::from_millis(250),
        }
    }
}

/// A press already accounted for (reported, or dropped as a twin), kept for matching.
#[derive(Debug, Clone, Copy)]
struct Press {
    digit: char,
    source: DigitSource,
    start: Instant,
    /// `None` while the key is down.
    end: Option<Instant>,
    /// The in-band tone of this press (dropped as its twin) is still sounding: the press lasts
    /// until it stops.
    twin_open: bool,
    /// End of that in-band tone, when it outlasted the press.
    tail: Option<Instant>,
}

/// An in-band key waiting for its possible RFC 4733 twin.
#[derive(Debug, Clone, Copy)]
struct Held {
    digit: char,
    onset: Instant,
    /// Key-up, if it came while the key was held.
    end: Option<Instant>,
    release_at: Instant,
}

/// Longest an in-band twin may outlast its out-of-band press.
const TWIN_MAX: Duration = Duration::from_secs(1);

/// How long finished presses are kept for matching.
const KEEP: Duration = Duration::from_secs(2);

/// The merge of RFC 4733, INFO and in-band digits for one call.
#[derive(Debug)]
pub struct DtmfMerger {
    config: MergeConfig,
    presses: VecDeque<Press>,
    held: VecDeque<Held>,
    out: VecDeque<MergedDigit>,
}

impl DtmfMerger {
    /// A merger with the given tuning.
    pub fn new(config: MergeConfig) -> Self {
        DtmfMerger {
            config,
            presses: VecDeque::new(),
            held: VecDeque::new(),
            out: VecDeque::new(),
        }
    }

    /// The tuning in force.
    pub fn config(&self) -> &MergeConfig {
        &self.config
    }

    /// A re-INVITE changed whether telephone-event is negotiated. Held keys are released when it
    /// goes away, since no event can withdraw them any more.
    pub fn set_telephone_event(&mut self, now: Instant, negotiated: bool) {
        self.config.telephone_event = negotiated;
        if !negotiated {
            while let Some(h) = self.held.pop_front() {
                self.release(h);
            }
        }
        self.prune(now);
    }

    /// An RFC 4733 key went down at `start` (estimated onset, see
    /// [`crate::rtp::EventDigit::start`]).
    pub fn handle_rfc4733_down(&mut self, now: Instant, digit: char, start: Instant) {
        self.out_of_band_down(now, digit, DigitSource::Rfc4733, start, None);
    }

    /// The RFC 4733 key went up at `end`.
    pub fn handle_rfc4733_up(&mut self, now: Instant, digit: char, end: Instant) {
        if let Some(p) = self
            .presses
            .iter_mut()
            .rev()
            .find(|p| p.source == DigitSource::Rfc4733 && p.digit == digit && p.end.is_none())
        {
            p.end = Some(end.max(p.start));
        }
        self.prune(now);
    }

    /// A SIP INFO digit arrived at `now`, with its `Duration` if the body gave one.
    pub fn handle_info(&mut self, now: Instant, digit: char, duration: Option<Duration>) {
        // INFO has no onset of its own: it left the phone when the key went down, and travelled
        // the signalling path; `info_slack` widens the window backwards for that.
        let start = now.checked_sub(self.config.info_slack).unwrap_or(now);
        let end = now + duration.unwrap_or(Duration::from_millis(100));
        self.out_of_band_down(now, digit, DigitSource::Info, start, Some(end));
    }

    fn out_of_band_down(
        &mut self,
        now: Instant,
        digit: char,
        source: DigitSource,
        start: Instant,
        end: Option<Instant>,
    ) {
        self.handle_timeout(now);
        let digit = digit.to_ascii_uppercase();
        // Rule 3: a held in-band key of this press is withdrawn; earlier, different held keys are
        // released first so the stream stays in time order.
        let lo = start.checked_sub(self.config.run_in).unwrap_or(start);
        if let Some(i) = self
            .held
            .iter()
            .position(|h| h.digit == digit && h.onset >= lo)
        {
            // The tone was this press heard in the audio: forget it, it was never reported.
            self.held.remove(i);
        }
        while self.held.front().is_some_and(|h| h.onset < start) {
            if let Some(h) = self.held.pop_front() {
                self.release(h);
            }
        }
        // Rule 4: a press another path already reported. An RFC 4733 start is a point; an INFO
        // start is only known to lie within `info_slack` before its arrival.
        let duplicate = self.presses.iter().any(|p| {
            p.digit == digit && p.source != source && self.overlaps(p, start, now.max(start))
        });
        let press = Press {
            digit,
            source,
            start,
            end,
            twin_open: false,
            tail: None,
        };
        if !duplicate {
            self.out.push_back(MergedDigit {
                digit,
                source,
                at: if source == DigitSource::Info {
                    now
                } else {
                    start
                },
            });
        }
        self.presses.push_back(press);
        self.prune(now);
    }

    /// Whether `t` falls within press `p` widened by `run_in` before and `guard` after.
    fn covers(&self, p: &Press, t: Instant) -> bool {
        self.overlaps(p, t, t)
    }

    /// Whether `[lo, hi]` meets press `p` widened by `run_in` before and `guard` after.
    fn overlaps(&self, p: &Press, lo: Instant, hi: Instant) -> bool {
        let p_lo = p.start.checked_sub(self.config.run_in).unwrap_or(p.start);
        let p_hi = match (p.end, p.twin_open) {
            (Some(end), false) => Some(end.max(p.tail.unwrap_or(end)) + self.config.guard),
            // A twin whose key-up never comes must not hold the key forever.
            (Some(end), true) => Some(end + self.config.guard + TWIN_MAX),
            (None, _) => None,
        };
        hi >= p_lo && p_hi.is_none_or(|p_hi| lo <= p_hi)
    }

    /// The in-band detector reported a key-down with tone onset `onset`.
    pub fn handle_inband_down(&mut self, now: Instant, digit: char, onset: Instant) {
        self.handle_timeout(now);
        let digit = digit.to_ascii_uppercase();
        // Rule 2: inside (or just around) an out-of-band press of the same key. The tone may
        // outlast the event and come back after a short break (the real Asterisk captures leak
        // 100 ms of tone starting 40-70 ms after the event's end): the press lasts while its twin
        // sounds, so the fragments after the break are the same press too.
        let twin = self
            .presses
            .iter()
            .rposition(|p| p.digit == digit && p.source.out_of_band() && self.covers(p, onset));
        if let Some(i) = twin {
            self.presses[i].twin_open = true;
            return;
        }
        if self.config.telephone_event {
            self.held.push_back(Held {
                digit,
                onset,
                end: None,
                release_at: now + self.config.hold,
            });
        } else {
            self.release(Held {
                digit,
                onset,
                end: None,
                release_at: now,
            });
        }
    }

    /// The in-band key went up at `end` (closes the press for rule 4's window).
    pub fn handle_inband_up(&mut self, now: Instant, digit: char, end: Instant) {
        let digit = digit.to_ascii_uppercase();
        if let Some(p) = self
            .presses
            .iter_mut()
            .rev()
            .find(|p| p.digit == digit && p.twin_open)
        {
            p.twin_open = false;
            p.tail = Some(end);
        } else if let Some(h) = self
            .held
            .iter_mut()
            .rev()
            .find(|h| h.digit == digit && h.end.is_none())
        {
            h.end = Some(end.max(h.onset));
        } else if let Some(p) = self
            .presses
            .iter_mut()
            .rev()
            .find(|p| p.source == DigitSource::Inband && p.digit == digit && p.end.is_none())
        {
            p.end = Some(end.max(p.start));
        }
        self.prune(now);
    }

    fn release(&mut self, h: Held) {
        self.presses.push_back(Press {
            digit: h.digit,
            source: DigitSource::Inband,
            start: h.onset,
            end: h.end,
            twin_open: false,
            tail: None,
        });
        self.out.push_back(MergedDigit {
            digit: h.digit,
            source: DigitSource::Inband,
            at: h.onset,
        });
    }

    /// Forgets presses that ended long ago (an open one is closed after `KEEP`, since a lost
    /// key-up must not suppress that key for the rest of the call).
    fn prune(&mut self, now: Instant) {
        self.presses.retain(|p| match p.end {
            Some(end) => end + KEEP > now,
            None => p.start + KEEP * 5 > now,
        });
    }

    /// When the oldest held in-band key is due for release.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.held.iter().map(|h| h.release_at).min()
    }

    /// Releases held in-band keys whose wait is over.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(i) = self.held.iter().position(|h| h.release_at <= now) {
            // Keys are released in onset order: anything held with an earlier onset goes first.
            let onset = self.held[i].onset;
            while let Some(j) = self.held.iter().position(|h| h.onset <= onset) {
                if let Some(h) = self.held.remove(j) {
                    self.release(h);
                }
            }
        }
    }

    /// The next digit of the merged stream.
    pub fn poll_digit(&mut self) -> Option<MergedDigit> {
        self.out.pop_front()
    }
}
