//! QA pictures of a recording (`hotdesk detect --plot FILE.png`): its spectrogram zoomed to
//! 300-2000 Hz with the eight DTMF frequencies marked, each detected key as a labelled span,
//! and each candidate pair the detector refused with its reason, so that a QA engineer sees
//! why a key was missed instead of reading trace lines.
//!
//! Drawn with plotters on its bitmap backend; text uses DejaVu Sans Mono compiled in
//! (`DejaVuSansMono.ttf`, licence in `DejaVu-LICENSE.txt`), so no system font is needed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use hotdesk_core::audio::{self, AudioError};
use hotdesk_core::dsp::dtmf::{
    COL_HZ, DtmfDetector, DtmfParams, KeyPress, PressCollector, ROW_HZ, Refusal, RefusalReason,
    SAMPLE_RATE, digit_frequencies,
};

/// Lowest and highest frequency shown, Hz.
const BAND: (f64, f64) = (300.0, 2000.0);
/// Spectrogram frame (32 ms, Hann) and step (10 ms), samples.
const FRAME: usize = 256;
const STEP: usize = 80;
/// Frequency resolution of the picture, Hz.
const BIN_HZ: f64 = 10.0;
/// Picture size, pixels.
const SIZE: (u32, u32) = (1600, 720);
/// Dynamic range shown, dB under the loudest cell.
const RANGE_DB: f32 = 60.0;

/// Why a picture could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed (writing the PNG, or the font).
    #[error("cannot draw: {0}")]
    Draw(String),
}

/// A magnitude spectrogram of the band, one column per [`STEP`].
#[derive(Debug, Clone, Default)]
pub struct Spectrogram {
    /// Power in dB per column, [`Self::bins`] values each, lowest frequency first.
    pub columns: Vec<Vec<f32>>,
}

impl Spectrogram {
    /// Frequencies of the rows, Hz.
    pub fn bins() -> Vec<f64> {
        let n = ((BAND.1 - BAND.0) / BIN_HZ) as usize + 1;
        (0..n).map(|i| BAND.0 + i as f64 * BIN_HZ).collect()
    }
}

/// Everything the picture shows.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The keys detected.
    pub presses: Vec<KeyPress>,
    /// The candidates refused.
    pub refusals: Vec<Refusal>,
    /// The spectrogram.
    pub spectrogram: Spectrogram,
    /// Length of the recording, samples at 8 kHz.
    pub samples: u64,
}

/// Streams a file through the detector (keeping its refusals) and a spectrogram.
pub fn analyse(path: &Path, params: &DtmfParams) -> Result<Analysis, AudioError> {
    let mut detector = DtmfDetector::new(params.clone()).with_refusals();
    let mut presses = PressCollector::default();
    let mut spectrum = Spectrum::new();
    let info = audio::stream(path, &mut |block| {
        detector.push(block);
        presses.drain(&mut detector);
        spectrum.push(block);
    })?;
    detector.finish();
    presses.drain(&mut detector);
    Ok(Analysis {
        presses: presses.into_presses(),
        refusals: detector.take_refusals(),
        spectrogram: spectrum.finish(),
        samples: info.samples,
    })
}

/// A running short-time DFT over the band.
struct Spectrum {
    window: Vec<f32>,
    /// cos and -sin of each row's frequency over one frame.
    kernel: Vec<(Vec<f32>, Vec<f32>)>,
    buffer: Vec<f32>,
    out: Spectrogram,
}

impl Spectrum {
    fn new() -> Self {
        let tau = std::f64::consts::TAU;
        let window = (0..FRAME)
            .map(|n| (0.5 - 0.5 * (tau * (n as f64 + 0.5) / FRAME as f64).cos()) as f32)
            .collect();
        let kernel = Spectrogram::bins()
            .into_iter()
            .map(|f| {
                let w = tau * f / SAMPLE_RATE as f64;
                (0..FRAME)
                    .map(|n| ((w * n as f64).cos() as f32, (-w * n as f64).sin() as f32))
                    .unzip()
            })
            .collect();
        Spectrum {
            window,
            kernel,
            buffer: Vec::with_capacity(FRAME + STEP),
            out: Spectrogram::default(),
        }
    }

