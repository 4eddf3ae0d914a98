//! The shipped prompt set and the prompt machinery: catalog checks, decoding, sequences, frame
//! pacing, barge-in, catalog errors, and that no prompt talks off our own DTMF detector.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use hotdesk_core::dsp::dtmf::{DtmfParams, detect, digits};
use hotdesk_core::dsp::g711::Law;
use hotdesk_core::prompts::{
    Catalog, FRAME_SAMPLES, Player, PromptCache, PromptError, Sequence, ids,
};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts")
}

/// Decoding the set takes a moment; every test shares one cache, as calls do.
static CACHE: LazyLock<Arc<PromptCache>> = LazyLock::new(|| {
    Arc::new(PromptCache::load_dir(&shipped_dir()).expect("the shipped prompts load"))
});

fn rms_dbfs(samples: &[i16]) -> f64 {
    let mean = samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    20.0 * (mean.sqrt() / 32768.0).log10()
}

/// The languages the project ships a full prompt set in.
const SHIPPED_LANGUAGES: [&str; 3] = ["en", "fr", "es"];

#[test]
fn shipped_catalog_has_every_prompt_the_flows_need() {
    let catalog = Catalog::load(&shipped_dir()).unwrap();
    for language in SHIPPED_LANGUAGES {
        for id in ids::required() {
            let prompt = catalog
                .get(id, language)
                .unwrap_or_else(|| panic!("missing {id} ({language})"));
            // Its own recording, not the English one through the fallback.
            assert_eq!(prompt.language, language, "{id} ({language}) falls back");
            assert!(
                !prompt.text.trim().is_empty(),
                "{id} ({language}) has no text"
            );
        }
    }
    // Language fallback: a regional tag hears its language's set, an unknown language English.
    assert_eq!(catalog.get(ids::ENTER_PIN, "en-GB").unwrap().language, "en");
    assert_eq!(catalog.get(ids::ENTER_PIN, "fr-CA").unwrap().language, "fr");
    assert_eq!(catalog.get(ids::ENTER_PIN, "es_MX").unwrap().language, "es");
    assert_eq!(catalog.get(ids::ENTER_PIN, "de").unwrap().language, "en");
    assert!(catalog.get("no_such_prompt", "en").is_none());
}

#[test]
fn every_language_in_the_catalog_has_every_english_prompt() {
    // A translation that lacks a prompt would play that one prompt in English, mid-call: every
    // language the catalog has must hold every id the English set has.
    let catalog = Catalog::load(&shipped_dir()).unwrap();
    let ids_in = |language: &str| -> BTreeSet<&str> {
        catalog
            .prompts()
            .iter()
            .filter(|p| p.language == language)
            .map(|p| p.id.as_str())
            .collect()
    };
    let english = ids_in("en");
    let languages: BTreeSet<&str> = catalog
        .prompts()
        .iter()
        .map(|p| p.language.as_str())
        .collect();
    assert_eq!(
        languages,
        BTreeSet::from(SHIPPED_LANGUAGES),
        "languages in the catalog"
    );
    for language in languages {
        let present = ids_in(language);
        let missing: Vec<_> = english.difference(&present).collect();
        assert!(missing.is_empty(), "{language} lacks {missing:?}");
        // Each file sits in its language's folder, so a copy-paste slip cannot point the French
        // entry at the English recording.
        for prompt in catalog.prompts().iter().filter(|p| p.language == language) {
            assert!(
                prompt.file.starts_with(shipped_dir().join(language)),
                "{} ({language}): {}",
                prompt.id,
                prompt.file.display()
            );
        }
    }
}

