//! Deterministic test-signal generator: DTMF pairs, single tones, white noise.
//!
//! Levels are in dBm0 per tone with the project-wide convention of [`dbm0_to_peak`]
//! (Tmax = +3.14 dBm0, as spandsp), frequencies may be offset in percent and every random choice
//! comes from a seeded ChaCha stream, so a battery built from the same seed is bit-identical.
//! The signal is kept in `f64` until [`Signal::to_i16`] saturates it like a real channel would.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::dsp::dtmf::{COL_HZ, ROW_HZ, digit_frequencies};
use crate::dsp::g711::ALAW_TMAX_DBM0;

/// Peak amplitude (16-bit) of a sine at `dbm0`.
pub fn dbm0_to_peak(dbm0: f64) -> f64 {
    32768.0 * 10f64.powf((dbm0 - ALAW_TMAX_DBM0) / 20.0)
}

/// RMS (16-bit) of any signal at `dbm0`.
pub fn dbm0_to_rms(dbm0: f64) -> f64 {
    dbm0_to_peak(dbm0) / std::f64::consts::SQRT_2
}

/// One DTMF burst: which key, how long, at what levels and frequency offsets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// The key: `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    /// Tone length in samples.
    pub on: usize,
    /// Level of the low-group (row) tone, dBm0.
    pub low_dbm0: f64,
    /// Level of the high-group (column) tone, dBm0.
    pub high_dbm0: f64,
    /// Offset of the row tone from nominal, percent.
    pub low_offset_pct: f64,
    /// Offset of the column tone from nominal, percent.
    pub high_offset_pct: f64,
}

impl Burst {
    /// A nominal burst: both tones at `dbm0`, on frequency.
    pub fn new(digit: char, on: usize, dbm0: f64) -> Self {
        Burst {
            digit,
            on,
            low_dbm0: dbm0,
            high_dbm0: dbm0,
            low_offset_pct: 0.0,
            high_offset_pct: 0.0,
        }
    }

    /// The two frequencies actually sent, Hz.
    pub fn frequencies(&self) -> (f64, f64) {
        let (low, high) = digit_frequencies(self.digit)
            .unwrap_or_else(|| panic!("{:?} is not a DTMF key", self.digit));
        (
            low as f64 * (1.0 + self.low_offset_pct / 100.0),
            high as f64 * (1.0 + self.high_offset_pct / 100.0),
        )
    }
}

/// A signal under construction at a fixed sample rate.
#[derive(Debug, Clone)]
pub struct Signal {
    rate: f64,
    samples: Vec<f64>,
    rng: ChaCha8Rng,
}

