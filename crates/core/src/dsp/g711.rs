//! ITU-T G.711 µ-law and A-law companding.
//!
//! The codecs every telephone speaks. Decoding goes through 256-entry tables built at compile
//! time; encoding follows the segment search of the G.711 reference code (as in the classic
//! public-domain `g711.c`), so that every code decodes and re-encodes to itself.
//!
//! Linear samples are 16-bit: A-law uses the 13-bit domain shifted left by 3, µ-law the 14-bit
//! domain shifted left by 2 (largest decoded values ±32256 and ±32124).

/// Peak of a 0 dBm0 sine in the 16-bit domain under the A-law definition (Tmax = +3.14 dBm0).
/// The whole project uses this convention for both laws (as spandsp does).
pub const DBM0_PEAK: f64 = 22_827.0;
/// Theoretical maximum load of A-law, dBm0. (A level that happens to read like π.)
#[allow(clippy::approx_constant)]
pub const ALAW_TMAX_DBM0: f64 = 3.14;
/// Theoretical maximum load of µ-law, dBm0.
pub const ULAW_TMAX_DBM0: f64 = 3.17;
/// µ-law full scale in the 16-bit domain (8159 in the 14-bit domain, × 4).
pub const ULAW_FULL_SCALE: f64 = 32_636.0;
/// A-law full scale in the 16-bit domain (4096 in the 13-bit domain, × 8).
pub const ALAW_FULL_SCALE: f64 = 32_768.0;

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 8159;
const SEG_UEND: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const SEG_AEND: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

const fn ulaw_decode_one(code: u8) -> i16 {
    let u = !code as i32;
    let mut t = ((u & 0x0F) << 3) + ULAW_BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 {
        ULAW_BIAS - t
    } else {
        t - ULAW_BIAS
    }) as i16
}

const fn alaw_decode_one(code: u8) -> i16 {
    let a = (code ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn build_table(alaw: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if alaw {
            alaw_decode_one(i as u8)
        } else {
            ulaw_decode_one(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_TABLE: [i16; 256] = build_table(false);
static ALAW_TABLE: [i16; 256] = build_table(true);

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// Decodes one µ-law byte to a 16-bit linear sample.
#[inline]
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// Decodes one A-law byte to a 16-bit linear sample.
#[inline]
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

/// Encodes a 16-bit linear sample as µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut value = (sample as i32) >> 2;
    let mask: i32 = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(ULAW_CLIP) + (ULAW_BIAS >> 2);
    let seg = segment(value, &SEG_UEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let code = ((seg as i32) << 4) | ((value >> (seg + 1)) & 0x0F);
    (code ^ mask) as u8
}

/// Encodes a 16-bit linear sample as A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut value = (sample as i32) >> 3;
    let mask: i32 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &SEG_AEND);
    if seg >= 8 {
        return (0x7F ^ mask) as u8;
    }
    let shift = if seg < 2 { 1 } else { seg };
    let code = ((seg as i32) << 4) | ((value >> shift) & 0x0F);
    (code ^ mask) as u8
}

/// The two G.711 laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law (PCMU, RTP payload type 0).
    Ulaw,
    /// A-law (PCMA, RTP payload type 8).
    Alaw,
}

impl Law {
    /// Decodes a buffer of G.711 bytes, appending linear samples to `out`.
    pub fn decode_into(self, codes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Law::Ulaw => &ULAW_TABLE,
            Law::Alaw => &ALAW_TABLE,
        };
        out.extend(codes.iter().map(|&c| table[c as usize]));
    }

    /// Encodes linear samples, appending G.711 bytes to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            Law::Ulaw => out.extend(samples.iter().map(|&s| linear_to_ulaw(s))),
            Law::Alaw => out.extend(samples.iter().map(|&s| linear_to_alaw(s))),
        }
    }

    /// Encodes and decodes again: what a sample looks like after crossing a G.711 channel.
    pub fn round_trip(self, samples: &[i16]) -> Vec<i16> {
        samples
            .iter()
            .map(|&s| match self {
                Law::Ulaw => ulaw_to_linear(linear_to_ulaw(s)),
                Law::Alaw => alaw_to_linear(linear_to_alaw(s)),
            })
            .collect()
    }

    /// Level in dBm0 of a linear signal with the given RMS, on this law's own scale.
    pub fn rms_to_dbm0(self, rms: f64) -> f64 {
        let (full_scale, tmax) = match self {
            Law::Ulaw => (ULAW_FULL_SCALE, ULAW_TMAX_DBM0),
            Law::Alaw => (ALAW_FULL_SCALE, ALAW_TMAX_DBM0),
        };
        20.0 * (rms * std::f64::consts::SQRT_2 / full_scale).log10() + tmax
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alaw_code_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(code)),
                code,
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn every_ulaw_code_round_trips_except_negative_zero() {
        // 0x7F is µ-law's "negative zero": it decodes to 0, which encodes as positive zero 0xFF.
        for code in 0..=255u8 {
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(code)),
                expected,
                "code {code:#04x}"
            );
        }
        assert_eq!(ulaw_to_linear(0x7F), 0);
    }

    #[test]
    fn decoded_extremes_match_the_standard() {
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    fn rms(samples: &[i16]) -> f64 {
        (samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    }

    #[test]
    fn digital_milliwatt_is_zero_dbm0() {
        let mut ulaw = Vec::new();
        Law::Ulaw.decode_into(&[0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E], &mut ulaw);
        let mut alaw = Vec::new();
        Law::Alaw.decode_into(&[0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4], &mut alaw);
        let ulaw_db = Law::Ulaw.rms_to_dbm0(rms(&ulaw));
        let alaw_db = Law::Alaw.rms_to_dbm0(rms(&alaw));
        assert!(ulaw_db.abs() < 0.01, "µ-law milliwatt at {ulaw_db} dBm0");
        assert!(alaw_db.abs() < 0.01, "A-law milliwatt at {alaw_db} dBm0");
    }

    #[test]
    fn encoding_is_monotonic() {
        let mut last_u = i16::MIN;
        let mut last_a = i16::MIN;
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            assert!(u >= last_u && a >= last_a, "not monotonic at {s}");
            last_u = u;
            last_a = a;
        }
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for s in (i16::MIN..=i16::MAX).step_by(3) {
            let u = ulaw_to_linear(linear_to_ulaw(s)) as i32;
            let a = alaw_to_linear(linear_to_alaw(s)) as i32;
            let mag = (s as i32).abs();
            // Half a step of the segment the sample falls in, plus the clip region.
            let bound = (mag / 16).max(16) + if mag > 32000 { 700 } else { 0 };
            assert!((u - s as i32).abs() <= bound, "µ-law error at {s}: {u}");
            assert!((a - s as i32).abs() <= bound, "A-law error at {s}: {a}");
        }
    }
}