#[test]
fn every_prompt_decodes_to_speech_of_plausible_length_and_level() {
    let cache = &*CACHE;
    assert_eq!(cache.clips().len(), cache.catalog().prompts().len());
    for clip in cache.clips() {
        let id = clip.id();
        let seconds = clip.seconds();
        // Single words ("five", "desk") are a third of a second or more; no prompt should make
        // a caller wait more than ten.
        assert!(
            (0.3..10.0).contains(&seconds),
            "{id}: {seconds:.2} s is not a plausible prompt length"
        );
        // Levels are normalised to about -20 dBFS so prompts do not jump in loudness.
        let level = rms_dbfs(clip.samples());
        assert!(
            (-24.0..=-16.0).contains(&level),
            "{id}: level {level:.1} dBFS outside the normalised range"
        );
        // Sound, not a near-silent file: at least a vowel's worth (150 ms) of 20 ms frames well
        // above the noise floor, and a good share of the prompt. (Not most of it: fricatives
        // such as the /s/ and /ks/ of "six" carry little energy below 4 kHz.)
        let frames: Vec<f64> = clip.samples().chunks(FRAME_SAMPLES).map(rms_dbfs).collect();
        let loud = frames.iter().filter(|&&db| db > -35.0).count();
        assert!(loud >= 8, "{id}: only {loud} frames hold sound");
        let share = loud as f64 / frames.len() as f64;
        assert!(
            share > 0.3,
            "{id}: only {:.0} % of frames hold sound",
            share * 100.0
        );
        let peak = clip
            .samples()
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!(peak < 32700, "{id}: clipped (peak {peak})");
        // Trimmed: no more than 100 ms below -55 dBFS at either end (the trim keeps 20 ms; a
        // weak /s/ like the start of "six" sits around -50 dBFS at 8 kHz and is speech).
        let edge = |it: &mut dyn Iterator<Item = &f64>| it.take_while(|&&db| db < -55.0).count();
        assert!(edge(&mut frames.iter()) <= 5, "{id}: leading silence");
        assert!(
            edge(&mut frames.iter().rev()) <= 5,
            "{id}: trailing silence"
        );
    }
}

#[test]
fn login_read_back_sequence() {
    let catalog = CACHE.catalog();
    let sequence = catalog.login_accepted("5401", "1001").unwrap();
    assert_eq!(
        sequence.ids(),
        [
            "login_accepted_prefix",
            "digit_5",
            "digit_4",
            "digit_0",
            "digit_1",
            "login_accepted_middle",
            "digit_1",
            "digit_0",
            "digit_0",
            "digit_1",
        ]
    );
    assert_eq!(
        catalog.say_digits("*88#").unwrap().ids(),
        ["star", "digit_8", "digit_8", "pound"]
    );
    assert_eq!(
        catalog
            .phrase_then_digits(ids::DTMF_TEST, "7")
            .unwrap()
            .ids(),
        ["dtmf_test", "digit_7"]
    );
    match catalog.say_digits("54A1") {
        Err(PromptError::NotADigit { character, digits }) => {
            assert_eq!(character, 'A');
            assert_eq!(digits, "54A1");
        }
        other => panic!("expected NotADigit, got {other:?}"),
    }
    match catalog.sequence(["enter_pin", "no_such_prompt"]) {
        Err(PromptError::UnknownPrompt { id, .. }) => assert_eq!(id, "no_such_prompt"),
        other => panic!("expected UnknownPrompt, got {other:?}"),
    }
}

#[test]
fn player_frame_count_is_samples_over_160_rounded_up() {
    let cache = &*CACHE;
    for law in [Law::Ulaw, Law::Alaw] {
        for clip in cache.clips() {
            let sequence = cache.catalog().sequence([clip.id()]).unwrap();
            let mut player = Player::new(cache, &sequence, clip.language(), law).unwrap();
            let mut frames = Vec::new();
            while let Some(frame) = player.next_frame() {
                assert_eq!(frame.len(), FRAME_SAMPLES);
                frames.push(frame);
            }
            assert!(player.is_done() && !player.is_stopped());
            let samples = clip.samples();
            assert_eq!(
                frames.len(),
                samples.len().div_ceil(FRAME_SAMPLES),
                "{}",
                clip.id()
            );

            // The frames are the prompt's samples encoded in this law, padded with the law's
            // silence (the code of a zero sample) after the last sample.
            let bytes: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
            let mut expected = Vec::new();
            law.encode_into(samples, &mut expected);
            assert_eq!(&bytes[..samples.len()], &expected[..], "{}", clip.id());
            let mut silence = Vec::new();
            law.encode_into(&[0], &mut silence);
            assert!(
                bytes[samples.len()..].iter().all(|&b| b == silence[0]),
                "{}: padding is not {law:?} silence",
                clip.id()
            );
        }
    }
    // µ-law and A-law silence are the standard codes.
    let (mut u, mut a) = (Vec::new(), Vec::new());
    Law::Ulaw.encode_into(&[0], &mut u);
    Law::Alaw.encode_into(&[0], &mut a);
    assert_eq!((u[0], a[0]), (0xFF, 0xD5));
}

