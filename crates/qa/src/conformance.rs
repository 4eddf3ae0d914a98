//! The DTMF receiver conformance battery (Q.24 AT&T limits, Mitel CM7291 / spandsp test
//! styles), synthesised in Rust and scored against a detector configuration.
//!
//! Every case follows the common synthesis rules: 8 kHz, 200 ms of leading and 300 ms of
//! trailing silence, two abruptly switched sines per key with random start phases, and between
//! trials an extra 0-101 samples of silence that walks each trial across the detector's block
//! alignments. The seed changes phases, noise, random keying and the alignment walk, so the
//! same battery can be regenerated independently.
//!
//! Kinds: *standard* (a Q.24 criterion), *robustness* (what this IVR needs), *info* (a
//! measurement reported for comparison with spandsp, never failed).

use std::collections::BTreeMap;

use serde::Serialize;

use hotdesk_core::dsp::dtmf::{DtmfParams, detect, digits};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::dsp::tone::{ALL_KEYS, Burst, Signal};

/// How a case is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A criterion of ITU-T Q.24 (AT&T column) or the Mitel decode test.
    Standard,
    /// An engineering requirement of the hot-desk IVR.
    Robustness,
    /// A measurement; not pass/fail.
    Info,
}

/// The channel the battery is sent through before the detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 16-bit linear, as synthesised.
    Linear,
    /// A G.711 µ-law round trip.
    Ulaw,
    /// A G.711 A-law round trip.
    Alaw,
}

impl Channel {
    /// The audio as it comes out of the channel.
    pub fn apply(self, audio: Vec<i16>) -> Vec<i16> {
        match self {
            Channel::Linear => audio,
            Channel::Ulaw => Law::Ulaw.round_trip(&audio),
            Channel::Alaw => Law::Alaw.round_trip(&audio),
        }
    }
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Case name, as in `docs/dtmf.md` §1.
    pub name: &'static str,
    /// How it is judged.
    pub kind: Kind,
    /// Pass or fail; `None` for info cases.
    pub passed: Option<bool>,
    /// What was measured, in words and numbers.
    pub detail: String,
    /// The same measurements as named numbers.
    pub metrics: BTreeMap<&'static str, f64>,
}

impl Outcome {
    /// A named measurement, if this case recorded it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.get(name).copied()
    }
}

/// Speech used by the prompt-echo case (8 kHz). Without it that case is skipped by the caller.
pub struct Material<'a> {
    /// At least ~12 s of speech at 8 kHz, any level (it is normalised).
    pub speech: &'a [i16],
}

struct Trials {
    signal: Signal,
    expected: String,
    count: u64,
    seed: u64,
}

impl Trials {
    fn new(seed: u64) -> Self {
        let mut signal = Signal::new(8000, seed);
        signal.silence(1600);
        Trials {
            signal,
            expected: String::new(),
            count: 0,
            seed,
        }
    }

    fn jitter(&mut self) -> usize {
        self.count += 1;
        ((37 * self.count + self.seed * 11) % 102) as usize
    }

    fn key(&mut self, burst: Burst, off_ms: f64) {
        self.signal.burst(&burst);
        self.expected.push(burst.digit);
        let off = self.signal.ms(off_ms) + self.jitter();
        self.signal.silence(off);
    }

    /// A key followed by exactly `off` samples (no alignment jitter): for cases whose gap is
    /// the thing under test.
    fn key_exact(&mut self, burst: Burst, off: usize) {
        self.signal.burst(&burst);
        self.expected.push(burst.digit);
        self.signal.silence(off);
    }

    fn gap(&mut self, ms: f64) {
        let n = self.signal.ms(ms) + self.jitter();
        self.signal.silence(n);
    }

    fn audio(mut self) -> (Vec<i16>, String) {
        self.signal.silence(2400);
        (self.signal.to_i16(), self.expected)
    }
}

/// Decoded-vs-expected comparison: longest common subsequence, missing and extra digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Score {
    /// Expected digits found in order.
    pub matched: usize,
    /// Expected digits not found.
    pub missing: usize,
    /// Digits reported that were not expected.
    pub extra: usize,
}

