//! The audio loader (symphonia's probe and decoders, mixing, resampling to 8 kHz) on arbitrary
//! bytes, with each format hint: an error or audio, never a panic, and audio that is never
//! empty.
//!
//! `audio::load` catches a panic inside a decoder and reports it as malformed audio. The
//! fuzzer's panic hook aborts before that catch, so here the default hook is put back: a
//! decoder panic is then what users get (an error), and any other panic still fails the run
//! because it escapes `load_bytes`.
#![no_main]

use std::path::Path;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
    });
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let label = ["in.wav", "in.flac", "in.ogg", "in.mp3", "in"][usize::from(which) % 5];
    let result =
        std::panic::catch_unwind(|| hotdesk_core::audio::load_bytes(Path::new(label), bytes.to_vec()));
    match result {
        Ok(Ok(audio)) => assert!(!audio.samples.is_empty(), "audio with no samples"),
        Ok(Err(_)) => {}
        Err(_) => panic!("a panic escaped audio::load_bytes"),
    }
});