#[test]
fn a_sequence_plays_each_prompt_in_turn() {
    let cache = &*CACHE;
    let sequence = cache.catalog().login_accepted("5401", "1001").unwrap();
    let expected: usize = sequence
        .ids()
        .iter()
        .map(|id| cache.clip(id, "en").unwrap().frame_count())
        .sum();
    let mut player = Player::new(cache, &sequence, "en-GB", Law::Alaw).unwrap();
    assert_eq!(player.total_frames(), expected);
    assert_eq!(player.remaining_frames(), expected);
    let mut played = Vec::new();
    while let Some(frame) = player.next_frame() {
        played.extend_from_slice(&frame);
        assert_eq!(
            player.remaining_frames(),
            expected - played.len() / FRAME_SAMPLES
        );
    }
    assert_eq!(played.len(), expected * FRAME_SAMPLES);
    // Frame-aligned concatenation: the second prompt ("five") starts right after the first's
    // padded frames.
    let first = cache.clip("login_accepted_prefix", "en").unwrap();
    let five = cache.clip("digit_5", "en").unwrap();
    let at = first.frame_count() * FRAME_SAMPLES;
    assert_eq!(
        &played[at..at + FRAME_SAMPLES],
        &five.frame(Law::Alaw, 0).unwrap()[..]
    );
    // A five-second sequence and more: "desk 5401 is now extension 1001".
    let seconds = expected as f64 * 0.02;
    assert!(
        (3.0..10.0).contains(&seconds),
        "read-back lasts {seconds:.1} s"
    );
}

#[test]
fn barge_in_stops_within_one_frame() {
    let cache = &*CACHE;
    let sequence = cache.catalog().sequence([ids::ENTER_ACCOUNT]).unwrap();
    let mut player = Player::new(cache, &sequence, "en", Law::Ulaw).unwrap();
    for _ in 0..10 {
        assert!(player.next_frame().is_some());
    }
    assert!(!player.is_done());
    // A digit arrives: the very next frame slot is already silent.
    player.stop();
    assert!(player.is_done() && player.is_stopped());
    assert!(player.next_frame().is_none());
    assert!(player.next_frame().is_none());
    // Stopping before the first frame plays nothing at all.
    let mut player = Player::new(cache, &sequence, "en", Law::Ulaw).unwrap();
    player.stop();
    assert!(player.next_frame().is_none());
}

#[test]
fn player_refuses_unknown_prompts_before_playing() {
    let mut sequence = Sequence::default();
    sequence.push("enter_pin");
    sequence.push("no_such_prompt");
    match Player::new(&CACHE, &sequence, "en", Law::Ulaw) {
        Err(PromptError::UnknownPrompt { id, language }) => {
            assert_eq!((id.as_str(), language.as_str()), ("no_such_prompt", "en"));
        }
        other => panic!("expected UnknownPrompt, got {other:?}"),
    }
    let empty = Player::new(&CACHE, &Sequence::default(), "en", Law::Ulaw).unwrap();
    assert!(empty.is_done());
}

#[test]
fn no_prompt_talks_off_the_dtmf_detector() {
    // Prompts are played while the detector listens to the caller; an echo of a prompt that
    // looked like a key would type a digit into the login. Check the linear audio and what each
    // law delivers, and the read-back as one stream (joins between prompts included).
    let cache = &*CACHE;
    let params = DtmfParams::default();
    for clip in cache.clips() {
        let presses = detect(clip.samples(), &params);
        assert!(
            presses.is_empty(),
            "{}: detected {:?}",
            clip.id(),
            digits(&presses)
        );
        for law in [Law::Ulaw, Law::Alaw] {
            let mut linear = Vec::new();
            law.decode_into(clip.encoded(law), &mut linear);
            let presses = detect(&linear, &params);
            assert!(
                presses.is_empty(),
                "{} through {law:?}: detected {:?}",
                clip.id(),
                digits(&presses)
            );
        }
    }
    let sequence = cache.catalog().login_accepted("5401", "1001").unwrap();
    let mut player = Player::new(cache, &sequence, "en", Law::Ulaw).unwrap();
    let mut linear = Vec::new();
    while let Some(frame) = player.next_frame() {
        Law::Ulaw.decode_into(&frame, &mut linear);
    }
    assert!(detect(&linear, &params).is_empty());
}

/// A scratch prompt folder with one real WAV (copied from the shipped set) and a catalog.
fn scratch(catalog: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("en")).unwrap();
    std::fs::copy(
        shipped_dir().join("en/goodbye.wav"),
        dir.path().join("en/goodbye.wav"),
    )
    .unwrap();
    std::fs::write(dir.path().join("catalog.toml"), catalog).unwrap();
    dir
}