/// Scores `decoded` against `expected` by longest common subsequence.
pub fn score(expected: &str, decoded: &str) -> Score {
    let e: Vec<char> = expected.chars().collect();
    let d: Vec<char> = decoded.chars().collect();
    let mut table = vec![vec![0usize; d.len() + 1]; e.len() + 1];
    for i in 1..=e.len() {
        for j in 1..=d.len() {
            table[i][j] = if e[i - 1] == d[j - 1] {
                table[i - 1][j - 1] + 1
            } else {
                table[i - 1][j].max(table[i][j - 1])
            };
        }
    }
    let matched = table[e.len()][d.len()];
    Score {
        matched,
        missing: e.len() - matched,
        extra: d.len() - matched,
    }
}

struct Runner<'p> {
    params: &'p DtmfParams,
    channel: Channel,
    seed: u64,
    out: Vec<Outcome>,
}

impl Runner<'_> {
    fn decode(&self, audio: Vec<i16>) -> String {
        digits(&detect(&self.channel.apply(audio), self.params))
    }

    fn exact(&mut self, name: &'static str, kind: Kind, trials: Trials) {
        let (audio, expected) = trials.audio();
        let decoded = self.decode(audio);
        let s = score(&expected, &decoded);
        self.out.push(Outcome {
            name,
            kind,
            passed: (kind != Kind::Info).then_some(decoded == expected),
            detail: format!(
                "{}/{} decoded, {} missing, {} extra",
                s.matched,
                expected.len(),
                s.missing,
                s.extra
            ),
            metrics: BTreeMap::from([
                ("matched", s.matched as f64),
                ("missing", s.missing as f64),
                ("extra", s.extra as f64),
            ]),
        });
    }

    fn silent(&mut self, name: &'static str, kind: Kind, audio: Vec<i16>, trials: usize) {
        let decoded = self.decode(audio);
        self.out.push(Outcome {
            name,
            kind,
            passed: (kind != Kind::Info).then_some(decoded.is_empty()),
            detail: format!("{} detections in {trials} trials", decoded.len()),
            metrics: BTreeMap::from([("detections", decoded.len() as f64)]),
        });
    }

    fn info(&mut self, name: &'static str, detail: String, metrics: &[(&'static str, f64)]) {
        self.out.push(Outcome {
            name,
            kind: Kind::Info,
            passed: None,
            detail,
            metrics: metrics.iter().copied().collect(),
        });
    }

    fn trials(&self, salt: u64) -> Trials {
        Trials::new(self.seed.wrapping_mul(1000).wrapping_add(salt))
    }
}

/// Runs the whole battery through `channel` and returns one outcome per case.
pub fn run(
    params: &DtmfParams,
    channel: Channel,
    seed: u64,
    material: Option<&Material>,
) -> Vec<Outcome> {
    let mut r = Runner {
        params,
        channel,
        seed,
        out: Vec::new(),
    };
    decode_all(&mut r);
    ivr_hotdesk(&mut r);
    frequency(&mut r);
    twist(&mut r);
    level(&mut r);
    duration(&mut r);
    pauses(&mut r);
    noise(&mut r);
    dial_tone(&mut r);
    if let Some(material) = material {
        prompt_echo(&mut r, material.speech);
    }
    music(&mut r);
    r.out
}

fn decode_all(r: &mut Runner) {
    let mut t = r.trials(1);
    for &k in &ALL_KEYS {
        for _ in 0..10 {
            t.key(Burst::new(k, 400, -4.0), 50.0);
        }
    }
    r.exact("decode_all", Kind::Standard, t);
}

fn ivr_hotdesk(r: &mut Runner) {
    let mut t = r.trials(2);
    for k in "*884815162342#7291#*880000#1111#".chars() {
        let on = t.signal.random_range(70..=160) as f64;
        let off = t.signal.random_range(60..=400) as f64;
        let level = t.signal.random_real(-20.0, -5.0);
        let twist = t.signal.random_real(-3.0, 3.0);
        let mut burst = Burst::new(k, t.signal.ms(on), level);
        burst.high_dbm0 = level + twist;
        t.key(burst, off);
    }
    r.exact("ivr_hotdesk", Kind::Robustness, t);
}

fn offset_burst(k: char, on: usize, dbm0: f64, low_pct: f64, high_pct: f64) -> Burst {
    Burst {
        low_offset_pct: low_pct,
        high_offset_pct: high_pct,
        ..Burst::new(k, on, dbm0)
    }
}

