//! Streaming in-band DTMF receiver (ITU-T Q.23 signals, Q.24 receiver limits), built for
//! field audio: broadband noise, clicks, level sags, packet loss and codecs, as well as the
//! standards' clean battery (`docs/dtmf.md` has both batteries and the figures).
//!
//! Sans-IO: [`DtmfDetector::push`] takes 8 kHz samples in chunks of any size and
//! [`DtmfDetector::poll_event`] hands out key-down / key-up events stamped with sample indices.
//! Results never depend on how the stream is chunked: every decision is taken on a fixed
//! 40-sample hop grid counted from the first sample, and every running statistic is updated
//! per hop.
//!
//! Why three stages (and not spandsp's single 102-sample block test):
//!
//! 1. **Hop DFT.** The eight tones' DFT over each 5 ms hop, computed as a matrix product (eight
//!    tones = eight vector lanes; AVX2 with FMA where the CPU has it, no loop-carried chain as a
//!    Goertzel recursion has), re-referenced to absolute time so that a 25 ms window is just
//!    the sum of five hops, plus the hop's energy. Near-silent hops skip the DFT. This is the
//!    only per-sample work.
//! 2. **Candidate** (per hop). The strongest row and column of the 25 ms window must clear the
//!    level floor, stand out of the other tones of their group, be present in every hop, and
//!    hold at least half the configured share of the window's energy as measured in stage 3.
//!    Silence, most speech and noise stop here.
//! 3. **Validation** (rare). A short rectangular block cannot tell ±1.5 % (accept) from ±3.5 %
//!    (reject) at 697 Hz, so the candidate's two frequencies are *measured*: the phase advance
//!    between Hann-windowed 10 ms segments 5 ms apart gives the offset, and a Hann-windowed DFT
//!    at the measured frequency gives each tone's level free of the other tone's leakage.
//!    Frequency, level and twist are checked against [`DtmfParams`], then three talk-off tests:
//!    - **Energy share**, the strong guard against speech and music: the pair must hold
//!      `min_energy_share` of the window's energy. Two things keep it from failing on field
//!      audio for the wrong reason. *Clicks*: hops holding more than three times the window's
//!      median hop energy are left out of the share (the pair must still show under them).
//!      *Broadband noise*: a noise-floor tracker keeps the least window energy of each 100 ms
//!      block over the last two seconds; when the background is steady (its least within 0.6
//!      of the blocks' median least, as line noise is and speech and music, with their pauses
//!      and decays, are not), that floor, corrected for the minimum's bias, is taken from the
//!      window's energy before the share is computed. A pair that passes only thanks to the
//!      floor must stand out of its groups by 8 dB instead of 6.
//!    - **Relative peak**: each tone 6 dB above every other nominal frequency of its group,
//!      measured with the same Hann window (a key's own leakage there is under -17 dB even at
//!      ±1.5 %). Noise and clicks raise every bin alike, so this is an in-band test.
//!    - **Harmonics**: a pair in a small-integer frequency ratio must meet the must-accept
//!      tolerance rather than the midpoint, and a tone whose octave is within 10 dB of it is
//!      not a keypad's.
//!
//! Timing is measured, not counted in blocks: once validated, each hop is fitted by least squares
//! with the two measured sines, and the fitted amplitude relative to the press's level tells how
//! much of that hop the tone covered. That gives the onset and the end to a few samples, the tone
//! duration (reported only past `min_tone_ms`, so 23 ms bursts are rejected and 40 ms ones always
//! accepted), and the length of any interruption (bridged up to `max_interruption_ms`, 22 ms:
//! a 20 ms hole from a lost packet is bridged, a 25 ms gap of fast dialling separates). The
//! level a press is judged against *follows* the press (each covered hop pulls it three
//! quarters of the way to the fitted level, never under -16 dB of the validated one), so a
//! level sag of up to 12 dB over 50 ms never cuts a press in two, while a gap still reads as a
//! loss of the pair. A hop holding far more energy than the pair accounts for (a click) where
//! the pair still shows keeps the press going without counting as a gap, so a 45 ms tone with a
//! 15 ms click is a 45 ms tone.
//!
//! Refused candidates carry a [`RefusalReason`] (trace lines, and `detect --plot`).

use std::collections::VecDeque;
use std::f64::consts::TAU;
use std::sync::LazyLock;

use num_complex::{Complex32, Complex64};
use wide::f32x8;

use crate::dsp::g711::ALAW_TMAX_DBM0;

/// The detector's sample rate, Hz. Other rates are resampled before they reach it.
pub const SAMPLE_RATE: u32 = 8000;
/// Row (low-group) frequencies, Hz.
pub const ROW_HZ: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
/// Column (high-group) frequencies, Hz.
pub const COL_HZ: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// Samples per hop (5 ms): the time grid of every decision.
const HOP: usize = 40;
/// Hops after which every tone's absolute-time reference repeats (see `hop_phase`).
const PHASE_PERIOD: usize = 200;
/// Hops in a validation window (25 ms): fits inside any 40 ms tone at every alignment.
const WIN_HOPS: usize = 5;
const WIN: usize = HOP * WIN_HOPS;
/// Hann segment for the frequency estimate (10 ms), stepped by one hop.
const SEG: usize = 80;
const SEGMENTS: usize = (WIN - SEG) / HOP + 1;
/// Sample history, a whole number of hops: the window plus the onset search, and spare.
const RING: usize = 26 * HOP;
/// How far before a validated window the onset search may look, in hops.
const ONSET_SEARCH_HOPS: usize = 8;
/// A hop whose fitted amplitude reaches this share of the tone's is "fully covered".
const FULL_COVER: f32 = 0.7;
/// The level a press is followed to may sag this far under the validated one (-16 dB).
const SAG_FLOOR: f32 = 0.16;
/// Every hop of a validating window must hold at least this much of the pair.
const WINDOW_COVER: f32 = 0.5;
/// Below this share a hop counts as holding no tone at all.
const NO_COVER: f32 = 0.1;
/// Measurement allowance added to the configured twist limits: the level estimate carries
/// ~0.2 dB of error from noise and quantisation, and a key at exactly the limit must pass.
const TWIST_ALLOWANCE_DB: f32 = 0.5;
/// Voices and instruments make tone pairs in exact small-integer frequency ratios (harmonics
/// 3 and 5 of a 300 Hz voice look like `9` or `D`; a note and its octave like `C`). A pair
/// within this relative distance of such a ratio must meet the must-accept tolerance (plus
/// [`ESTIMATE_ALLOWANCE`]) instead of the midpoint between accept and reject. A key within
/// ±1.5 % always passes; a voice has to land within it on both tones at once.
const HARMONIC_RATIO_TOLERANCE: f64 = 0.005;
/// Largest denominator of the ratios checked: harmonics up to the 6th of the low tone.
const HARMONIC_MAX_Q: u32 = 6;
/// Largest level of a tone's second harmonic relative to the tone, as an amplitude ratio
/// (-10 dB). A keypad's generator keeps harmonics more than 20 dB down (Q.23); a voice or an
/// instrument that happens to make a key-like pair has its octaves right behind it.
const MAX_SECOND_HARMONIC: f32 = 0.316;
/// Error of the frequency estimate at the S/N the receiver must work at, relative.
const ESTIMATE_ALLOWANCE: f64 = 0.003;
/// Candidate pre-test: least power of each tone in every hop of the window, relative to its
/// mean over the window. Loose, because at 8 dB twist the strong tone leaks into the weak
/// one's 5 ms bin by half the weak tone's amplitude, and noise moves a hop's bin by ±3 dB.
const STEADY: f32 = 0.1;
/// The same for the louder tone of the pair.
const STRONG_STEADY: f32 = 0.3;
/// Candidate pre-test: each tone's window power over every other tone of its group.
const CANDIDATE_PEAK_RATIO: f32 = 1.5;
/// Validation: each tone's power over every other nominal frequency of its group, measured
/// with the same 25 ms Hann window (a key's own leakage there is below -17 dB even ±1.5 % off).
const PEAK_RATIO: f32 = 4.0;
/// Blocks of [`FLOOR_EVERY`] hops whose least window energies the noise floor is taken from
/// (2 s): long enough to span pauses between keys and to find the quiet moments of speech
/// and music, short enough to follow a change of line.
const FLOOR_BLOCKS: usize = 20;
/// The least of two seconds of window energies of stationary noise lies about 20 % under
/// their mean (200 samples a window); this brings it back.
const FLOOR_BIAS: f32 = 1.2;
/// At most this share of a window's energy is taken away as noise floor.
const FLOOR_MAX_SHARE: f32 = 0.7;
/// A background is steady when its least window energy is at least this share of the median
/// of its blocks' least ones (stationary noise: about 0.85; speech and music: far less).
const STEADY_FLOOR: f32 = 0.6;
/// Hops in a block of the noise floor (100 ms).
const FLOOR_EVERY: usize = 20;
/// A pair that holds its share only once the noise floor is taken away must stand out of its
/// groups more clearly (8 dB): in noise alone two bins rarely both do.
const FLOORED_PEAK_RATIO: f32 = 6.3;
/// A hop holding more than this many times the window's median hop energy holds a click
/// (or a burst of speech): it is left out of the energy share, and it may cover the pair
/// less than [`WINDOW_COVER`] as long as the pair is still there ([`OBSCURED_COVER`]).
const CLICK_RATIO: f32 = 3.0;
/// Least coverage of a hop obscured by a click, in a validating window.
const OBSCURED_COVER: f32 = 0.3;
/// A hop holding this many times the energy the tracked pair accounts for is obscured.
const OBSCURED_ENERGY: f32 = 1.5;