impl Signal {
    /// An empty signal at `rate` Hz whose random choices (phases, noise) follow `seed`.
    pub fn new(rate: u32, seed: u64) -> Self {
        Signal {
            rate: rate as f64,
            samples: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Number of samples so far.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when nothing has been added.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Samples for `ms` milliseconds at this rate.
    pub fn ms(&self, ms: f64) -> usize {
        (ms * self.rate / 1000.0).round() as usize
    }

    /// Appends `n` samples of silence.
    pub fn silence(&mut self, n: usize) -> &mut Self {
        self.samples.extend(std::iter::repeat_n(0.0, n));
        self
    }

    /// A random start phase in [0, 2π).
    pub fn random_phase(&mut self) -> f64 {
        self.rng.random::<f64>() * std::f64::consts::TAU
    }

    /// A random integer in `range` from the signal's seeded stream.
    pub fn random_range(&mut self, range: std::ops::RangeInclusive<i64>) -> i64 {
        self.rng.random_range(range)
    }

    /// A random real in `[lo, hi)` from the signal's seeded stream.
    pub fn random_real(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.random::<f64>()
    }

    /// Appends a DTMF burst, each tone with its own random start phase, switched on and off
    /// abruptly (no ramps), as the conformance battery prescribes.
    pub fn burst(&mut self, burst: &Burst) -> &mut Self {
        let phases = (self.random_phase(), self.random_phase());
        self.burst_with_phases(burst, phases)
    }

    /// Appends a DTMF burst with the given start phases (radians).
    pub fn burst_with_phases(&mut self, burst: &Burst, phases: (f64, f64)) -> &mut Self {
        let (f_low, f_high) = burst.frequencies();
        self.tones(
            &[
                (f_low, burst.low_dbm0, phases.0),
                (f_high, burst.high_dbm0, phases.1),
            ],
            burst.on,
        )
    }

    /// Appends `n` samples of a sum of sines `(Hz, dBm0, start phase)`.
    pub fn tones(&mut self, tones: &[(f64, f64, f64)], n: usize) -> &mut Self {
        let start = self.samples.len();
        self.samples.resize(start + n, 0.0);
        for &(freq, dbm0, phase) in tones {
            let peak = dbm0_to_peak(dbm0);
            let step = std::f64::consts::TAU * freq / self.rate;
            for (i, s) in self.samples[start..].iter_mut().enumerate() {
                *s += peak * (phase + step * i as f64).sin();
            }
        }
        self
    }

    /// Adds sines `(Hz, dBm0)` over the whole signal so far (dial tone, hum), phase-continuous.
    pub fn add_tones_everywhere(&mut self, tones: &[(f64, f64)]) -> &mut Self {
        for &(freq, dbm0) in tones {
            let phase = self.random_phase();
            let peak = dbm0_to_peak(dbm0);
            let step = std::f64::consts::TAU * freq / self.rate;
            for (i, s) in self.samples.iter_mut().enumerate() {
                *s += peak * (phase + step * i as f64).sin();
            }
        }
        self
    }

    /// Adds white Gaussian noise of total power `dbm0` (over 0 to rate/2) to the whole signal.
    pub fn add_noise(&mut self, dbm0: f64) -> &mut Self {
        let sigma = dbm0_to_rms(dbm0);
        for s in self.samples.iter_mut() {
            let g: f64 = self.rng.sample(StandardNormal);
            *s += sigma * g;
        }
        self
    }

    /// Mixes another signal into this one starting at sample `at`, scaled by `gain`.
    pub fn mix(&mut self, other: &[f64], at: usize, gain: f64) -> &mut Self {
        if self.samples.len() < at + other.len() {
            self.samples.resize(at + other.len(), 0.0);
        }
        for (s, o) in self.samples[at..].iter_mut().zip(other) {
            *s += gain * o;
        }
        self
    }

    /// The raw samples.
    pub fn samples(&self) -> &[f64] {
        &self.samples
    }

    /// Rounds and saturates to 16-bit, as a channel does.
    pub fn to_i16(&self) -> Vec<i16> {
        self.samples
            .iter()
            .map(|&s| s.round().clamp(i16::MIN as f64, i16::MAX as f64) as i16)
            .collect()
    }
}

/// All sixteen keys in keypad order.
pub const ALL_KEYS: [char; 16] = [
    '1', '2', '3', 'A', '4', '5', '6', 'B', '7', '8', '9', 'C', '*', '0', '#', 'D',
];

/// Nominal frequencies of all eight DTMF tones (rows then columns), Hz.
pub fn all_tone_frequencies() -> [f32; 8] {
    [
        ROW_HZ[0], ROW_HZ[1], ROW_HZ[2], ROW_HZ[3], COL_HZ[0], COL_HZ[1], COL_HZ[2], COL_HZ[3],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_dbm0_sine_has_the_g711_peak() {
        assert!((dbm0_to_peak(0.0) - crate::dsp::g711::DBM0_PEAK).abs() < 1.0);
        assert!((dbm0_to_peak(-10.0) - 7219.0).abs() < 1.0);
    }

    #[test]
    fn same_seed_same_signal() {
        let make = |seed| {
            let mut s = Signal::new(8000, seed);
            s.burst(&Burst::new('5', 400, -10.0)).add_noise(-30.0);
            s.to_i16()
        };
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }

    #[test]
    fn noise_has_the_requested_power() {
        let mut s = Signal::new(8000, 1);
        s.silence(80_000).add_noise(-20.0);
        let rms = (s.samples().iter().map(|x| x * x).sum::<f64>() / 80_000.0).sqrt();
        let db = 20.0 * (rms / dbm0_to_rms(0.0)).log10();
        assert!((db + 20.0).abs() < 0.1, "noise at {db} dBm0");
    }
}
