//! Reading recorded audio for QA and prompts: any file symphonia can decode, mixed to mono and
//! resampled to the 8 kHz the telephone network (and the detector) runs at.
//!
//! Formats: WAV (PCM 8/16/24/32-bit, float, G.711 µ-law/A-law), FLAC, OGG/Vorbis, MP3, at any
//! rate and channel count. Every failure is an [`AudioError`] naming the file and the reason;
//! nothing here panics on bad input (a panic inside a decoder is caught and reported too).
//!
//! [`load`] returns a whole file; [`stream`] hands the same samples over in blocks as they are
//! decoded, so memory stays bounded whatever the length (an hour of audio is 57 MB as 16-bit,
//! 230 MB as the decoder's f32). 8 kHz mono WAV in 16-bit PCM or G.711, the telephone's own
//! formats, skip the decoder altogether: their bytes become samples directly.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use rubato::audioadapter_buffers::direct::{SequentialSlice, SequentialSliceOfVecs};
use rubato::{Fft, FixedSync, Indexing, Resampler};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::dsp::g711::Law;

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

/// A file's first audio track, probed, with its decoder.
struct Opened {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    params: AudioCodecParameters,
}

/// Probes `source` (named by `path` in errors and for its extension) and opens a decoder for
/// its first audio track.
fn open(path: &Path, source: Box<dyn MediaSource>) -> Result<Opened, AudioError> {
    let not_audio = |reason: String| AudioError::NotAudio {
        path: path.to_owned(),
        reason,
    };
    let unsupported = |reason: String| AudioError::Unsupported {
        path: path.to_owned(),
        reason,
    };
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(source, Default::default());
    let format = symphonia::default::get_probe()
        .probe(
            &hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| not_audio(e.to_string()))?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| not_audio("no audio track".into()))?;
    let track_id = track.id;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| unsupported("no audio codec parameters".into()))?
        .clone();
    let decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|e| unsupported(e.to_string()))?;
    Ok(Opened {
        format,
        decoder,
        track_id,
        params,
    })
}

fn decode(path: &Path, source: Box<dyn MediaSource>) -> Result<Decoded, AudioError> {
    let err =
        |make: fn(PathBuf, String) -> AudioError, reason: String| make(path.to_owned(), reason);
    let unsupported = |p, reason| AudioError::Unsupported { path: p, reason };
    let Opened {
        mut format,
        mut decoder,
        track_id,
        params,
    } = open(path, source)?;

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

/// What [`stream`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamInfo {
    /// 8 kHz samples handed over.
    pub samples: u64,
    /// The file's own sample rate.
    pub source_rate: u32,
    /// The file's channel count (mixed down to one).
    pub source_channels: usize,
}

/// Bytes read at a time on the direct path (and samples handed over at a time: half as many).
const BLOCK_BYTES: usize = 64 * 1024;

/// Reads a file and hands its 8 kHz mono 16-bit samples to `sink` block by block, as they
/// are decoded: the same samples [`load`] returns, in bounded memory. On an error, the
/// samples already handed over stay handed over.
pub fn stream(path: &Path, sink: &mut dyn FnMut(&[i16])) -> Result<StreamInfo, AudioError> {
    if path.is_dir() {
        return Err(AudioError::Open {
            path: path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::IsADirectory, "is a directory"),
        });
    }
    let open_err = |source| AudioError::Open {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(open_err)?;
    if let Some(direct) = telephone_wav(&mut file).map_err(open_err)? {
        return stream_direct(path, &mut file, direct, sink);
    }
    file.seek(SeekFrom::Start(0)).map_err(open_err)?;
    // The sink is dropped with the panic, so nothing half-updated is observed afterwards.
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        decode_stream(path, Box::new(file), sink)
    }))
    .unwrap_or_else(|_| {
        Err(AudioError::Malformed {
            path: path.to_owned(),
            reason: "the decoder failed on this stream".into(),
        })
    })
}

/// The sample format of an 8 kHz mono WAV the direct path reads.
#[derive(Debug, Clone, Copy)]
enum Direct {
    Pcm16 { bytes: u64 },
    G711 { law: Law, bytes: u64 },
}