/// Peak amplitude (16-bit) of a sine at `dbm0` (Tmax = +3.14 dBm0, see [`crate::dsp::g711`]).
fn dbm0_to_peak(dbm0: f32) -> f32 {
    32768.0 * 10f32.powf((dbm0 - ALAW_TMAX_DBM0 as f32) / 20.0)
}

/// Level in dBm0 of a sine with the given 16-bit peak amplitude.
fn peak_to_dbm0(peak: f64) -> f32 {
    (20.0 * (peak / 32768.0).log10() + ALAW_TMAX_DBM0) as f32
}

/// Nominal (row, column) frequencies of a key, Hz.
pub fn digit_frequencies(digit: char) -> Option<(f32, f32)> {
    let digit = digit.to_ascii_uppercase();
    KEYS.iter().enumerate().find_map(|(r, row)| {
        row.iter()
            .position(|&k| k == digit)
            .map(|c| (ROW_HZ[r], COL_HZ[c]))
    })
}

/// Receiver limits. The defaults are the ITU-T Q.24 AT&T column; see [`DtmfParams::ntt`] and
/// [`DtmfParams::etsi`] for other administrations.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DtmfParams {
    /// Weakest tone that must operate, dBm0 per tone (Q.24 AT&T: -25).
    pub min_level_dbm0: f32,
    /// Absolute floor, dBm0 per tone: nothing weaker is ever reported (Q.24 AT&T: must not
    /// operate at -55; spandsp and Asterisk use about -42).
    pub floor_dbm0: f32,
    /// Largest normal twist (low-group tone louder), dB.
    pub normal_twist_db: f32,
    /// Largest reverse twist (high-group tone louder), dB.
    pub reverse_twist_db: f32,
    /// Frequency deviation that must be accepted, percent of nominal (Q.24 AT&T: 1.5).
    pub accept_deviation_pct: f32,
    /// Frequency deviation that must be rejected, percent of nominal (Q.24 AT&T: 3.5).
    pub reject_deviation_pct: f32,
    /// Share of the signal's energy the two tones must hold (talk-off guard), 0-1.
    pub min_energy_share: f32,
    /// Shortest tone reported, ms (Q.24: ≥ 40 ms must operate, ≤ 23 ms must not).
    pub min_tone_ms: f32,
    /// Longest gap bridged inside one key press, ms (Q.24: 10 ms must be bridged; a 40 ms pause
    /// must separate two presses).
    pub max_interruption_ms: f32,
}

impl Default for DtmfParams {
    fn default() -> Self {
        DtmfParams {
            min_level_dbm0: -25.0,
            floor_dbm0: -42.5,
            normal_twist_db: 8.0,
            reverse_twist_db: 4.0,
            accept_deviation_pct: 1.5,
            reject_deviation_pct: 3.5,
            min_energy_share: 0.75,
            min_tone_ms: 30.0,
            max_interruption_ms: 22.0,
        }
    }
}

impl DtmfParams {
    /// ITU-T Q.24 NTT column: ±1.8 % / ±3.0 %, 5 dB twist both ways, operate -3 to -24 dBm.
    pub fn ntt() -> Self {
        DtmfParams {
            min_level_dbm0: -24.0,
            floor_dbm0: -29.0,
            normal_twist_db: 5.0,
            reverse_twist_db: 5.0,
            accept_deviation_pct: 1.8,
            reject_deviation_pct: 3.0,
            ..Default::default()
        }
    }

    /// ETSI ES 201 235-3 style: 6 dB twist both ways.
    pub fn etsi() -> Self {
        DtmfParams {
            normal_twist_db: 6.0,
            reverse_twist_db: 6.0,
            ..Default::default()
        }
    }

    /// Checks that the limits make sense together; returns the name of the bad field.
    pub fn validate(&self) -> Result<(), DtmfParamsError> {
        let bad =
            |field: &'static str, reason: &'static str| Err(DtmfParamsError { field, reason });
        if !(self.floor_dbm0 < self.min_level_dbm0 && self.min_level_dbm0 <= 3.2) {
            return bad(
                "floor_dbm0",
                "must be below min_level_dbm0, which must be ≤ +3.2",
            );
        }
        if !(0.0..=20.0).contains(&self.normal_twist_db) {
            return bad("normal_twist_db", "must be within 0..=20 dB");
        }
        if !(0.0..=20.0).contains(&self.reverse_twist_db) {
            return bad("reverse_twist_db", "must be within 0..=20 dB");
        }
        if !(0.0 < self.accept_deviation_pct
            && self.accept_deviation_pct < self.reject_deviation_pct)
            || self.reject_deviation_pct > 8.0
        {
            return bad(
                "accept_deviation_pct",
                "need 0 < accept < reject ≤ 8 percent",
            );
        }
        if !(0.3..1.0).contains(&self.min_energy_share) {
            return bad("min_energy_share", "must be within 0.3..1.0");
        }
        if !(25.0..=200.0).contains(&self.min_tone_ms) {
            return bad(
                "min_tone_ms",
                "must be within 25..=200 ms (the window is 25 ms)",
            );
        }
        if !(5.0..=self.min_tone_ms).contains(&self.max_interruption_ms) {
            return bad("max_interruption_ms", "must be within 5 ms..=min_tone_ms");
        }
        Ok(())
    }

    fn decision_deviation(&self) -> f32 {
        // Halfway between must-accept and must-reject: the estimate is good to ~0.2 %.
        (self.accept_deviation_pct + self.reject_deviation_pct) / 200.0
    }
}

/// A parameter that does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("dtmf.{field}: {reason}")]
pub struct DtmfParamsError {
    /// The offending field.
    pub field: &'static str,
    /// Why it was refused.
    pub reason: &'static str,
}

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DtmfEvent {
    /// A key is down: the tone has lasted `min_tone_ms`. `start` is the first tone sample.
    KeyDown {
        /// The key.
        digit: char,
        /// Sample index of the tone onset.
        start: u64,
        /// Sample index at which the decision was taken (latency = `at - start`).
        at: u64,
        /// Row tone level, dBm0.
        low_dbm0: f32,
        /// Column tone level, dBm0.
        high_dbm0: f32,
    },
    /// The key was released. `end` is one past the last tone sample.
    KeyUp {
        /// The key.
        digit: char,
        /// Sample index of the tone onset (same as the key-down).
        start: u64,
        /// One past the last tone sample.
        end: u64,
        /// Row tone level over the whole press, dBm0.
        low_dbm0: f32,
        /// Column tone level over the whole press, dBm0.
        high_dbm0: f32,
    },
}

impl DtmfEvent {
    /// The key of either event.
    pub fn digit(&self) -> char {
        match *self {
            DtmfEvent::KeyDown { digit, .. } | DtmfEvent::KeyUp { digit, .. } => digit,
        }
    }
}

/// Why a candidate pair was refused (QA: `RUST_LOG=hotdesk=trace`, `detect --plot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// A tone is off its nominal frequency by more than the receiver accepts.
    Frequency,
    /// The two frequencies are in a small-integer ratio (harmonics of one voice or note) and
    /// not within the must-accept tolerance.
    HarmonicRatio,
    /// A tone is below the level floor.
    Level,
    /// The tones' level difference exceeds the twist limits.
    Twist,
    /// The pair holds too little of the signal's energy (speech, music, noise around it).
    EnergyShare,
    /// A tone has a strong second harmonic: a voice or an instrument.
    Octave,
    /// A tone does not stand out of the other tones of its group.
    RelativePeak,
    /// The pair was valid but did not cover the whole window (an onset, a gap).
    Coverage,
    /// The pair was followed but ended before it lasted `min_tone_ms`.
    TooShort,
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RefusalReason::Frequency => "frequency",
            RefusalReason::HarmonicRatio => "harmonic ratio",
            RefusalReason::Level => "level",
            RefusalReason::Twist => "twist",
            RefusalReason::EnergyShare => "energy share",
            RefusalReason::Octave => "octave",
            RefusalReason::RelativePeak => "relative peak",
            RefusalReason::Coverage => "coverage",
            RefusalReason::TooShort => "too short",
        })
    }
}