fn frequency(r: &mut Runner) {
    let signs = [(1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0)];
    for (name, kind, pct, extra_hz) in [
        ("freq_accept_1.5pct", Kind::Standard, 1.5, 0.0),
        ("freq_accept_1.5pct+2Hz", Kind::Info, 1.5, 2.0),
    ] {
        let mut t = r.trials(3);
        for &k in &ALL_KEYS {
            let (fl, fh) = Burst::new(k, 0, 0.0).frequencies();
            for (sl, sh) in signs {
                let low = sl * (pct + extra_hz / fl * 100.0);
                let high = sh * (pct + extra_hz / fh * 100.0);
                t.key(offset_burst(k, 480, -10.0, low, high), 60.0);
            }
        }
        r.exact(name, kind, t);
    }
    let mut t = r.trials(4);
    let mut n = 0;
    for &k in &ALL_KEYS {
        let cases = [
            (3.5, 0.0),
            (-3.5, 0.0),
            (0.0, 3.5),
            (0.0, -3.5),
            (3.5, 3.5),
            (3.5, -3.5),
            (-3.5, 3.5),
            (-3.5, -3.5),
        ];
        for (lo, hi) in cases {
            t.signal.burst(&offset_burst(k, 800, -10.0, lo, hi));
            t.gap(100.0);
            n += 1;
        }
    }
    let (audio, _) = t.audio();
    r.silent("freq_reject_3.5pct", Kind::Standard, audio, n);
    let mut t = r.trials(5);
    for &k in &ALL_KEYS {
        for (lo, hi) in [(3.0, 0.0), (-3.0, 0.0), (0.0, 3.0), (0.0, -3.0)] {
            t.signal.burst(&offset_burst(k, 800, -10.0, lo, hi));
            t.gap(100.0);
        }
    }
    let (audio, _) = t.audio();
    r.silent("freq_reject_3.0pct_ntt", Kind::Info, audio, 64);
    freq_sweep(r);
}

/// Mitel test 3 style: one tone offset in 0.2 % steps; the accept edge per frequency and sign.
fn freq_sweep(r: &mut Runner) {
    let mut edges = Vec::new();
    let mut all_inside = true;
    let (mut min_edge, mut max_edge) = (f64::MAX, 0f64);
    for (k, f_low, f_high) in [
        ('1', 697, 1209),
        ('5', 770, 1336),
        ('9', 852, 1477),
        ('D', 941, 1633),
    ] {
        for (group, freq) in [(0, f_low), (1, f_high)] {
            let mut pair = Vec::new();
            for sign in [-1.0, 1.0] {
                let mut t = r.trials(6 + group);
                for step in 1..=30 {
                    let pct = sign * 0.2 * step as f64;
                    let (lo, hi) = if group == 0 { (pct, 0.0) } else { (0.0, pct) };
                    t.key(offset_burst(k, 400, -17.0, lo, hi), 60.0);
                }
                let (audio, _) = t.audio();
                let hits = r.decode(audio).chars().filter(|&c| c == k).count();
                let edge = hits as f64 * 0.2;
                all_inside &= (1.5..3.5).contains(&edge);
                min_edge = min_edge.min(edge);
                max_edge = max_edge.max(edge);
                pair.push(edge);
            }
            edges.push(format!("{freq}: -{:.1}/+{:.1} %", pair[0], pair[1]));
        }
    }
    r.info(
        "freq_sweep",
        format!(
            "{}; every edge in [1.5, 3.5): {}",
            edges.join(", "),
            if all_inside { "yes" } else { "NO" }
        ),
        &[("min_edge_pct", min_edge), ("max_edge_pct", max_edge)],
    );
}

fn twist(r: &mut Runner) {
    let corners = [
        (-10.0, -18.0),
        (-17.0, -25.0),
        (-3.0, -11.0),
        (-10.0, -6.0),
        (-25.0, -21.0),
        (-7.0, -3.0),
    ];
    let mut t = r.trials(10);
    for &k in &ALL_KEYS {
        for (low, high) in corners {
            let mut b = Burst::new(k, 480, low);
            b.high_dbm0 = high;
            t.key(b, 60.0);
        }
    }
    r.exact("twist_accept", Kind::Standard, t);
    let mut t = r.trials(11);
    for &k in &ALL_KEYS {
        for (low, high) in [(-10.0, -17.5), (-10.0, -6.5)] {
            let mut b = Burst::new(k, 480, low);
            b.high_dbm0 = high;
            t.key(b, 60.0);
        }
    }
    r.exact("twist_accept_7.5/3.5dB", Kind::Info, t);
    twist_sweep(r);
}