    fn push(&mut self, block: &[i16]) {
        for &v in block {
            self.buffer.push(v as f32);
            if self.buffer.len() == FRAME {
                self.column();
                self.buffer.drain(..STEP);
            }
        }
    }

    fn column(&mut self) {
        let x: Vec<f32> = self
            .buffer
            .iter()
            .zip(&self.window)
            .map(|(v, w)| v * w)
            .collect();
        let column = self
            .kernel
            .iter()
            .map(|(cos, sin)| {
                let re: f32 = x.iter().zip(cos).map(|(a, b)| a * b).sum();
                let im: f32 = x.iter().zip(sin).map(|(a, b)| a * b).sum();
                10.0 * (re * re + im * im + 1.0).log10()
            })
            .collect();
        self.out.columns.push(column);
    }

    fn finish(self) -> Spectrogram {
        self.out
    }
}

/// Heat colour of a level in 0..1 (dark blue, purple, orange, pale yellow).
fn heat(v: f32) -> RGBColor {
    let stops: [(f32, [f32; 3]); 5] = [
        (0.0, [8.0, 8.0, 32.0]),
        (0.35, [60.0, 20.0, 110.0]),
        (0.6, [180.0, 50.0, 90.0]),
        (0.8, [245.0, 140.0, 40.0]),
        (1.0, [252.0, 250.0, 190.0]),
    ];
    let v = v.clamp(0.0, 1.0);
    let i = stops
        .iter()
        .rposition(|(at, _)| *at <= v)
        .unwrap_or(0)
        .min(3);
    let (a, ca) = stops[i];
    let (b, cb) = stops[i + 1];
    let t = (v - a) / (b - a);
    let mix = |k: usize| (ca[k] + (cb[k] - ca[k]) * t) as u8;
    RGBColor(mix(0), mix(1), mix(2))
}

fn short(reason: RefusalReason) -> &'static str {
    match reason {
        RefusalReason::Frequency => "freq",
        RefusalReason::HarmonicRatio => "harm",
        RefusalReason::Level => "level",
        RefusalReason::Twist => "twist",
        RefusalReason::EnergyShare => "share",
        RefusalReason::Octave => "octave",
        RefusalReason::RelativePeak => "peak",
        RefusalReason::Coverage => "cover",
        RefusalReason::TooShort => "short",
    }
}

/// Refusals of the same key for the same reason less than 60 ms apart: one mark.
fn merged(refusals: &[Refusal]) -> Vec<(Refusal, usize)> {
    let mut out: Vec<(Refusal, usize)> = Vec::new();
    for r in refusals {
        match out.last_mut() {
            Some((last, n))
                if last.digit == r.digit && last.reason == r.reason && r.at - last.at < 480 =>
            {
                last.at = r.at;
                *n += 1;
            }
            _ => out.push((*r, 1)),
        }
    }
    out
}

fn draw_err(e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw(e.to_string())
}