/// A candidate key the detector measured and refused, for QA pictures.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Refusal {
    /// The key the pair would have been.
    pub digit: char,
    /// Sample index at which it was judged (the end of its 25 ms window).
    pub at: u64,
    /// Why.
    pub reason: RefusalReason,
}

/// One 5 ms hop: Goertzel outputs referenced to absolute time, and the hop's energy.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Hop {
    end: u64,
    /// Real and imaginary parts of the eight tones' DFT, and their power.
    re: [f32; 8],
    im: [f32; 8],
    power: [f32; 8],
    energy: f32,
}

/// A validated tone pair being followed hop by hop.
#[derive(Debug, Clone, PartialEq)]
struct Track {
    digit: char,
    fit: PairFit,
    /// The (low, high) amplitudes hop coverage is judged against: validated, then following
    /// the level of the covered hops.
    reference: (f32, f32),
    /// The validated (low, high) amplitudes.
    validated: (f32, f32),
    onset: u64,
    /// One past the last sample believed to hold the tone.
    last_on: u64,
    /// Tone-free samples accumulated since the last fully covered hop.
    off: f32,
    /// Fill of the last fully covered hop: a "full" hop may still end the tone early.
    last_fill: f32,
    reported: bool,
    level_sum: (f64, f64),
    level_hops: u32,
}

/// How one hop is covered by a tracked pair.
#[derive(Debug, Clone, Copy)]
struct Coverage {
    /// Fitted / validated amplitude of the weaker tone (relative to its own reference).
    both: f32,
    /// Share of the hop the tone filled (for edges).
    fill: f32,
    /// The hop holds far more energy than the pair: a click or a burst over the tone, which
    /// the fit then sees through only roughly.
    obscured: bool,
    /// Fitted amplitudes, 16-bit peak.
    low: f32,
    high: f32,
}

/// Basis vectors of the per-hop fit: cos and sin of each tone. (A DC offset leaks about 2 %
/// of itself into a 40-sample fit at 697 Hz; a constant term would cost edge precision.)
const FIT: usize = 4;

/// Least-squares fit of two sines at fixed frequencies over one hop.
#[derive(Debug, Clone, PartialEq)]
struct PairFit {
    basis: [[f32; HOP]; FIT],
    inverse_gram: [[f64; FIT]; FIT],
}

impl PairFit {
    fn new(f_low: f64, f_high: f64) -> Self {
        let mut basis = [[0f32; HOP]; FIT];
        for (pair, freq) in [f_low, f_high].into_iter().enumerate() {
            let step = Complex64::from_polar(1.0, TAU * freq / SAMPLE_RATE as f64);
            let mut phasor = Complex64::new(1.0, 0.0);
            let (cos, sin) = basis.split_at_mut(2 * pair + 1);
            for (c, s) in cos[2 * pair].iter_mut().zip(sin[0].iter_mut()) {
                *c = phasor.re as f32;
                *s = phasor.im as f32;
                phasor *= step;
            }
        }
        let mut gram = [[0f64; FIT]; FIT];
        for (i, row) in gram.iter_mut().enumerate() {
            for (j, g) in row.iter_mut().enumerate() {
                *g = dot(&basis[i], &basis[j]) as f64;
            }
        }
        PairFit {
            basis,
            inverse_gram: invert(gram),
        }
    }

    /// Amplitudes (low, high) of the best-fitting pair over `x` (one hop).
    fn amplitudes(&self, x: &[f32; HOP]) -> (f32, f32) {
        let mut b = [0f64; FIT];
        for (bi, basis) in b.iter_mut().zip(&self.basis) {
            *bi = dot(basis, x) as f64;
        }
        let mut theta = [0f64; 4];
        for (t, row) in theta.iter_mut().zip(&self.inverse_gram) {
            *t = row.iter().zip(&b).map(|(g, b)| g * b).sum();
        }
        // Plain square roots: libm's overflow-safe hypot costs more than the whole fit.
        (
            (theta[0] * theta[0] + theta[1] * theta[1]).sqrt() as f32,
            (theta[2] * theta[2] + theta[3] * theta[3]).sqrt() as f32,
        )
    }
}

/// Dot product of two equal-length slices whose length is a multiple of 8, in eight lanes.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert!(a.len() == b.len() && a.len().is_multiple_of(8));
    let mut acc = f32x8::ZERO;
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let va = f32x8::from(<[f32; 8]>::try_from(ca).unwrap_or_default());
        let vb = f32x8::from(<[f32; 8]>::try_from(cb).unwrap_or_default());
        acc = va.mul_add(vb, acc);
    }
    acc.reduce_add()
}

/// Multiply-add, fused only where the CPU has FMA (a libm `fmaf` call would cost more than the
/// whole product).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// What one hop contributes: the eight tones' DFT (real, imaginary parts; referenced to the
/// hop's first sample), the sum and the sum of squares of its samples.
type HopDft = ([f32; 8], [f32; 8], f32, f32);

/// The eight tones' DFT over one hop as a matrix product: each sample times a precomputed
/// row of cos/sin, in four interleaved partial sums. Unlike a Goertzel recursion this has no
/// loop-carried chain through the samples, so it runs at the multiply-add units' throughput
/// (the eight tones are the eight lanes of one vector).
#[inline(always)]
fn hop_dft<const FMA: bool>(x: &[f32; HOP], basis: &HopBasis) -> HopDft {
    let mut re = [[0f32; 8]; 4];
    let mut im = [[0f32; 8]; 4];
    for n in (0..HOP).step_by(4) {
        for u in 0..4 {
            let v = x[n + u];
            let (cos, sin) = (&basis.cos[n + u], &basis.sin[n + u]);
            for k in 0..8 {
                re[u][k] = madd::<FMA>(v, cos[k], re[u][k]);
                im[u][k] = madd::<FMA>(v, sin[k], im[u][k]);
            }
        }
    }
    let mut out = ([0f32; 8], [0f32; 8]);
    for k in 0..8 {
        out.0[k] = (re[0][k] + re[1][k]) + (re[2][k] + re[3][k]);
        out.1[k] = (im[0][k] + im[1][k]) + (im[2][k] + im[3][k]);
    }
    let mut sum = [0f32; 8];
    let mut sum_sq = [0f32; 8];
    for chunk in x.chunks_exact(8) {
        for i in 0..8 {
            sum[i] += chunk[i];
            sum_sq[i] = madd::<FMA>(chunk[i], chunk[i], sum_sq[i]);
        }
    }
    (out.0, out.1, sum.iter().sum(), sum_sq.iter().sum())
}

/// [`hop_dft`] for AVX2 with FMA: the eight tones are one 256-bit register, and eight
/// accumulators (real and imaginary parts of four interleaved partial sums) keep both FMA
/// units busy without spilling.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn hop_dft_avx2(x: &[f32; HOP], basis: &HopBasis) -> HopDft {
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
        _mm256_storeu_ps,
    };
    // SAFETY: every load reads one whole `[f32; 8]` row of the basis or eight samples inside
    // `x` (HOP is a multiple of 8); unaligned loads and stores have no alignment requirement.
    unsafe {
        let load = |row: &[f32; 8]| _mm256_loadu_ps(row.as_ptr());
        let zero = _mm256_setzero_ps();
        let (mut re, mut im) = ([zero; 4], [zero; 4]);
        for n in (0..HOP).step_by(4) {
            for u in 0..4 {
                let v = _mm256_set1_ps(x[n + u]);
                re[u] = _mm256_fmadd_ps(v, load(&basis.cos[n + u]), re[u]);
                im[u] = _mm256_fmadd_ps(v, load(&basis.sin[n + u]), im[u]);
            }
        }
        let (mut sum, mut sum_sq) = (zero, zero);
        for chunk in x.chunks_exact(8) {
            let v = _mm256_loadu_ps(chunk.as_ptr());
            sum = _mm256_add_ps(sum, v);
            sum_sq = _mm256_fmadd_ps(v, v, sum_sq);
        }
        let store = |v: __m256| {
            let mut out = [0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), v);
            out
        };
        let total = |a: [__m256; 4]| {
            store(_mm256_add_ps(
                _mm256_add_ps(a[0], a[1]),
                _mm256_add_ps(a[2], a[3]),
            ))
        };
        (
            total(re),
            total(im),
            store(sum).iter().sum(),
            store(sum_sq).iter().sum(),
        )
    }
}