/// Mitel test 4 style: the louder tone at -4 dBm0, the other attenuated in 0.5 dB steps.
fn twist_sweep(r: &mut Runner) {
    let mut worst = [f64::MAX; 2];
    let mut widest = [0f64; 2];
    for k in ['1', '5', '9', 'D'] {
        for (i, attenuate_high) in [true, false].into_iter().enumerate() {
            let mut t = r.trials(12);
            for step in 1..=40 {
                let mut b = Burst::new(k, 400, -4.0);
                let weaker = -4.0 - 0.5 * step as f64;
                if attenuate_high {
                    b.high_dbm0 = weaker;
                } else {
                    b.low_dbm0 = weaker;
                }
                t.key(b, 60.0);
            }
            let (audio, _) = t.audio();
            let hits = r.decode(audio).chars().filter(|&c| c == k).count() as f64 * 0.5;
            worst[i] = worst[i].min(hits);
            widest[i] = widest[i].max(hits);
        }
    }
    r.info(
        "twist_sweep",
        format!(
            "normal (high attenuated) accepted to {:.1}-{:.1} dB, reverse (low attenuated) to \
             {:.1}-{:.1} dB; configured {:.1}/{:.1} dB",
            worst[0],
            widest[0],
            worst[1],
            widest[1],
            r.params.normal_twist_db,
            r.params.reverse_twist_db
        ),
        &[
            ("normal_min_db", worst[0]),
            ("normal_max_db", widest[0]),
            ("reverse_min_db", worst[1]),
            ("reverse_max_db", widest[1]),
        ],
    );
}

fn level(r: &mut Runner) {
    let mut t = r.trials(20);
    for &k in &ALL_KEYS {
        for level in [-3.0, -6.0, -10.0, -15.0, -20.0, -25.0] {
            t.key(Burst::new(k, 480, level), 60.0);
        }
    }
    r.exact("level_accept", Kind::Standard, t);
    let mut t = r.trials(21);
    for &k in &ALL_KEYS {
        t.key(Burst::new(k, 480, 0.0), 60.0);
    }
    r.exact("level_0dBm0_clipped", Kind::Info, t);
    for (name, kind, level) in [
        ("level_reject_-55dBm0", Kind::Standard, -55.0),
        ("level_reject_-29dBm0_ntt", Kind::Info, -29.0),
    ] {
        let mut t = r.trials(22);
        for &k in &ALL_KEYS {
            t.signal.burst(&Burst::new(k, 800, level));
            t.gap(100.0);
        }
        let (audio, _) = t.audio();
        r.silent(name, kind, audio, 16);
    }
    let mut t = r.trials(23);
    for step in 0..54 {
        t.key(Burst::new('1', 400, 3.0 - step as f64), 60.0);
    }
    let (audio, _) = t.audio();
    let responses = r.decode(audio).chars().filter(|&c| c == '1').count();
    r.info(
        "dynamic_range",
        format!("{responses} responses of 54 (+3 to -50 dBm0 in 1 dB steps)"),
        &[("responses", responses as f64)],
    );
}

fn duration(r: &mut Runner) {
    let mut t = r.trials(30);
    for _ in 0..3 {
        for &k in &ALL_KEYS {
            t.key(Burst::new(k, 320, -10.0), 60.0);
        }
    }
    r.exact("duration_accept_40ms", Kind::Standard, t);
    let mut t = r.trials(31);
    for _ in 0..3 {
        for &k in &ALL_KEYS {
            t.signal.burst(&Burst::new(k, 184, -4.0));
            t.gap(100.0);
        }
    }
    let (audio, _) = t.audio();
    r.silent("duration_reject_23ms", Kind::Standard, audio, 48);
    // Mitel test 6 style: 10-48 ms in 2 ms steps, 10 alignments each.
    let mut always: Option<u32> = None;
    let mut never: Option<u32> = None;
    for ms in (10u32..=48).step_by(2) {
        let mut t = r.trials(32);
        for align in 0..10 {
            t.signal.silence(align * 10);
            t.key(Burst::new('1', ms as usize * 8, -4.0), 100.0);
        }
        let (audio, _) = t.audio();
        let hits = r.decode(audio).chars().filter(|&c| c == '1').count();
        if hits == 0 {
            never = Some(ms);
        }
        if hits == 10 && always.is_none() {
            always = Some(ms);
        }
        if hits < 10 {
            always = None;
        }
    }
    r.info(
        "guard_time_sweep",
        format!(
            "always detected from {} ms, never at or below {} ms",
            always.map_or("-".into(), |v| v.to_string()),
            never.map_or("-".into(), |v| v.to_string())
        ),
        &[
            ("always_ms", always.map_or(f64::NAN, f64::from)),
            ("never_ms", never.map_or(f64::NAN, f64::from)),
        ],
    );
}

