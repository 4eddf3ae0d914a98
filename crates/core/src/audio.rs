//! Reading recorded audio for QA and prompts: any file symphonia can decode, mixed to mono and
//! resampled to the 8 kHz the telephone network (and the detector) runs at.
//!
//! Formats: WAV (PCM 8/16/24/32-bit, float, G.711 µ-law/A-law), FLAC, OGG/Vorbis, MP3, at any
//! rate and channel count. Every failure is an [`AudioError`] naming the file and the reason;
//! nothing here panics on bad input (a panic inside a decoder is caught and reported too).

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::SequentialSliceOfVecs;
use rubato::{Fft, FixedSync, Resampler};
use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

/// The telephone rate everything is converted to.
pub const TELEPHONE_RATE: u32 = 8000;

/// Sample rates accepted: from a quarter of telephone rate to 384 kHz. Outside them a file is
/// refused: a header claiming 2.55 GHz (found by the `audio_load` fuzzer) took the resampler
/// 40 s and more than 2 GB for a 16 KB file.
pub const RATES: std::ops::RangeInclusive<u32> = 2000..=384_000;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The file could not be opened.
    #[error("{path}: cannot open: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not an audio container symphonia recognises.
    #[error("{path}: not a recognised audio file ({reason})")]
    NotAudio {
        /// The file.
        path: PathBuf,
        /// What the prober said.
        reason: String,
    },
    /// A container we read, holding a codec or feature we do not.
    #[error("{path}: unsupported audio: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What is unsupported.
        reason: String,
    },
    /// The stream ends before its headers say it should.
    #[error("{path}: truncated: {reason}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where it stopped.
        reason: String,
    },
    /// The stream is corrupt.
    #[error("{path}: malformed audio: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        reason: String,
    },
    /// A well-formed file with no samples in it.
    #[error("{path}: no audio samples")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// Decoded audio at 8 kHz mono.
#[derive(Debug, Clone)]
pub struct Audio {
    /// 16-bit linear samples at [`TELEPHONE_RATE`].
    pub samples: Vec<i16>,
    /// The file's own sample rate.
    pub source_rate: u32,
    /// The file's channel count (mixed down to one).
    pub source_channels: usize,
}

impl Audio {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / TELEPHONE_RATE as f64
    }
}

/// Mono samples in [-1, 1] at the file's own rate.
struct Decoded {
    mono: Vec<f32>,
    rate: u32,
    channels: usize,
}

/// Reads a file and converts it to 8 kHz mono 16-bit.
pub fn load(path: &Path) -> Result<Audio, AudioError> {
    if path.is_dir() {
        return Err(AudioError::Open {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        });
    }
    let file = File::open(path).map_err(|source| AudioError::Open {
        path: path.to_owned(),
        source,
    })?;
    load_source(path, Box::new(file))
}

/// Converts audio held in memory (an upload, a fuzz input) as [`load`] does a file; `label`
/// names it in errors and its extension is the format hint.
pub fn load_bytes(label: &Path, bytes: Vec<u8>) -> Result<Audio, AudioError> {
    load_source(label, Box::new(std::io::Cursor::new(bytes)))
}

fn load_source(path: &Path, source: Box<dyn MediaSource>) -> Result<Audio, AudioError> {
    // The source is dropped with the panic, so nothing half-updated is observed afterwards.
    let decoded = std::panic::catch_unwind(AssertUnwindSafe(|| decode(path, source)))
        .unwrap_or_else(|_| {
            Err(AudioError::Malformed {
                path: path.to_owned(),
                reason: "the decoder failed on this stream".into(),
            })
        })?;
    if decoded.mono.is_empty() {
        return Err(AudioError::Empty {
            path: path.to_owned(),
        });
    }
    let at_8k =
        resample(&decoded.mono, decoded.rate).map_err(|reason| AudioError::Unsupported {
            path: path.to_owned(),
            reason,
        })?;
    Ok(Audio {
        samples: to_i16(&at_8k),
        source_rate: decoded.rate,
        source_channels: decoded.channels,
    })
}

fn decode(path: &Path, source: Box<dyn MediaSource>) -> Result<Decoded, AudioError> {
    let err =
        |make: fn(PathBuf, String) -> AudioError, reason: String| make(path.to_owned(), reason);
    let not_audio = |p, reason| AudioError::NotAudio { path: p, reason };
    let unsupported = |p, reason| AudioError::Unsupported { path: p, reason };

    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| err(not_audio, e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| err(not_audio, "no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| err(unsupported, "no audio codec parameters".into()))?
        .clone();
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| err(unsupported, e.to_string()))?;

    let mut mono = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    let mut rate = params.sample_rate.unwrap_or(0);
    if rate != 0 && !RATES.contains(&rate) {
        return Err(err(
            unsupported,
            format!("sample rate {rate} Hz is outside {RATES:?} Hz"),
        ));
    }
    let mut channels = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(AudioError::Truncated {
                    path: path.to_owned(),
                    reason: format!("stream ends after {} samples", mono.len()),
                });
            }
            Err(e) => return Err(classify(path, e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = decoder.decode(&packet).map_err(|e| classify(path, e))?;
        let spec = buffer.spec();
        rate = spec.rate();
        channels = spec.channels().count().max(1);
        buffer.copy_to_vec_interleaved(&mut interleaved);
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
    }
    if rate == 0 {
        return Err(err(unsupported, "unknown sample rate".into()));
    }
    if !RATES.contains(&rate) {
        return Err(err(
            unsupported,
            format!("sample rate {rate} Hz is outside {RATES:?} Hz"),
        ));
    }
    Ok(Decoded {
        mono,
        rate,
        channels,
    })
}

fn classify(path: &Path, e: SymphoniaError) -> AudioError {
    let path = path.to_owned();
    match e {
        SymphoniaError::Unsupported(what) => AudioError::Unsupported {
            path,
            reason: what.into(),
        },
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Truncated {
                path,
                reason: io.to_string(),
            }
        }
        other => AudioError::Malformed {
            path,
            reason: other.to_string(),
        },
    }
}

/// Resamples mono audio to 8 kHz with rubato's FFT resampler (fixed ratio, band-limited).
fn resample(mono: &[f32], rate: u32) -> Result<Vec<f32>, String> {
    if rate == TELEPHONE_RATE {
        return Ok(mono.to_vec());
    }
    let mut resampler = Fft::<f32>::new(
        rate as usize,
        TELEPHONE_RATE as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|e| format!("cannot resample from {rate} Hz: {e}"))?;
    let channels = [mono.to_vec()];
    let input = SequentialSliceOfVecs::new(&channels, 1, mono.len())
        .map_err(|e| format!("resampler input: {e}"))?;
    let output = resampler
        .process_all(&input, mono.len(), None)
        .map_err(|e| format!("resampling from {rate} Hz: {e}"))?;
    Ok(output.take_data())
}

fn to_i16(samples: &[f32]) -> Vec<i16> {
    samples
        .iter()
        .map(|&v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Writes 8 kHz mono 16-bit WAV (for QA artefacts and tests).
pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), hound::Error> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: TELEPHONE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec)?;
    for &s in samples {
        writer.write_sample(s)?;
    }
    writer.finalize()
}