/// [`hop_dft`] with the widest instructions this CPU has. Every path computes the same sums
/// (FMA only changes the last bit of rounding), and the choice is the same for the whole
/// process, so results never depend on how the stream was chunked.
#[inline]
fn hop_dft_best(x: &[f32; HOP], basis: &HopBasis) -> HopDft {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports AVX2 and FMA, checked just above.
        return unsafe { hop_dft_avx2(x, basis) };
    }
    hop_dft::<false>(x, basis)
}

/// Median of five values by a compare-exchange network (no sort, no branches to mispredict).
#[inline]
fn median5(mut v: [f32; WIN_HOPS]) -> f32 {
    let mut exchange = |i: usize, j: usize| {
        let (a, b) = (v[i], v[j]);
        v[i] = a.min(b);
        v[j] = a.max(b);
    };
    exchange(0, 1);
    exchange(3, 4);
    exchange(0, 3);
    exchange(1, 4);
    exchange(1, 2);
    exchange(2, 3);
    exchange(1, 2);
    v[2]
}

/// Sum and sum of squares of a hop, in eight independent lanes (a single running sum would
/// be one long chain of dependent additions).
#[inline]
fn sums(x: &[f32; HOP]) -> (f32, f32) {
    let mut sum = [0f32; 8];
    let mut sum_sq = [0f32; 8];
    for chunk in x.chunks_exact(8) {
        for i in 0..8 {
            sum[i] += chunk[i];
            sum_sq[i] += chunk[i] * chunk[i];
        }
    }
    (sum.iter().sum(), sum_sq.iter().sum())
}

/// cos(ωn) and -sin(ωn) of the eight tones for n in one hop.
#[derive(Debug, Clone)]
struct HopBasis {
    cos: [[f32; 8]; HOP],
    sin: [[f32; 8]; HOP],
}