/// Draws the picture to `png`.
pub fn draw(analysis: &Analysis, title: &str, png: &Path) -> Result<(), PlotError> {
    register_font(
        "sans-serif",
        FontStyle::Normal,
        include_bytes!("DejaVuSansMono.ttf"),
    )
    .map_err(|_| PlotError::Draw("the built-in font does not load".into()))?;
    let seconds = (analysis.samples as f64 / SAMPLE_RATE as f64).max(0.1);
    let root = BitMapBackend::new(png, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .right_y_label_area_size(40)
        .build_cartesian_2d(0f64..seconds, BAND.0..BAND.1)
        .map_err(draw_err)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("time (s)")
        .y_desc("Hz")
        .y_label_formatter(&|f| format!("{f:.0}"))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(draw_err)?;
    draw_spectrogram(&mut chart, &analysis.spectrogram)?;
    // The eight DTMF frequencies.
    for f in ROW_HZ.iter().chain(&COL_HZ).map(|&f| f as f64) {
        chart
            .draw_series(LineSeries::new(
                [(0.0, f), (seconds, f)],
                RGBColor(120, 220, 255).stroke_width(1),
            ))
            .map_err(draw_err)?;
        chart
            .draw_series([Text::new(
                format!("{f:.0}"),
                (seconds, f + 6.0),
                ("sans-serif", 12)
                    .into_font()
                    .color(&RGBColor(120, 220, 255)),
            )])
            .map_err(draw_err)?;
    }
    let t = |s: u64| s as f64 / SAMPLE_RATE as f64;
    // Detected keys: a box over both tones for the press, labelled with the key.
    for p in &analysis.presses {
        let (low, high) = digit_frequencies(p.digit).unwrap_or_default();
        let (low, high) = (low as f64, high as f64);
        let span = (t(p.start), t(p.end));
        chart
            .draw_series([
                Rectangle::new(
                    [(span.0, low - 25.0), (span.1, high + 25.0)],
                    GREEN.stroke_width(2),
                ),
                Rectangle::new(
                    [(span.0, 1900.0), (span.1, 1990.0)],
                    GREEN.mix(0.8).filled(),
                ),
            ])
            .map_err(draw_err)?;
        chart
            .draw_series([Text::new(
                p.digit.to_string(),
                (span.0, 1985.0),
                ("sans-serif", 18).into_font().color(&BLACK),
            )])
            .map_err(draw_err)?;
    }
    // Refused candidates: a cross on both tones and the key with the reason.
    for (r, _) in merged(&analysis.refusals) {
        let (low, high) = digit_frequencies(r.digit).unwrap_or_default();
        let x = t(r.at);
        let red = RGBColor(255, 70, 70);
        chart
            .draw_series(
                [low as f64, high as f64]
                    .into_iter()
                    .map(|f| Cross::new((x, f), 4, red.stroke_width(2))),
            )
            .map_err(draw_err)?;
        chart
            .draw_series([Text::new(
                format!("{}:{}", r.digit, short(r.reason)),
                (x, high as f64 + 55.0),
                ("sans-serif", 14).into_font().color(&red),
            )])
            .map_err(draw_err)?;
    }
    root.present().map_err(draw_err)
}

type Chart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The spectrogram as coloured cells, columns merged (loudest kept) to the picture's width.
fn draw_spectrogram(chart: &mut Chart, spectrogram: &Spectrogram) -> Result<(), PlotError> {
    let columns = &spectrogram.columns;
    if columns.is_empty() {
        return Ok(());
    }
    let loudest = columns
        .iter()
        .flat_map(|c| c.iter().copied())
        .fold(f32::MIN, f32::max);
    let per_pixel = columns.len().div_ceil(SIZE.0 as usize).max(1);
    let bins = Spectrogram::bins();
    let step = STEP as f64 / SAMPLE_RATE as f64;
    let half_frame = FRAME as f64 / 2.0 / SAMPLE_RATE as f64;
    let cells = columns
        .chunks(per_pixel)
        .enumerate()
        .flat_map(|(i, group)| {
            let x0 = (i * per_pixel) as f64 * step + half_frame - step / 2.0;
            let x1 = x0 + group.len() as f64 * step;
            bins.iter().enumerate().map(move |(k, &f)| {
                let level = group.iter().map(|c| c[k]).fold(f32::MIN, f32::max);
                let v = 1.0 - (loudest - level) / RANGE_DB;
                Rectangle::new(
                    [(x0.max(0.0), f - BIN_HZ / 2.0), (x1, f + BIN_HZ / 2.0)],
                    heat(v).filled(),
                )
            })
        });
    chart.draw_series(cells).map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_from_dark_to_light() {
        let dark = heat(0.0);
        let light = heat(1.0);
        assert!(dark.0 < 20 && light.0 > 240 && light.2 > 150);
    }

    #[test]
    fn refusals_close_together_merge() {
        let r = |at| Refusal {
            digit: '5',
            at,
            reason: RefusalReason::EnergyShare,
        };
        let m = merged(&[r(1000), r(1040), r(1080), r(5000)]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].1, 3);
    }
}