fn pauses(r: &mut Runner) {
    let mut t = r.trials(40);
    for (i, &k) in ALL_KEYS.iter().enumerate() {
        for second in [k, ALL_KEYS[(i + 5) % 16]] {
            t.key_exact(Burst::new(k, 480, -10.0), 320);
            t.key(Burst::new(second, 480, -10.0), 100.0);
        }
    }
    r.exact("pause_accept_40ms", Kind::Standard, t);
    for (name, kind, phase_jump) in [
        ("interruption_10ms", Kind::Standard, false),
        ("interruption_10ms_phasejump", Kind::Info, true),
    ] {
        let mut t = r.trials(41);
        for i in 0..32 {
            let k = ALL_KEYS[i % 16];
            let (fl, fh) = Burst::new(k, 0, 0.0).frequencies();
            let phases = (t.signal.random_phase(), t.signal.random_phase());
            let burst = Burst::new(k, 400, -10.0);
            t.signal.burst_with_phases(&burst, phases);
            t.signal.silence(80);
            let next = if phase_jump {
                (t.signal.random_phase(), t.signal.random_phase())
            } else {
                // Oscillators keep running through the 80-sample gap.
                let adv = |f: f64| std::f64::consts::TAU * f * 480.0 / 8000.0;
                (phases.0 + adv(fl), phases.1 + adv(fh))
            };
            t.signal.burst_with_phases(&burst, next);
            t.expected.push(k);
            let off = t.signal.ms(100.0) + t.jitter();
            t.signal.silence(off);
        }
        r.exact(name, kind, t);
    }
    let mut t = r.trials(42);
    for _ in 0..2 {
        for &k in &ALL_KEYS {
            t.key_exact(Burst::new(k, 376, -10.0), 368);
        }
    }
    r.exact("velocity_93ms", Kind::Standard, t);
    let mut t = r.trials(43);
    for _ in 0..2 {
        for &k in &ALL_KEYS {
            t.key_exact(Burst::new(k, 320, -10.0), 320);
        }
    }
    r.exact("velocity_80ms_fastdialer", Kind::Info, t);
}

fn noise(r: &mut Runner) {
    let mut t = r.trials(50);
    for _ in 0..5 {
        for &k in &ALL_KEYS {
            t.key(Burst::new(k, 400, -10.0), 50.0);
        }
    }
    t.signal.add_noise(-25.0);
    r.exact("snr_15dB", Kind::Standard, t);
    let mut clean_to = None;
    let mut sweep = Vec::new();
    for snr in [30.0, 24.0, 20.0, 18.0, 16.0, 14.0, 12.0, 10.0, 8.0, 6.0] {
        let mut t = r.trials(51);
        for _ in 0..100 {
            t.key(Burst::new('1', 400, -10.0), 50.0);
        }
        t.signal.add_noise(-10.0 - snr);
        let (audio, expected) = t.audio();
        let s = score(&expected, &r.decode(audio));
        sweep.push(format!(
            "{snr}dB:{}/{}+{}",
            s.matched,
            expected.len(),
            s.extra
        ));
        if s.missing == 0 && s.extra == 0 && clean_to.is_none_or(|c: f64| snr < c) {
            clean_to = Some(snr);
        }
    }
    r.info(
        "snr_sweep",
        format!(
            "clean (100/100, no extra) down to {} dB S/N; {}",
            clean_to.map_or("-".into(), |v| v.to_string()),
            sweep.join(" ")
        ),
        &[("clean_snr_db", clean_to.unwrap_or(f64::NAN))],
    );
    let mut s = Signal::new(8000, r.seed + 52);
    s.silence(240_000).add_noise(-20.0);
    let mut quiet = Signal::new(8000, r.seed + 53);
    quiet.silence(240_000).add_noise(-45.0);
    let mut audio = s.to_i16();
    audio.extend(quiet.to_i16());
    r.silent("noise_false_alarm", Kind::Robustness, audio, 2);
}

