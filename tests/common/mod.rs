//! Helpers shared by integration tests (each test crate uses what it needs).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use hotdesk_core::dsp::dtmf::DtmfEvent;
use hotdesk_core::media::{DtmfMerger, MergeConfig, MergedDigit};

pub mod http;
pub mod peers;

/// The `*97` DTMF test flow on desk 5401 (it asks the directory nothing).
pub fn dtmf_test_flow() -> hotdesk_core::call::FlowStart {
    hotdesk_core::call::FlowStart {
        spec: &hotdesk_core::ivr::dtmf_test::FLOW,
        ctx: hotdesk_core::ivr::FlowContext {
            device: "5401".into(),
            is_desk: true,
            user: None,
            settings: hotdesk_core::ivr::FlowSettings::default(),
        },
        source: None,
    }
}

type MergeAction = Box<dyn Fn(&mut DtmfMerger)>;

/// Key edges from several paths replayed into a [`DtmfMerger`] in time order, the way a live
/// call would feed it.
#[derive(Default)]
pub struct MergeTimeline {
    /// (when, order among simultaneous edges, what to do).
    items: Vec<(Instant, u8, MergeAction)>,
}

impl MergeTimeline {
    /// An RFC 4733 event for `digit` sounding from `start` to `end`, first heard at `down_at`.
    pub fn rfc4733(&mut self, digit: char, down_at: Instant, start: Instant, end: Instant) {
        self.items.push((
            down_at,
            0,
            Box::new(move |m| m.handle_rfc4733_down(down_at, digit, start)),
        ));
        self.items.push((
            end,
            1,
            Box::new(move |m| m.handle_rfc4733_up(end, digit, end)),
        ));
    }

    /// In-band detector events; `sample` maps a sample index to time.
    pub fn inband(
        &mut self,
        events: impl IntoIterator<Item = DtmfEvent>,
        sample: impl Fn(u64) -> Instant,
    ) {
        for e in events {
            match e {
                DtmfEvent::KeyDown {
                    digit, start, at, ..
                } => {
                    let (now, onset) = (sample(at), sample(start));
                    self.items.push((
                        now,
                        2,
                        Box::new(move |m| m.handle_inband_down(now, digit, onset)),
                    ));
                }
                DtmfEvent::KeyUp { digit, end, .. } => {
                    let now = sample(end);
                    self.items.push((
                        now,
                        3,
                        Box::new(move |m| m.handle_inband_up(now, digit, now)),
                    ));
                }
            }
        }
    }

    /// Runs everything through a default merger, then lets its timers run out at `until`.
    pub fn run(mut self, until: Instant) -> Vec<MergedDigit> {
        self.items.sort_by_key(|(t, o, _)| (*t, *o));
        let mut m = DtmfMerger::new(MergeConfig::default());
        let mut out = Vec::new();
        for (now, _, action) in self.items {
            while let Some(t) = m.poll_timeout().filter(|t| *t <= now) {
                m.handle_timeout(t);
            }
            action(&mut m);
            out.extend(std::iter::from_fn(|| m.poll_digit()));
        }
        m.handle_timeout(until);
        out.extend(std::iter::from_fn(|| m.poll_digit()));
        out
    }
}

/// Sample `s` of an 8 kHz stream starting at `t0`.
pub fn sample_time(t0: Instant, s: u64) -> Instant {
    t0 + Duration::from_nanos(s * 125_000)
}