/// Gauss-Jordan inverse of a small symmetric positive-definite matrix.
fn invert<const N: usize>(mut m: [[f64; N]; N]) -> [[f64; N]; N] {
    let mut inv = [[0f64; N]; N];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..N {
        let pivot = (col..N)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap_or(col);
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let p = m[col][col];
        if p.abs() < 1e-12 {
            continue;
        }
        for j in 0..N {
            m[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..N {
            if row != col {
                let f = m[row][col];
                for j in 0..N {
                    m[row][j] -= f * m[col][j];
                    inv[row][j] -= f * inv[col][j];
                }
            }
        }
    }
    inv
}

/// Precomputed per-tone constants.
#[derive(Debug, Clone)]
struct ToneTables {
    /// The per-hop DFT matrix.
    basis: HopBasis,
    /// e^{-jω·HOP·k} for k in 0..PHASE_PERIOD: the absolute-time reference of hop k. Every
    /// DTMF frequency is a whole number of Hz and HOP·f/fs = f/200, so the reference repeats
    /// exactly every 200 hops: a table, with no drift and no renormalisation.
    hop_phase: Vec<[Complex32; 8]>,
    /// Hann(SEG)·e^{-jωn} per tone for the frequency estimate.
    seg_kernel: Vec<([f32; SEG], [f32; SEG])>,
    hann_win: [f32; WIN],
    hann_win_sum: f32,
    /// Hann(WIN)·e^{-jωn} per tone: the relative-peak test's measurements.
    win_kernel: Vec<([f32; WIN], [f32; WIN])>,
}

impl ToneTables {
    fn new() -> Self {
        let freqs: Vec<f64> = ROW_HZ.iter().chain(&COL_HZ).map(|&f| f as f64).collect();
        let mut t = ToneTables {
            basis: HopBasis {
                cos: [[0.0; 8]; HOP],
                sin: [[0.0; 8]; HOP],
            },
            hop_phase: vec![[Complex32::default(); 8]; PHASE_PERIOD],
            seg_kernel: Vec::with_capacity(8),
            hann_win: [0.0; WIN],
            hann_win_sum: 0.0,
            win_kernel: Vec::with_capacity(8),
        };
        for (i, &f) in freqs.iter().enumerate() {
            let w = TAU * f / SAMPLE_RATE as f64;
            for n in 0..HOP {
                t.basis.cos[n][i] = (w * n as f64).cos() as f32;
                t.basis.sin[n][i] = (-w * n as f64).sin() as f32;
            }
            for (k, phases) in t.hop_phase.iter_mut().enumerate() {
                // (f·HOP·k) mod fs keeps the argument small and exact.
                let turns = ((f as u64 * (HOP * k) as u64) % SAMPLE_RATE as u64) as f64;
                let p = Complex64::from_polar(1.0, -TAU * turns / SAMPLE_RATE as f64);
                phases[i] = Complex32::new(p.re as f32, p.im as f32);
            }
            let mut kernel = ([0f32; SEG], [0f32; SEG]);
            for n in 0..SEG {
                let hann = 0.5 - 0.5 * (TAU * (n as f64 + 0.5) / SEG as f64).cos();
                let c = Complex64::from_polar(hann, -w * n as f64);
                kernel.0[n] = c.re as f32;
                kernel.1[n] = c.im as f32;
            }
            t.seg_kernel.push(kernel);
        }
        for n in 0..WIN {
            t.hann_win[n] = (0.5 - 0.5 * (TAU * (n as f64 + 0.5) / WIN as f64).cos()) as f32;
        }
        t.hann_win_sum = t.hann_win.iter().sum();
        for &f in &freqs {
            let w = TAU * f / SAMPLE_RATE as f64;
            let mut kernel = ([0f32; WIN], [0f32; WIN]);
            for n in 0..WIN {
                let c = Complex64::from_polar(t.hann_win[n] as f64, -w * n as f64);
                kernel.0[n] = c.re as f32;
                kernel.1[n] = c.im as f32;
            }
            t.win_kernel.push(kernel);
        }
        t
    }
}

/// Built once, shared by every detector (about 30 KB).
static TABLES: LazyLock<ToneTables> = LazyLock::new(ToneTables::new);

/// A measured tone: frequency (Hz) and amplitude (16-bit peak).
#[derive(Debug, Clone, Copy)]
struct Measured {
    freq: f64,
    amplitude: f32,
}

/// The streaming DTMF receiver. See the module documentation for how it works.
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    params: DtmfParams,
    tables: &'static ToneTables,
    /// Derived limits in sample / amplitude units.
    floor_amplitude: f32,
    min_tone_samples: f32,
    max_gap_samples: f32,
    // Per-sample state: how much of the current hop is in the ring, and the recent past.
    fill: usize,
    /// A hop with less energy than this (a tone 20 dB under the floor) counts as silent.
    quiet_energy: f32,
    ring: Vec<f32>,
    pos: u64,
    // Per-hop state.
    /// Hops completed, modulo [`PHASE_PERIOD`].
    hop_index: usize,
    hops: VecDeque<Hop>,
    /// Least window energy of each of the last [`FLOOR_BLOCKS`] blocks of [`FLOOR_EVERY`]
    /// hops, and of the block being filled.
    block_minima: VecDeque<f32>,
    block_min: f32,
    /// The noise floor in force (see [`Self::noise_floor`]).
    floor: f32,
    /// Energy of the last [`WIN_HOPS`] hops.
    window_energy: f32,
    /// The key being followed (boxed: it is moved out and back every hop, and it holds the
    /// fit's basis).
    track: Option<Box<Track>>,
    /// No new key may start before this sample (the end of the previous one).
    not_before: u64,
    events: VecDeque<DtmfEvent>,
    /// Trace lines about candidate tone pairs (QA); off on live calls, where a pair's
    /// frequencies would tell which PIN key was pressed.
    diagnostics: bool,
    /// Refused candidates, kept when asked for ([`DtmfDetector::with_refusals`]).
    refusals: Option<Vec<Refusal>>,
}

impl Default for DtmfDetector {
    fn default() -> Self {
        Self::new(DtmfParams::default())
    }
}

/// Samples after which a detector started inside a stream ([`DtmfDetector::starting_at`]) has
/// forgotten that it started late: two seconds of noise floor, its window and its history.
pub const WARM_UP_SAMPLES: u64 = 3 * SAMPLE_RATE as u64;

impl DtmfDetector {
    /// A detector for a stream that it joins at sample `position` (rounded down to the 5 ms
    /// hop grid): its decisions fall on the grid of a detector that read the stream from its
    /// first sample, so that once both have read the same [`WARM_UP_SAMPLES`] they are in the
    /// same state unless a key spans the join, which [`DtmfDetector::same_state`] tells. This
    /// lets a long recording be cut into pieces decoded at once, with results identical to
    /// reading it in one go.
    pub fn starting_at(params: DtmfParams, position: u64) -> Self {
        let mut d = Self::new(params);
        let position = position - position % HOP as u64;
        d.pos = position;
        d.hop_index = (position / HOP as u64 % PHASE_PERIOD as u64) as usize;
        d
    }

    /// Whether `other`, at the same position, will report exactly what this detector reports
    /// from here on: the same limits, recent samples, hops, noise floor, tracked key and
    /// pending events. (Refusals kept for QA are not compared; where the last key ended
    /// matters only while it is within reach of the onset search.)
    pub fn same_state(&self, other: &DtmfDetector) -> bool {
        let reach = self
            .pos
            .saturating_sub(((WIN_HOPS + ONSET_SEARCH_HOPS + 1) * HOP) as u64);
        self.pos == other.pos
            && self.fill == other.fill
            && self.hop_index == other.hop_index
            && self.params == other.params
            && self.diagnostics == other.diagnostics
            && self.ring == other.ring
            && self.hops == other.hops
            && self.block_minima == other.block_minima
            && self.block_min == other.block_min
            && self.floor == other.floor
            && self.window_energy == other.window_energy
            && self.track == other.track
            && self.not_before.max(reach) == other.not_before.max(reach)
            && self.events == other.events
    }

    /// A detector with the given limits. Call [`DtmfParams::validate`] first on user input;
    /// nonsensical limits here make a detector that never or always fires, never one that panics.
    pub fn new(params: DtmfParams) -> Self {
        let rate = SAMPLE_RATE as f32 / 1000.0;
        let floor_amplitude = dbm0_to_peak(params.floor_dbm0);
        DtmfDetector {
            floor_amplitude,
            min_tone_samples: params.min_tone_ms * rate,
            max_gap_samples: params.max_interruption_ms * rate,
            params,
            tables: &TABLES,
            fill: 0,
            quiet_energy: (0.1 * floor_amplitude).powi(2) / 2.0 * HOP as f32,
            ring: vec![0.0; RING],
            pos: 0,
            hop_index: 0,
            hops: VecDeque::with_capacity(WIN_HOPS + ONSET_SEARCH_HOPS + 2),
            block_minima: VecDeque::with_capacity(FLOOR_BLOCKS),
            block_min: f32::INFINITY,
            floor: 0.0,
            window_energy: 0.0,
            track: None,
            not_before: 0,
            events: VecDeque::new(),
            diagnostics: true,
            refusals: None,
        }
    }

    /// The same detector keeping every refused candidate (one per window judged, so up to 200
    /// a second of speech): for QA pictures of a recording, never for live calls.
    pub fn with_refusals(mut self) -> Self {
        self.refusals = Some(Vec::new());
        self.diagnostics = true;
        self
    }

    /// Refused candidates so far (empty unless [`DtmfDetector::with_refusals`]), drained.
    pub fn take_refusals(&mut self) -> Vec<Refusal> {
        self.refusals
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The same detector without the per-candidate trace lines: for live calls, whose keys
    /// may be a PIN that must not reach any log, whatever the log level.
    pub fn without_diagnostics(mut self) -> Self {
        self.diagnostics = false;
        self.refusals = None;
        self
    }

    /// The limits in force.
    pub fn params(&self) -> &DtmfParams {
        &self.params
    }

    /// Samples consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Feeds 8 kHz linear samples. Any chunk size, including empty.
    pub fn push(&mut self, samples: &[i16]) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (HOP - self.fill).min(rest.len());
            // The ring holds whole hops, so the hop being filled is contiguous in it.
            let at = (self.pos as usize) % RING;
            for (dst, &src) in self.ring[at..at + take].iter_mut().zip(rest) {
                *dst = src as f32;
            }
            self.fill += take;
            self.pos += take as u64;
            rest = &rest[take..];
            if self.fill == HOP {
                self.end_hop();
            }
        }
    }

    /// The stream has ended: a key still down is released at the last tone sample.
    pub fn finish(&mut self) {
        if let Some(track) = self.track.take() {
            self.close(track);
        }
    }

    /// Next event, in order.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    fn end_hop(&mut self) {
        let at = (self.pos as usize - HOP) % RING;
        let mut x = [0f32; HOP];
        x.copy_from_slice(&self.ring[at..at + HOP]);
        let (sum, sum_sq) = sums(&x);
        // Energy about the hop's mean: a DC offset or hum below 200 Hz competes with no key.
        let mut hop = Hop {
            end: self.pos,
            re: [0.0; 8],
            im: [0.0; 8],
            power: [0.0; 8],
            energy: sum_sq - sum * sum / HOP as f32,
        };
        // A near-silent hop adds nothing any test could see (its bins are bounded by its
        // energy): its DFT is left at zero.
        if sum_sq > self.quiet_energy {
            let (re, im, _, _) = hop_dft_best(&x, &self.tables.basis);
            let phase = &self.tables.hop_phase[self.hop_index];
            for i in 0..8 {
                let bin = Complex32::new(re[i], im[i]) * phase[i];
                (hop.re[i], hop.im[i]) = (bin.re, bin.im);
                hop.power[i] = bin.re * bin.re + bin.im * bin.im;
            }
        }
        self.hop_index = (self.hop_index + 1) % PHASE_PERIOD;
        self.fill = 0;
        if self.hops.len() == WIN_HOPS + ONSET_SEARCH_HOPS {
            self.hops.pop_front();
        }
        self.hops.push_back(hop);
        if self.hops.len() >= WIN_HOPS {
            let e: f32 = self
                .hops
                .range(self.hops.len() - WIN_HOPS..)
                .map(|h| h.energy)
                .sum();
            self.window_energy = e;
            self.block_min = self.block_min.min(e);
            if self.hop_index.is_multiple_of(FLOOR_EVERY) {
                if self.block_minima.len() == FLOOR_BLOCKS {
                    self.block_minima.pop_front();
                }
                self.block_minima.push_back(self.block_min);
                self.block_min = f32::INFINITY;
                self.update_floor();
            }
        }
        self.analyse(hop);
    }

    fn analyse(&mut self, hop: Hop) {
        if let Some(mut track) = self.track.take() {
            let cover = self.coverage(&track, hop.end);
            if self.follow(&mut track, hop.end, cover) {
                self.track = Some(track);
            } else {
                self.close(track);
            }
            return;
        }
        if self.hops.len() < WIN_HOPS || hop.end < self.not_before + WIN as u64 {
            return;
        }
        if let Some((row, col)) = self.candidate()
            && let Some(track) = self.validate(row, col)
        {
            self.start_track(track);
        }
    }

    /// Stage 2: strongest row and column of the window, if they could be a key.
    fn candidate(&self) -> Option<(usize, usize)> {
        // Two tones at the floor put at least this much energy in the window: silence and
        // quiet noise stop here, before any per-tone work.
        let least = self.floor_amplitude.powi(2) * WIN as f32 * 0.5;
        if self.window_energy < least {
            return None;
        }
        let window = self.hops.range(self.hops.len() - WIN_HOPS..);
        let (mut re, mut im, mut incoherent) = ([0f32; 8], [0f32; 8], [0f32; 8]);
        for hop in window {
            for i in 0..8 {
                re[i] += hop.re[i];
                im[i] += hop.im[i];
                incoherent[i] += hop.power[i];
            }
        }
        let coherent: [f32; 8] = std::array::from_fn(|i| re[i] * re[i] + im[i] * im[i]);
        // A tone of amplitude A fills a hop bin with (A·HOP/2)²; allow 3 dB for a tone off
        // frequency and leakage. Silence and quiet noise stop here.
        let floor = (self.floor_amplitude * HOP as f32 / 2.0).powi(2) * 0.5 * WIN_HOPS as f32;
        let row = argmax(&coherent[..4], |&c| c);
        let col = 4 + argmax(&coherent[4..], |&c| c);
        if incoherent[row] < floor || incoherent[col] < floor {
            return None;
        }
        // Each tone must stand out from the other tones of its group (a loose pre-test; the
        // validation measures it properly). Noise and clicks raise every bin alike, so this
        // holds at any broadband S/N where the tone still shows above the noise in its bin.
        let power = coherent;
        let stands_out = |group: std::ops::Range<usize>, best: usize| {
            group
                .filter(|&i| i != best)
                .all(|i| power[best] >= CANDIDATE_PEAK_RATIO * power[i])
        };
        if !stands_out(0..4, row) || !stands_out(4..8, col) {
            return None;
        }
        // |X|²·2/HOP is the energy of a tone filling the hop. Half the configured share, of
        // the energy left once clicks and the noise floor are set aside, is a loose pre-test
        // (hop bins leak into each other); validation applies the real one.
        let tones = (incoherent[row] + incoherent[col]) * 2.0 / HOP as f32;
        let (clean, n_clean) = self.clean_energy();
        let floor = self.floor / WIN_HOPS as f32 * n_clean;
        let rest = (clean - floor).max((1.0 - FLOOR_MAX_SHARE) * clean);
        if tones * n_clean / (WIN_HOPS as f32) < 0.5 * self.params.min_energy_share * rest {
            return None;
        }
        // Both tones in every hop: a window with an onset or a gap inside is refused here,
        // before the costly measurement, and [`WINDOW_COVER`] repeats the test precisely
        // afterwards (see [`STEADY`]).
        let mean = (
            incoherent[row] / WIN_HOPS as f32,
            incoherent[col] / WIN_HOPS as f32,
        );
        // The louder tone has no leakage to fear: it must fill every hop more fully, which
        // turns away windows with an onset in them before the costly measurement.
        let (strong, weak) = if mean.0 >= mean.1 {
            (1.0, 0.0)
        } else {
            (0.0, 1.0)
        };
        let least = (
            STEADY + (STRONG_STEADY - STEADY) * strong,
            STEADY + (STRONG_STEADY - STEADY) * weak,
        );
        let steady = self
            .hops
            .range(self.hops.len() - WIN_HOPS..)
            .all(|h| h.power[row] >= least.0 * mean.0 && h.power[col] >= least.1 * mean.1);
        steady.then_some((row, col - 4))
    }

    /// The `N` samples ending at `end`.
    fn history<const N: usize>(&self, end: u64) -> [f32; N] {
        let mut out = [0f32; N];
        let start = (end as usize - N) % RING;
        let first = (RING - start).min(N);
        out[..first].copy_from_slice(&self.ring[start..start + first]);
        out[first..].copy_from_slice(&self.ring[..N - first]);
        out
    }

    /// Stage 3: measure both tones over the last window and apply the receiver limits.
    fn validate(&mut self, row: usize, col: usize) -> Option<Box<Track>> {
        match self.judge(row, col) {
            Ok(track) => Some(Box::new(track)),
            Err(reason) => {
                self.refuse(KEYS[row][col], reason);
                None
            }
        }
    }

    /// The tests of stage 3, cheapest first.
    fn judge(&self, row: usize, col: usize) -> Result<Track, RefusalReason> {
        let x: [f32; WIN] = self.history(self.pos);
        let low = self.measure(&x, row);
        let high = self.measure(&x, 4 + col);
        let p = &self.params;
        let harmonic = is_harmonic_pair(low.freq, high.freq);
        let limit = if harmonic {
            p.accept_deviation_pct as f64 / 100.0 + ESTIMATE_ALLOWANCE
        } else {
            p.decision_deviation() as f64
        };
        let deviation = (
            (low.freq / ROW_HZ[row] as f64) - 1.0,
            (high.freq / COL_HZ[col] as f64) - 1.0,
        );
        if self.diagnostics {
            tracing::trace!(
                key = %KEYS[row][col],
                at = self.pos,
                low_hz = low.freq,
                high_hz = high.freq,
                low_dbm0 = peak_to_dbm0(low.amplitude.into()),
                high_dbm0 = peak_to_dbm0(high.amplitude.into()),
                "dtmf: candidate measured"
            );
        }
        if deviation.0.abs() > limit || deviation.1.abs() > limit {
            return Err(if harmonic {
                RefusalReason::HarmonicRatio
            } else {
                RefusalReason::Frequency
            });
        }
        if low.amplitude < self.floor_amplitude || high.amplitude < self.floor_amplitude {
            return Err(RefusalReason::Level);
        }
        let twist = 20.0 * (high.amplitude / low.amplitude).log10();
        if twist > p.reverse_twist_db + TWIST_ALLOWANCE_DB
            || -twist > p.normal_twist_db + TWIST_ALLOWANCE_DB
        {
            return Err(RefusalReason::Twist);
        }
        let (raw_share, share) = self.share(&low, &high);
        if share < p.min_energy_share {
            return Err(RefusalReason::EnergyShare);
        }
        if self.has_octave(&x, &low, high.freq) || self.has_octave(&x, &high, low.freq) {
            return Err(RefusalReason::Octave);
        }
        let peak = |tone: &Measured, first: usize, own: usize| {
            let loudest_other = (first..first + 4)
                .filter(|&i| i != own)
                .map(|i| self.nominal_amplitude(&x, i))
                .fold(0f32, f32::max);
            tone.amplitude.powi(2) / loudest_other.powi(2).max(1e-6)
        };
        // A pair that holds its share only once the noise floor is taken away must stand out
        // of its groups more clearly.
        let peak_ratio = if raw_share >= p.min_energy_share {
            PEAK_RATIO
        } else {
            FLOORED_PEAK_RATIO
        };
        if peak(&low, 0, row) < peak_ratio || peak(&high, 4, 4 + col) < peak_ratio {
            return Err(RefusalReason::RelativePeak);
        }
        Ok(Track {
            digit: KEYS[row][col],
            fit: PairFit::new(low.freq, high.freq),
            reference: (low.amplitude, high.amplitude),
            validated: (low.amplitude, high.amplitude),
            onset: self.pos,
            last_on: self.pos,
            off: 0.0,
            last_fill: 1.0,
            reported: false,
            level_sum: (0.0, 0.0),
            level_hops: 0,
        })
    }

    /// Energy of the window's hops that hold no click (a hop with more than [`CLICK_RATIO`]
    /// times the median hop energy), and how many they are.
    fn clean_energy(&self) -> (f32, f32) {
        let mut energies = [0f32; WIN_HOPS];
        for (e, h) in energies
            .iter_mut()
            .zip(self.hops.range(self.hops.len() - WIN_HOPS..))
        {
            *e = h.energy.max(0.0);
        }
        let limit = CLICK_RATIO * median5(energies);
        energies
            .iter()
            .filter(|&&e| e <= limit)
            .fold((0.0, 0.0), |(sum, n), &e| (sum + e, n + 1.0))
    }

    /// The pair's share of the energy of the validating window, measured on its hops that hold
    /// no click, without and with the stationary noise floor taken away. Broadband noise far
    /// louder than the pair then leaves it most of what remains, while speech and music, whose
    /// quietest moments within two seconds are nearly silent, keep their whole weight.
    fn share(&self, low: &Measured, high: &Measured) -> (f32, f32) {
        let (energy, n) = self.clean_energy();
        let floor = self.noise_floor() / WIN_HOPS as f32 * n;
        let floored = (energy - floor).max((1.0 - FLOOR_MAX_SHARE) * energy);
        let tones = (low.amplitude.powi(2) + high.amplitude.powi(2)) / 2.0 * (HOP as f32 * n);
        (tones / energy.max(1.0), tones / floored.max(1.0))
    }

    /// Energy of stationary noise in a window: the least window energy of the last two
    /// seconds, corrected for the minimum's bias; zero unless the background is steady (the
    /// least close to the typical least of 100 ms blocks), as broadband line noise is and
    /// speech and music, with their pauses and decays, are not.
    fn noise_floor(&self) -> f32 {
        self.floor
    }

    /// Recomputes [`Self::noise_floor`] (every [`FLOOR_EVERY`] hops: it moves slowly).
    fn update_floor(&mut self) {
        self.floor = self.measure_floor();
    }

    fn measure_floor(&self) -> f32 {
        if self.block_minima.len() < FLOOR_BLOCKS / 4 {
            return 0.0;
        }
        let least = self
            .block_minima
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min);
        // Steady when the median block is within reach of the least: at least half the
        // blocks, and one, under least / STEADY_FLOOR (a count, not a sort).
        let reach = least / STEADY_FLOOR;
        let under = self.block_minima.iter().filter(|&&m| m <= reach).count();
        if under < self.block_minima.len() / 2 + 1 {
            return 0.0;
        }
        least * FLOOR_BIAS
    }

    /// Frequency and amplitude of the tone near nominal tone `i` in the window `x`.
    fn measure(&self, x: &[f32; WIN], i: usize) -> Measured {
        let nominal = if i < 4 { ROW_HZ[i] } else { COL_HZ[i - 4] } as f64;
        let kernel = &self.tables.seg_kernel[i];
        let mut segs = [Complex32::default(); SEGMENTS];
        for (s, seg) in segs.iter_mut().enumerate() {
            let part = &x[s * HOP..s * HOP + SEG];
            *seg = Complex32::new(dot(&kernel.0, part), dot(&kernel.1, part));
        }
        // Each segment is referenced to its own start; the pulse-pair product of neighbours then
        // advances by e^{j2π(f-f0)·HOP/fs} · e^{j2πf0·HOP/fs}, so remove the nominal part.
        let pair: Complex32 = segs.windows(2).map(|w| w[1] * w[0].conj()).sum();
        let advance = (pair.arg() as f64) / TAU * SAMPLE_RATE as f64 / HOP as f64;
        let nominal_advance = nominal * HOP as f64 / SAMPLE_RATE as f64;
        // Wrap the nominal part out: offset in Hz within ±fs/(2·HOP).
        let span = SAMPLE_RATE as f64 / HOP as f64;
        let mut offset = advance - nominal_advance.fract() * span;
        offset -= (offset / span).round() * span;
        let freq = nominal + offset;
        Measured {
            freq,
            amplitude: self.amplitude_at(x, freq),
        }
    }

    /// True when the tone's second harmonic is strong: the tone is part of a harmonic sound.
    /// Not judged when the octave falls within the Hann main lobe (±80 Hz) of the other tone,
    /// whose leakage would read as a harmonic; such a pair is near 2:1 and the ratio rule in
    /// [`is_harmonic_pair`] covers it.
    fn has_octave(&self, x: &[f32; WIN], tone: &Measured, other_hz: f64) -> bool {
        let octave = 2.0 * tone.freq;
        let main_lobe = 2.0 * SAMPLE_RATE as f64 / WIN as f64;
        octave < 3600.0
            && (octave - other_hz).abs() > main_lobe
            && self.amplitude_at(x, octave) > MAX_SECOND_HARMONIC * tone.amplitude
    }

    /// [`Self::amplitude_at`] at nominal tone `i`, from precomputed kernels.
    fn nominal_amplitude(&self, x: &[f32; WIN], i: usize) -> f32 {
        let (cos, sin) = &self.tables.win_kernel[i];
        let (re, im) = (dot(cos, x), dot(sin, x));
        2.0 * (re * re + im * im).sqrt() / self.tables.hann_win_sum
    }

    /// Hann-windowed DFT amplitude of `x` at `freq` (16-bit peak units).
    fn amplitude_at(&self, x: &[f32; WIN], freq: f64) -> f32 {
        // Eight phasors e^{-jωn}, n = k..k+7, advanced by e^{-j8ω} per block: eight short
        // independent chains instead of one long one. 200 steps of f32 rotation drift by
        // well under 0.01 dB.
        let w = TAU * freq / SAMPLE_RATE as f64;
        // The lanes' start phasors from one sine and cosine (libm calls cost more than the
        // whole DFT).
        let step = Complex64::from_polar(1.0, -w);
        let mut phasor = Complex64::new(1.0, 0.0);
        let mut start = [Complex64::default(); 8];
        for s in start.iter_mut() {
            *s = phasor;
            phasor *= step;
        }
        let (mut re, mut im) = (
            f32x8::from(start.map(|c| c.re as f32)),
            f32x8::from(start.map(|c| c.im as f32)),
        );
        let step8 = phasor; // e^{-j8ω}: the phasor after the eight lane steps above
        let (step_re, step_im) = (f32x8::splat(step8.re as f32), f32x8::splat(step8.im as f32));
        let (mut acc_re, mut acc_im) = (f32x8::ZERO, f32x8::ZERO);
        for (xs, ws) in x.chunks_exact(8).zip(self.tables.hann_win.chunks_exact(8)) {
            let v = f32x8::from(<[f32; 8]>::try_from(xs).unwrap_or_default())
                * f32x8::from(<[f32; 8]>::try_from(ws).unwrap_or_default());
            acc_re = v.mul_add(re, acc_re);
            acc_im = v.mul_add(im, acc_im);
            let next_re = re * step_re - im * step_im;
            im = re * step_im + im * step_re;
            re = next_re;
        }
        let (sum_re, sum_im) = (acc_re.reduce_add(), acc_im.reduce_add());
        2.0 * (sum_re * sum_re + sum_im * sum_im).sqrt() / self.tables.hann_win_sum
    }

    /// Coverage of one hop by the tracked pair: fitted amplitude / validated amplitude, of
    /// whichever tone is weaker relative to its own reference. A key needs both tones: a chord
    /// whose upper note decays, or speech that keeps one formant, must not hold a key down.
    fn coverage(&self, track: &Track, hop_end: u64) -> Coverage {
        // Hops are whole in the ring: no copy.
        let at = (hop_end as usize - HOP) % RING;
        let x: &[f32; HOP] = self.ring[at..at + HOP]
            .try_into()
            .expect("the ring holds whole hops");
        let (low, high) = track.fit.amplitudes(x);
        let (rl, rh) = (low / track.reference.0, high / track.reference.1);
        let (sum, sum_sq) = sums(x);
        let energy = sum_sq - sum * sum / HOP as f32;
        let expected = (track.reference.0.powi(2) + track.reference.1.powi(2)) / 2.0 * HOP as f32;
        Coverage {
            obscured: energy > OBSCURED_ENERGY * expected,
            both: rl.min(rh),
            // A partial hop's fitted amplitude grows with the samples the tone filled; the mean
            // of the two tones places an edge more precisely than the weaker one alone.
            fill: ((rl + rh) / 2.0).clamp(0.0, 1.0),
            low,
            high,
        }
    }

    /// A window validated: check the pair covers all of it, find the onset, then replay the
    /// covered hops through `follow`.
    fn start_track(&mut self, mut track: Box<Track>) {
        let eligible = |end: u64| end >= self.not_before + HOP as u64;
        // Coverage of every hop we still hold that may belong to this key, oldest first.
        let hops: Vec<(u64, Coverage)> = self
            .hops
            .iter()
            .filter(|h| eligible(h.end))
            .map(|h| (h.end, self.coverage(&track, h.end)))
            .collect();
        // A hop under a click may show the pair weaker or stronger than it is; it must still
        // show it.
        let window = self.hops.range(self.hops.len() - WIN_HOPS..);
        let mut energies = [0f32; WIN_HOPS];
        for (e, h) in energies.iter_mut().zip(window.clone()) {
            *e = h.energy;
        }
        let median = median5(energies);
        let covered = |(h, (_, c)): (&Hop, &(u64, Coverage))| {
            c.both >= WINDOW_COVER || (h.energy > CLICK_RATIO * median && c.both >= OBSCURED_COVER)
        };
        if hops.len() < WIN_HOPS || !window.zip(&hops[hops.len() - WIN_HOPS..]).all(covered) {
            // The pair does not fill the window (an onset, or an edge of speech, is in it):
            // the measurements are biased. A later, cleaner window decides.
            self.refuse(track.digit, RefusalReason::Coverage);
            return;
        }
        // Walk back from the newest hop while hops are fully covered by the pair.
        let mut first = hops.len();
        let on = |c: &Coverage| c.both >= FULL_COVER || (c.obscured && c.both >= OBSCURED_COVER);
        while first > 0 && on(&hops[first - 1].1) {
            first -= 1;
        }
        let run_start = hops
            .get(first)
            .map_or(self.pos, |(end, _)| end - HOP as u64);
        // The hop before the covered run may hold the tone's first samples.
        let mut onset = run_start;
        match first.checked_sub(1).map(|i| hops[i].1) {
            // The hop before the run holds the tone's first samples.
            Some(before) if before.both >= NO_COVER => {
                onset -= (before.fill * HOP as f32).round() as u64;
            }
            // Nothing before the run: the tone may have started inside its first hop.
            _ => {
                if let Some((_, head)) = hops.get(first) {
                    onset += edge_inset(head.fill);
                }
            }
        }
        track.onset = onset.max(self.not_before);
        track.last_on = run_start;
        for &(end, cover) in &hops[first..] {
            if !self.follow(&mut track, end, cover) {
                self.close(track);
                return;
            }
        }
        self.track = Some(track);
    }

    /// Advances a tracked key by one hop. Returns false when the key has ended.
    fn follow(&mut self, track: &mut Track, hop_end: u64, cover: Coverage) -> bool {
        let start = hop_end - HOP as u64;
        if cover.both >= FULL_COVER {
            // Follow the level: a press whose level sags (a handset moved, a gain control) is
            // judged against its own recent level, so it is never cut in two, while a hole or
            // a gap still reads as a loss of the pair against that level.
            let follow = |reference: f32, fitted: f32, validated: f32| {
                let fitted = fitted.clamp(0.5 * reference, 1.25 * reference);
                (0.25 * reference + 0.75 * fitted).max(SAG_FLOOR * validated)
            };
            track.reference = (
                follow(track.reference.0, cover.low, track.validated.0),
                follow(track.reference.1, cover.high, track.validated.1),
            );
            track.last_on = hop_end;
            track.last_fill = cover.fill;
            track.off = 0.0;
            track.level_sum.0 += cover.low as f64;
            track.level_sum.1 += cover.high as f64;
            track.level_hops += 1;
        } else if cover.obscured && cover.both >= OBSCURED_COVER && track.last_on == start {
            // The pair is still there under a click: the press goes on through it (its length
            // counts the whole tone, click included), but its level is not taken from here.
            track.last_on = hop_end;
            track.last_fill = 1.0;
        } else {
            if track.last_on == start {
                if cover.both >= NO_COVER {
                    // Falling edge: the tone occupied the start of this hop.
                    track.last_on = start + (cover.fill * HOP as f32).round() as u64;
                } else {
                    // Nothing here: the tone may have ended inside the last "full" hop.
                    track.last_on -= edge_inset(track.last_fill);
                }
            }
            track.off += (1.0 - cover.both.clamp(0.0, 1.0)) * HOP as f32;
            if track.off >= self.max_gap_samples {
                return false;
            }
        }
        if !track.reported && (track.last_on - track.onset) as f32 >= self.min_tone_samples {
            track.reported = true;
            let (low_dbm0, high_dbm0) = self.levels(track);
            self.events.push_back(DtmfEvent::KeyDown {
                digit: track.digit,
                start: track.onset,
                at: self.pos,
                low_dbm0,
                high_dbm0,
            });
        }
        true
    }

    fn levels(&self, track: &Track) -> (f32, f32) {
        if track.level_hops == 0 {
            // A key made only of partly covered hops (two edges, no full hop between them):
            // the amplitudes validated when the track opened are the best measure there is.
            // (This was NaN until the `dtmf_detector` fuzzer found such a key.)
            let (low, high) = track.reference;
            return (peak_to_dbm0(low.into()), peak_to_dbm0(high.into()));
        }
        let n = track.level_hops as f64;
        let to_dbm0 = |a: f64| peak_to_dbm0(a / n);
        (to_dbm0(track.level_sum.0), to_dbm0(track.level_sum.1))
    }

    /// Notes a refused candidate for QA (never on live calls).
    fn refuse(&mut self, digit: char, reason: RefusalReason) {
        if !self.diagnostics {
            return;
        }
        tracing::trace!(key = %digit, at = self.pos, %reason, "dtmf: candidate refused");
        let at = self.pos;
        if let Some(refusals) = self.refusals.as_mut() {
            refusals.push(Refusal { digit, at, reason });
        }
    }

    fn close(&mut self, track: Box<Track>) {
        self.not_before = track.last_on;
        if !track.reported {
            self.refuse(track.digit, RefusalReason::TooShort);
        }
        if track.reported {
            let (low_dbm0, high_dbm0) = self.levels(&track);
            self.events.push_back(DtmfEvent::KeyUp {
                digit: track.digit,
                start: track.onset,
                end: track.last_on,
                low_dbm0,
                high_dbm0,
            });
        }
    }
}