/// Recognises an 8 kHz mono WAV in 16-bit PCM or G.711 whose data chunk is whole, leaving the
/// file at its first data byte. Anything else (other formats, a truncated or empty data
/// chunk, odd headers) goes to the decoder, which reports it as [`load`] does.
fn telephone_wav(file: &mut File) -> std::io::Result<Option<Direct>> {
    let size = file.metadata()?.len();
    let mut head = [0u8; 12];
    if file.read_exact(&mut head).is_err() || &head[..4] != b"RIFF" || &head[8..] != b"WAVE" {
        return Ok(None);
    }
    let mut format = None;
    loop {
        let mut chunk = [0u8; 8];
        if file.read_exact(&mut chunk).is_err() {
            return Ok(None);
        }
        let len = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as u64;
        match &chunk[..4] {
            b"fmt " => {
                if !(16..=64).contains(&len) {
                    return Ok(None);
                }
                let mut fmt = vec![0u8; len as usize];
                file.read_exact(&mut fmt)?;
                if len % 2 == 1 {
                    file.seek(SeekFrom::Current(1))?;
                }
                let u16_at = |i: usize| u16::from_le_bytes([fmt[i], fmt[i + 1]]);
                let rate = u32::from_le_bytes([fmt[4], fmt[5], fmt[6], fmt[7]]);
                let mut tag = u16_at(0);
                if tag == 0xFFFE && len >= 26 {
                    tag = u16_at(24); // WAVE_FORMAT_EXTENSIBLE: the sub-format's tag
                }
                format = Some((tag, u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                let here = file.stream_position()?;
                let whole = len > 0 && here + len <= size;
                return Ok(match format {
                    Some((1, 1, TELEPHONE_RATE, 16)) if whole && len.is_multiple_of(2) => {
                        Some(Direct::Pcm16 { bytes: len })
                    }
                    Some((6, 1, TELEPHONE_RATE, 8)) if whole => Some(Direct::G711 {
                        law: Law::Alaw,
                        bytes: len,
                    }),
                    Some((7, 1, TELEPHONE_RATE, 8)) if whole => Some(Direct::G711 {
                        law: Law::Ulaw,
                        bytes: len,
                    }),
                    _ => None,
                });
            }
            _ => {
                file.seek(SeekFrom::Current((len + (len & 1)) as i64))?;
            }
        }
    }
}

/// The direct path: bytes to samples, one block at a time.
fn stream_direct(
    path: &Path,
    file: &mut File,
    direct: Direct,
    sink: &mut dyn FnMut(&[i16]),
) -> Result<StreamInfo, AudioError> {
    let (mut left, law) = match direct {
        Direct::Pcm16 { bytes } => (bytes, None),
        Direct::G711 { law, bytes } => (bytes, Some(law)),
    };
    let mut bytes = vec![0u8; BLOCK_BYTES];
    let mut samples = Vec::with_capacity(BLOCK_BYTES);
    let mut count = 0u64;
    while left > 0 {
        let want = (left as usize).min(BLOCK_BYTES);
        file.read_exact(&mut bytes[..want])
            .map_err(|e| AudioError::Truncated {
                path: path.to_owned(),
                reason: format!("stream ends after {count} samples: {e}"),
            })?;
        samples.clear();
        match law {
            None => {
                // A plain loop over a sized buffer: the compiler makes it a vector copy.
                samples.resize(want / 2, 0);
                for (sample, b) in samples.iter_mut().zip(bytes[..want].chunks_exact(2)) {
                    *sample = i16::from_le_bytes([b[0], b[1]]);
                }
            }
            Some(law) => law.decode_into(&bytes[..want], &mut samples),
        }
        sink(&samples);
        count += samples.len() as u64;
        left -= want as u64;
    }
    Ok(StreamInfo {
        samples: count,
        source_rate: TELEPHONE_RATE,
        source_channels: 1,
    })
}

/// The decoder path of [`stream`]: symphonia packet by packet, mixed down, resampled on the fly.
fn decode_stream(
    path: &Path,
    source: Box<dyn MediaSource>,
    sink: &mut dyn FnMut(&[i16]),
) -> Result<StreamInfo, AudioError> {
    let err =
        |make: fn(PathBuf, String) -> AudioError, reason: String| make(path.to_owned(), reason);
    let unsupported = |p, reason| AudioError::Unsupported { path: p, reason };
    let Opened {
        mut format,
        mut decoder,
        track_id,
        params,
    } = open(path, source)?;
    let rate_ok = |rate: u32| {
        if RATES.contains(&rate) {
            Ok(())
        } else {
            Err(err(
                unsupported,
                format!("sample rate {rate} Hz is outside {RATES:?} Hz"),
            ))
        }
    };
    if let Some(rate) = params.sample_rate.filter(|&r| r != 0) {
        rate_ok(rate)?;
    }
    let mut interleaved: Vec<f32> = Vec::new();
    let mut mono: Vec<f32> = Vec::new();
    let mut out: Vec<i16> = Vec::new();
    let mut resampler: Option<StreamResampler> = None;
    let (mut rate, mut channels, mut decoded, mut count) = (0u32, 0usize, 0u64, 0u64);
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(AudioError::Truncated {
                    path: path.to_owned(),
                    reason: format!("stream ends after {decoded} samples"),
                });
            }
            Err(e) => return Err(classify(path, e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = decoder.decode(&packet).map_err(|e| classify(path, e))?;
        let spec = buffer.spec();
        if rate == 0 {
            rate = spec.rate();
            rate_ok(rate)?;
            if rate != TELEPHONE_RATE {
                resampler =
                    Some(StreamResampler::new(rate).map_err(|reason| err(unsupported, reason))?);
            }
        }
        channels = spec.channels().count().max(1);
        buffer.copy_to_vec_interleaved(&mut interleaved);
        mono.clear();
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        decoded += mono.len() as u64;
        out.clear();
        match resampler.as_mut() {
            Some(r) => r
                .push(&mono, &mut out)
                .map_err(|reason| err(unsupported, reason))?,
            None => out.extend(mono.iter().map(|&v| to_i16_one(v))),
        }
        count += out.len() as u64;
        sink(&out);
    }
    if decoded == 0 {
        return Err(AudioError::Empty {
            path: path.to_owned(),
        });
    }
    if let Some(r) = resampler.as_mut() {
        out.clear();
        r.finish(&mut out)
            .map_err(|reason| err(unsupported, reason))?;
        count += out.len() as u64;
        sink(&out);
    }
    Ok(StreamInfo {
        samples: count,
        source_rate: rate,
        source_channels: channels,
    })
}

/// rubato's FFT resampler fed block by block, trimming its delay and its tail exactly as
/// `process_all` does on a whole clip, so [`stream`] and [`load`] give the same samples.
struct StreamResampler {
    inner: Fft<f32>,
    pending: Vec<f32>,
    input: Vec<f32>,
    output: Vec<f32>,
    to_trim: usize,
    consumed: u64,
    emitted: u64,
}

impl StreamResampler {
    fn new(rate: u32) -> Result<Self, String> {
        let inner = Fft::<f32>::new(
            rate as usize,
            TELEPHONE_RATE as usize,
            1024,
            1,
            FixedSync::Input,
        )
        .map_err(|e| format!("cannot resample from {rate} Hz: {e}"))?;
        Ok(StreamResampler {
            to_trim: inner.output_delay(),
            output: vec![0.0; inner.output_frames_max()],
            inner,
            pending: Vec::new(),
            input: Vec::new(),
            consumed: 0,
            emitted: 0,
        })
    }

    /// Resamples every whole chunk of `input` that is not the stream's last (`process_all`
    /// handles its last chunk, even a whole one, as a partial one).
    fn push(&mut self, input: &[f32], out: &mut Vec<i16>) -> Result<(), String> {
        self.pending.extend_from_slice(input);
        let chunk = self.inner.input_frames_next();
        let mut start = 0;
        while self.pending.len() - start > chunk {
            self.run(start, None, out)?;
            start += chunk;
        }
        self.pending.drain(..start);
        Ok(())
    }

    /// The last partial chunk, then zeros until the whole clip's output length is reached.
    fn finish(&mut self, out: &mut Vec<i16>) -> Result<(), String> {
        let total = self.consumed + self.pending.len() as u64;
        let expected = (self.inner.resample_ratio() * total as f64).ceil() as u64;
        if !self.pending.is_empty() {
            let partial = self.pending.len();
            self.run(0, Some(partial), out)?;
            self.pending.clear();
        }
        while self.emitted < expected {
            self.run(0, Some(0), out)?;
        }
        // Whatever went past the clip's length is the resampler's tail of zeros.
        let extra = (self.emitted - expected) as usize;
        out.truncate(out.len() - extra.min(out.len()));
        self.emitted = expected;
        Ok(())
    }

    fn run(
        &mut self,
        start: usize,
        partial: Option<usize>,
        out: &mut Vec<i16>,
    ) -> Result<(), String> {
        let chunk = self.inner.input_frames_next();
        self.input.clear();
        self.input.resize(chunk, 0.0);
        let have = (self.pending.len() - start).min(chunk);
        self.input[..have].copy_from_slice(&self.pending[start..start + have]);
        let max = self.output.len();
        let adapter_in = SequentialSlice::new(&self.input[..], 1, chunk)
            .map_err(|e| format!("resampler input: {e}"))?;
        let mut adapter_out = SequentialSlice::new_mut(&mut self.output[..], 1, max)
            .map_err(|e| format!("resampler output: {e}"))?;
        let indexing = Indexing {
            input_offset: 0,
            output_offset: 0,
            active_channels_mask: None,
            partial_len: partial,
        };
        let (used, produced) = self
            .inner
            .process_into_buffer(&adapter_in, &mut adapter_out, Some(&indexing))
            .map_err(|e| format!("resampling: {e}"))?;
        if partial.is_none() {
            self.consumed += used as u64;
        }
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        out.extend(self.output[skip..produced].iter().map(|&v| to_i16_one(v)));
        self.emitted += (produced - skip) as u64;
        Ok(())
    }
}

fn to_i16_one(v: f32) -> i16 {
    (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16
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