fn dial_tone(r: &mut Runner) {
    for (name, kind, dial) in [
        ("dialtone_10dB_below", Kind::Robustness, -25.0),
        ("dialtone_equal", Kind::Info, -15.0),
    ] {
        let mut t = r.trials(60);
        for _ in 0..3 {
            for &k in &ALL_KEYS {
                t.key(Burst::new(k, 400, -15.0), 50.0);
            }
        }
        t.signal
            .add_tones_everywhere(&[(350.0, dial), (440.0, dial)]);
        r.exact(name, kind, t);
    }
}

fn prompt_echo(r: &mut Runner, speech: &[i16]) {
    let mut t = r.trials(70);
    for _ in 0..2 {
        for k in "*881234567890#".chars() {
            t.key(Burst::new(k, 640, -12.0), 200.0);
        }
    }
    // Echo of our own prompt: speech at about -28 dBm0 under the keys, looped as needed.
    let len = t.signal.len();
    let rms = (speech.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / speech.len() as f64)
        .sqrt()
        .max(1.0);
    let gain = hotdesk_core::dsp::tone::dbm0_to_rms(-28.0) / rms;
    let echo: Vec<f64> = speech.iter().cycle().take(len).map(|&v| v as f64).collect();
    t.signal.mix(&echo, 0, gain);
    r.exact("dtmf_over_prompt_echo", Kind::Robustness, t);
}

/// Synthetic music: notes and chords of harmonic tones with decay and vibrato (≈ 4 min).
pub fn music_proxy(seed: u64, seconds: f64) -> Vec<i16> {
    let mut s = Signal::new(8000, seed);
    let total = s.ms(seconds * 1000.0);
    s.silence(total);
    let mut at = 0usize;
    let mut out = vec![0f64; total];
    while at < total {
        let len = s.random_range(1200..=6000) as usize;
        let notes = s.random_range(1..=3);
        let level = s.random_real(-22.0, -12.0);
        let peak = hotdesk_core::dsp::tone::dbm0_to_peak(level) / notes as f64;
        for _ in 0..notes {
            let midi = s.random_range(55..=90) as f64;
            let f0 = 440.0 * 2f64.powf((midi - 69.0) / 12.0);
            let vibrato = s.random_real(0.0, 0.006);
            let rate = s.random_real(4.0, 7.0);
            let decay = s.random_real(0.5, 4.0);
            let phase0 = s.random_phase();
            let mut phase = phase0;
            for n in 0..len.min(total - at) {
                let t = n as f64 / 8000.0;
                let f = f0 * (1.0 + vibrato * (std::f64::consts::TAU * rate * t).sin());
                phase += std::f64::consts::TAU * f / 8000.0;
                let env = (-decay * t).exp() * (n as f64 / 80.0).min(1.0);
                let mut v = 0.0;
                for h in 1..=6 {
                    let fh = f0 * h as f64;
                    if fh < 3800.0 {
                        v += (h as f64 * phase).sin() / h as f64;
                    }
                }
                out[at + n] += peak * env * v;
            }
        }
        at += len;
    }
    out.iter()
        .map(|&v| v.round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

fn music(r: &mut Runner) {
    let audio = music_proxy(r.seed + 80, 240.0);
    let decoded = r.decode(audio);
    r.info(
        "talkoff_music_proxy",
        format!(
            "{} false digits in 4 min ({:.0}/h){}",
            decoded.len(),
            decoded.len() as f64 * 15.0,
            if decoded.is_empty() {
                String::new()
            } else {
                format!(": {decoded}")
            }
        ),
        &[("false_digits", decoded.len() as f64)],
    );
}

/// Number of pass/fail cases passed and run.
pub fn tally(outcomes: &[Outcome]) -> (usize, usize) {
    let judged: Vec<_> = outcomes.iter().filter_map(|o| o.passed).collect();
    (judged.iter().filter(|&&p| p).count(), judged.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_missing_and_extra() {
        assert_eq!(
            score("1234", "1244"),
            Score {
                matched: 3,
                missing: 1,
                extra: 1
            }
        );
        assert_eq!(score("", "5").extra, 1);
        assert_eq!(score("12", "").missing, 2);
    }
}