/// True when `high / low` is within [`HARMONIC_RATIO_TOLERANCE`] of p/q, q ≤ 6.
fn is_harmonic_pair(low: f64, high: f64) -> bool {
    let ratio = high / low;
    (1..=HARMONIC_MAX_Q).any(|q| {
        let p = (ratio * q as f64).round();
        p > q as f64 && (ratio / (p / q as f64) - 1.0).abs() < HARMONIC_RATIO_TOLERANCE
    })
}

/// How far inside a hop counted as full an edge lies, in samples: a hop is "full" from 75 %
/// on, so a fill clearly short of the whole hop places the edge within it.
fn edge_inset(fill: f32) -> u64 {
    if fill < 0.95 {
        ((1.0 - fill) * HOP as f32).round() as u64
    } else {
        0
    }
}

fn argmax<T>(items: &[T], key: impl Fn(&T) -> f32) -> usize {
    let mut best = 0;
    for i in 1..items.len() {
        if key(&items[i]) > key(&items[best]) {
            best = i;
        }
    }
    best
}

/// A completed key press, as [`detect`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KeyPress {
    /// The key.
    pub digit: char,
    /// First tone sample.
    pub start: u64,
    /// One past the last tone sample.
    pub end: u64,
    /// Sample at which the key-down was reported.
    pub detected_at: u64,
    /// Row tone level, dBm0.
    pub low_dbm0: f32,
    /// Column tone level, dBm0.
    pub high_dbm0: f32,
}

