//! Prompt audio: every catalog file decoded once at start-up into 8 kHz samples and cached as
//! ready-to-send G.711 frames in both laws, and the per-call [`Player`] that hands them out.
//!
//! Why encode up front: a server playing prompts to hundreds of calls would otherwise decode,
//! resample and companding-encode the same few seconds of audio for every call. Here a frame is a
//! [`Bytes`] slice of the shared buffer (a reference-count bump, no copy), so the per-call cost of
//! a prompt is one pointer per 20 ms.
//!
//! The player is sans-IO: it owns no clock. The media layer calls [`Player::next_frame`] once per
//! packet time and stops it with [`Player::stop`] when a digit arrives (barge-in), so the prompt
//! ends at the very next frame.

use std::sync::Arc;

use bytes::Bytes;

use super::{Catalog, PromptError, Sequence};
use crate::audio;
use crate::dsp::g711::Law;

/// Samples in one 20 ms frame at 8 kHz: one RTP packet of G.711.
pub const FRAME_SAMPLES: usize = 160;

/// One decoded prompt, in linear samples and in both G.711 laws.
#[derive(Debug)]
pub struct Clip {
    id: String,
    language: String,
    samples: Vec<i16>,
    ulaw: Bytes,
    alaw: Bytes,
}

impl Clip {
    /// Encodes 8 kHz samples. The last frame is padded with the law's own silence (the code for
    /// a zero sample, 0xFF in µ-law and 0xD5 in A-law: a zero byte would be a loud click).
    pub fn new(id: &str, language: &str, samples: Vec<i16>) -> Clip {
        let frames = samples.len().div_ceil(FRAME_SAMPLES);
        let mut padded = samples.clone();
        padded.resize(frames * FRAME_SAMPLES, 0);
        let encode = |law: Law| {
            let mut out = Vec::with_capacity(padded.len());
            law.encode_into(&padded, &mut out);
            Bytes::from(out)
        };
        Clip {
            id: id.to_owned(),
            language: language.to_owned(),
            ulaw: encode(Law::Ulaw),
            alaw: encode(Law::Alaw),
            samples,
        }
    }

    /// The prompt id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The language of the recording that was decoded.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The decoded 8 kHz samples, unpadded.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / audio::TELEPHONE_RATE as f64
    }

    /// Number of 20 ms frames: the sample count divided by 160, rounded up.
    pub fn frame_count(&self) -> usize {
        self.samples.len().div_ceil(FRAME_SAMPLES)
    }

    /// The whole prompt in one law, a whole number of frames long.
    pub fn encoded(&self, law: Law) -> &Bytes {
        match law {
            Law::Ulaw => &self.ulaw,
            Law::Alaw => &self.alaw,
        }
    }

    /// Frame `n` (160 bytes) in the given law, shared with the cache.
    pub fn frame(&self, law: Law, n: usize) -> Option<Bytes> {
        let start = n.checked_mul(FRAME_SAMPLES)?;
        let encoded = self.encoded(law);
        (start < encoded.len()).then(|| encoded.slice(start..start + FRAME_SAMPLES))
    }
}

/// Every prompt of a catalog, decoded. Built once at start-up and shared (`Arc`) by all calls.
#[derive(Debug)]
pub struct PromptCache {
    catalog: Catalog,
    /// Parallel to `catalog.prompts()`.
    clips: Vec<Arc<Clip>>,
}

impl PromptCache {
    /// Decodes every file of the catalog. Any file that fails is an error naming the prompt and
    /// the file: a server must not start and then play silence where a prompt should be.
    pub fn load(catalog: Catalog) -> Result<PromptCache, PromptError> {
        let mut clips = Vec::with_capacity(catalog.prompts().len());
        let mut total_samples = 0usize;
        for prompt in catalog.prompts() {
            let decoded = audio::load(&prompt.file).map_err(|source| PromptError::Decode {
                id: prompt.id.clone(),
                language: prompt.language.clone(),
                source,
            })?;
            total_samples += decoded.samples.len();
            clips.push(Arc::new(Clip::new(
                &prompt.id,
                &prompt.language,
                decoded.samples,
            )));
        }
        tracing::info!(
            dir = %catalog.dir().display(),
            prompts = clips.len(),
            seconds = total_samples as f64 / audio::TELEPHONE_RATE as f64,
            "prompts loaded"
        );
        Ok(PromptCache { catalog, clips })
    }

    /// Reads the catalog in `dir` and decodes it.
    pub fn load_dir(dir: &std::path::Path) -> Result<PromptCache, PromptError> {
        PromptCache::load(Catalog::load(dir)?)
    }

    /// The catalog the cache was built from.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Every decoded prompt, in catalog order.
    pub fn clips(&self) -> &[Arc<Clip>] {
        &self.clips
    }

    /// The clip for `id` in `language`, with the catalog's language fallback.
    pub fn clip(&self, id: &str, language: &str) -> Option<&Arc<Clip>> {
        self.catalog.position(id, language).map(|i| &self.clips[i])
    }
}

/// Plays a [`Sequence`] to one call, one 20 ms frame at a time.
///
/// Each prompt's last frame is padded with silence, so prompt boundaries fall on frame boundaries
/// and every frame is served straight from the cache; a sequence is therefore the sum of its
/// prompts' [`Clip::frame_count`]s long (at most 20 ms of silence between two prompts).
#[derive(Debug, Clone)]
pub struct Player {
    clips: Vec<Arc<Clip>>,
    law: Law,
    clip: usize,
    frame: usize,
    stopped: bool,
}

impl Player {
    /// Resolves every id of the sequence in `language` (with fallback) up front, so an unknown
    /// prompt is an error before anything plays rather than a gap in the middle of a sentence.
    pub fn new(
        cache: &PromptCache,
        sequence: &Sequence,
        language: &str,
        law: Law,
    ) -> Result<Player, PromptError> {
        let clips = sequence
            .ids()
            .iter()
            .map(|id| {
                cache
                    .clip(id, language)
                    .cloned()
                    .ok_or_else(|| PromptError::UnknownPrompt {
                        id: id.clone(),
                        language: language.to_owned(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Player {
            clips,
            law,
            clip: 0,
            frame: 0,
            stopped: false,
        })
    }

    /// The next 160-byte frame in the player's law, or `None` once the sequence is over or
    /// stopped.
    pub fn next_frame(&mut self) -> Option<Bytes> {
        if self.stopped {
            return None;
        }
        while let Some(clip) = self.clips.get(self.clip) {
            if let Some(frame) = clip.frame(self.law, self.frame) {
                self.frame += 1;
                return Some(frame);
            }
            self.clip += 1;
            self.frame = 0;
        }
        None
    }

    /// Barge-in: nothing more is played, from the next call to [`Player::next_frame`] on.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether the player was stopped before the end.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether no frame is left to play (finished or stopped).
    pub fn is_done(&self) -> bool {
        self.stopped || self.remaining_frames() == 0
    }

    /// Frames still to come if not stopped.
    pub fn remaining_frames(&self) -> usize {
        self.clips
            .iter()
            .skip(self.clip)
            .map(|c| c.frame_count())
            .sum::<usize>()
            .saturating_sub(self.frame)
    }

    /// Frames of the whole sequence.
    pub fn total_frames(&self) -> usize {
        self.clips.iter().map(|c| c.frame_count()).sum()
    }

    /// The law frames are encoded in.
    pub fn law(&self) -> Law {
        self.law
    }
}