const GOODBYE: &str = r#"
[[prompt]]
id = "goodbye"
language = "en"
text = "Goodbye."
file = "en/goodbye.wav"
"#;

#[test]
fn duplicate_id_names_both_entries() {
    let dir = scratch(&format!("{GOODBYE}{GOODBYE}"));
    match Catalog::load(dir.path()) {
        Err(e @ PromptError::DuplicateId { .. }) => {
            let PromptError::DuplicateId {
                ref path,
                ref id,
                ref language,
                first,
                second,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(path, &dir.path().join("catalog.toml"));
            assert_eq!(
                (id.as_str(), language.as_str(), first, second),
                ("goodbye", "en", 1, 2)
            );
            assert!(e.to_string().contains("duplicate id `goodbye`"), "{e}");
        }
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    // The same id in another language is a translation, not a duplicate.
    let dir = scratch(&format!(
        "{GOODBYE}{}",
        GOODBYE
            .replace("\"en\"", "\"fr\"")
            .replace("Goodbye.", "Au revoir.")
    ));
    let catalog = Catalog::load(dir.path()).unwrap();
    assert_eq!(catalog.get("goodbye", "fr-CA").unwrap().text, "Au revoir.");
    assert_eq!(catalog.get("goodbye", "de").unwrap().text, "Goodbye.");
}

#[test]
fn unknown_key_is_named() {
    let dir = scratch(&GOODBYE.replace("file =", "volume = 3\nfile ="));
    match Catalog::load(dir.path()) {
        Err(PromptError::UnknownKey {
            path,
            location,
            key,
        }) => {
            assert_eq!(path, dir.path().join("catalog.toml"));
            assert_eq!(key, "volume");
            assert_eq!(location, "prompt #1 (`goodbye`)");
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let dir = scratch(&format!("promts = 1\n{GOODBYE}"));
    match Catalog::load(dir.path()) {
        Err(PromptError::UnknownKey { location, key, .. }) => {
            assert_eq!((location.as_str(), key.as_str()), ("top level", "promts"));
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
}

#[test]
fn missing_file_is_named() {
    let dir = scratch(&format!(
        "{GOODBYE}{}",
        GOODBYE
            .replace("\"goodbye\"", "\"enter_pin\"")
            .replace("goodbye.wav", "enter_pin.wav")
    ));
    match Catalog::load(dir.path()) {
        Err(e @ PromptError::MissingFile { .. }) => {
            let PromptError::MissingFile {
                ref entry,
                ref id,
                ref file,
                ..
            } = e
            else {
                unreachable!()
            };
            assert_eq!((*entry, id.as_str()), (2, "enter_pin"));
            assert_eq!(file, &dir.path().join("en/enter_pin.wav"));
            assert!(e.to_string().contains("enter_pin.wav"), "{e}");
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }
}

#[test]
fn other_catalog_mistakes_are_precise() {
    let cases: [(&str, &str, &str); 5] = [
        (
            &GOODBYE.replace("text = \"Goodbye.\"\n", ""),
            "MissingKey",
            "`text`",
        ),
        (
            &GOODBYE.replace("\"Goodbye.\"", "3"),
            "InvalidValue",
            "must be a string",
        ),
        (
            &GOODBYE.replace("en/goodbye", "../en/goodbye"),
            "InvalidValue",
            "inside the prompt folder",
        ),
        (
            &GOODBYE.replace("\"goodbye\"", "\"Good Bye\""),
            "InvalidValue",
            "`id`",
        ),
        ("[[prompt]\n", "Syntax", "catalog.toml"),
    ];
    for (text, kind, needle) in cases {
        let dir = scratch(text);
        let err = Catalog::load(dir.path()).expect_err(kind);
        let debug = format!("{err:?}");
        assert!(debug.starts_with(kind), "{kind}: got {debug}");
        assert!(err.to_string().contains(needle), "{kind}: {err}");
    }
    let missing = tempfile::tempdir().unwrap();
    assert!(matches!(
        Catalog::load(missing.path()),
        Err(PromptError::Read { .. })
    ));
}

#[test]
fn undecodable_file_is_an_error_naming_it() {
    let dir = scratch(GOODBYE);
    std::fs::write(dir.path().join("en/goodbye.wav"), b"RIFF this is not audio").unwrap();
    match PromptCache::load_dir(dir.path()) {
        Err(e @ PromptError::Decode { .. }) => {
            let message = e.to_string();
            assert!(message.contains("goodbye"), "{message}");
            assert!(message.contains("en/goodbye.wav"), "{message}");
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}