/// Runs a whole 8 kHz buffer through a fresh detector and returns the completed presses.
pub fn detect(samples: &[i16], params: &DtmfParams) -> Vec<KeyPress> {
    let mut detector = DtmfDetector::new(params.clone());
    detector.push(samples);
    detector.finish();
    collect_presses(&mut detector)
}

/// Drains a detector's events into completed presses (a key-down without key-up is dropped).
pub fn collect_presses(detector: &mut DtmfDetector) -> Vec<KeyPress> {
    let mut collector = PressCollector::default();
    collector.drain(detector);
    collector.into_presses()
}

/// Turns a detector's events into completed presses as a stream goes by, so that a caller
/// feeding it block by block keeps no more than the presses themselves.
#[derive(Debug, Clone, Default)]
pub struct PressCollector {
    down_at: Option<u64>,
    presses: Vec<KeyPress>,
}

impl PressCollector {
    /// Drains the detector's pending events.
    pub fn drain(&mut self, detector: &mut DtmfDetector) {
        while let Some(event) = detector.poll_event() {
            self.take(event);
        }
    }

    /// Takes events drained from a detector elsewhere, in order.
    pub fn extend(&mut self, events: impl IntoIterator<Item = DtmfEvent>) {
        for event in events {
            self.take(event);
        }
    }

    fn take(&mut self, event: DtmfEvent) {
        match event {
            DtmfEvent::KeyDown { at, .. } => self.down_at = Some(at),
            DtmfEvent::KeyUp {
                digit,
                start,
                end,
                low_dbm0,
                high_dbm0,
            } => self.presses.push(KeyPress {
                digit,
                start,
                end,
                detected_at: self.down_at.take().unwrap_or(end),
                low_dbm0,
                high_dbm0,
            }),
        }
    }

    /// The completed presses.
    pub fn into_presses(self) -> Vec<KeyPress> {
        self.presses
    }
}

/// The digits of a list of presses as a string.
pub fn digits(presses: &[KeyPress]) -> String {
    presses.iter().map(|p| p.digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::tone::{Burst, Signal};

    fn keyed(keys: &str, on_ms: f64, off_ms: f64, dbm0: f64) -> Vec<i16> {
        let mut s = Signal::new(SAMPLE_RATE, 42);
        s.silence(1600);
        for k in keys.chars() {
            let on = s.ms(on_ms);
            let off = s.ms(off_ms);
            s.burst(&Burst::new(k, on, dbm0)).silence(off);
        }
        s.silence(2400);
        s.to_i16()
    }

    #[test]
    fn decodes_every_key() {
        let audio = keyed("123A456B789C*0#D", 60.0, 60.0, -10.0);
        assert_eq!(
            digits(&detect(&audio, &DtmfParams::default())),
            "123A456B789C*0#D"
        );
    }

    #[test]
    fn times_are_close_to_the_truth() {
        let mut s = Signal::new(SAMPLE_RATE, 3);
        s.silence(1003)
            .burst(&Burst::new('7', 480, -12.0))
            .silence(1000);
        let presses = detect(&s.to_i16(), &DtmfParams::default());
        assert_eq!(presses.len(), 1, "{presses:?}");
        let p = presses[0];
        assert!((p.start as i64 - 1003).abs() <= 8, "start {}", p.start);
        assert!((p.end as i64 - 1483).abs() <= 8, "end {}", p.end);
        assert!(
            (p.low_dbm0 + 12.0).abs() < 0.5 && (p.high_dbm0 + 12.0).abs() < 0.5,
            "{p:?}"
        );
        assert!(
            p.detected_at - p.start <= 320,
            "latency {}",
            p.detected_at - p.start
        );
    }

    #[test]
    fn median5_is_the_middle_value_in_every_order() {
        let values = [3.0, 1.0, 4.0, 1.5, 9.0];
        let mut order = [0, 1, 2, 3, 4];
        // Every rotation and its reverse.
        for r in 0..5 {
            order.rotate_left(1);
            let v = order.map(|i| values[(i + r) % 5]);
            assert_eq!(median5(v), 3.0, "{v:?}");
            let mut rev = v;
            rev.reverse();
            assert_eq!(median5(rev), 3.0, "{rev:?}");
        }
    }

    #[test]
    fn silence_gives_nothing() {
        assert!(detect(&vec![0i16; 80_000], &DtmfParams::default()).is_empty());
    }

    #[test]
    fn params_validation_names_the_field() {
        let bad = DtmfParams {
            min_tone_ms: 10.0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "min_tone_ms");
        assert!(DtmfParams::default().validate().is_ok());
        assert!(DtmfParams::ntt().validate().is_ok());
        assert!(DtmfParams::etsi().validate().is_ok());
    }

    #[test]
    fn digit_frequencies_cover_the_keypad() {
        assert_eq!(digit_frequencies('1'), Some((697.0, 1209.0)));
        assert_eq!(digit_frequencies('#'), Some((941.0, 1477.0)));
        assert_eq!(digit_frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(digit_frequencies('x'), None);
    }
}
