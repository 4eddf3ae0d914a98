//! Voice prompts: the catalog (which recording says what, in which language) and the sequences
//! the IVR flows play ("desk 5401 is now extension 1001" is a phrase, spoken digits, a phrase and
//! more digits).
//!
//! This module is pure: it reads `catalog.toml` and checks that every file it names exists, but
//! decodes nothing. [`loader`] turns the catalog into cached G.711 frames and plays sequences.
//!
//! `catalog.toml` holds one `[[prompt]]` table per recording:
//!
//! ```toml
//! [[prompt]]
//! id = "enter_pin"
//! language = "en"
//! text = "Please enter your password, followed by the pound key."
//! file = "en/enter_pin.wav"      # relative to the catalog's folder
//! ```
//!
//! Languages follow the Asterisk search order users know: a lookup for `en-GB` tries `en-GB`, then
//! `en`, then [`FALLBACK_LANGUAGE`], so a partial translation still plays every prompt.

pub mod loader;

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

pub use loader::{Clip, FRAME_SAMPLES, Player, PromptCache};

/// The catalog's file name inside a prompt folder.
pub const CATALOG_FILE: &str = "catalog.toml";
/// The language every lookup falls back to; the shipped set is complete in it.
pub const FALLBACK_LANGUAGE: &str = "en";

/// Prompt ids the hot-desk flows play. The shipped catalog has every one of them in English,
/// French and Spanish.
pub mod ids {
    /// "Please enter your extension, followed by the pound key." (the account number)
    pub const ENTER_ACCOUNT: &str = "enter_account";
    /// "Please enter your password, followed by the pound key." (the voicemail PIN)
    pub const ENTER_PIN: &str = "enter_pin";
    /// "Desk", before the device's digits in the login read-back.
    pub const LOGIN_ACCEPTED_PREFIX: &str = "login_accepted_prefix";
    /// "is now extension", between the device's and the user's digits in the read-back.
    pub const LOGIN_ACCEPTED_MIDDLE: &str = "login_accepted_middle";
    /// "Login incorrect."
    pub const LOGIN_INCORRECT: &str = "login_incorrect";
    /// Too many failed attempts; try again later.
    pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
    /// "I'm sorry. Please try your call again later." (the store cannot record a login now)
    pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";
    /// The desk was given back to its owner.
    pub const PHONE_RELEASED: &str = "phone_released";
    /// "This phone cannot be used for hot desking."
    pub const NOT_HOTDESK_PHONE: &str = "not_hotdesk_phone";
    /// "Goodbye."
    pub const GOODBYE: &str = "goodbye";
    /// The call has reached its time limit (in English, "Call limit reached.").
    pub const CALL_TIME_LIMIT: &str = "call_time_limit";
    /// "D T M F test." (the field test code's greeting)
    pub const DTMF_TEST: &str = "dtmf_test";
    /// "star"
    pub const STAR: &str = "star";
    /// "pound"
    pub const POUND: &str = "pound";
    /// "zero" to "nine", indexed by the digit.
    pub const DIGITS: [&str; 10] = [
        "digit_0", "digit_1", "digit_2", "digit_3", "digit_4", "digit_5", "digit_6", "digit_7",
        "digit_8", "digit_9",
    ];

    /// Every id the flows need, for start-up checks and tests.
    pub fn required() -> Vec<&'static str> {
        let mut all = vec![
            ENTER_ACCOUNT,
            ENTER_PIN,
            LOGIN_ACCEPTED_PREFIX,
            LOGIN_ACCEPTED_MIDDLE,
            LOGIN_INCORRECT,
            TOO_MANY_ATTEMPTS,
            SERVICE_UNAVAILABLE,
            PHONE_RELEASED,
            NOT_HOTDESK_PHONE,
            GOODBYE,
            CALL_TIME_LIMIT,
            DTMF_TEST,
            STAR,
            POUND,
        ];
        all.extend(DIGITS);
        all
    }
}

/// Why a catalog, a sequence or a prompt file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The catalog file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The catalog file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not valid TOML.
    #[error("{path}: {message}")]
    Syntax {
        /// The catalog file.
        path: PathBuf,
        /// The parser's message (it carries the line and column).
        message: String,
    },
    /// A key the catalog format does not have (a typo would otherwise be silently ignored).
    #[error("{path}: {location}: unknown key `{key}`")]
    UnknownKey {
        /// The catalog file.
        path: PathBuf,
        /// `top level` or `prompt #N` (1-based, in file order), with its id when known.
        location: String,
        /// The unknown key.
        key: String,
    },
    /// A required key is absent.
    #[error("{path}: {location}: missing key `{key}`")]
    MissingKey {
        /// The catalog file.
        path: PathBuf,
        /// `prompt #N`, with its id when known.
        location: String,
        /// The missing key.
        key: &'static str,
    },
    /// A key whose value is unusable.
    #[error("{path}: {location}: `{key}`: {reason}")]
    InvalidValue {
        /// The catalog file.
        path: PathBuf,
        /// `top level` or `prompt #N`, with its id when known.
        location: String,
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The same (id, language) twice: which recording would play is ambiguous.
    #[error(
        "{path}: prompt #{second}: duplicate id `{id}` for language `{language}` (first at prompt #{first})"
    )]
    DuplicateId {
        /// The catalog file.
        path: PathBuf,
        /// The repeated id.
        id: String,
        /// Its language.
        language: String,
        /// The first entry with it (1-based).
        first: usize,
        /// The repeat (1-based).
        second: usize,
    },
    /// An entry naming a file that is not there.
    #[error("{path}: prompt #{entry} (`{id}`): file {file} does not exist")]
    MissingFile {
        /// The catalog file.
        path: PathBuf,
        /// The entry (1-based).
        entry: usize,
        /// Its id.
        id: String,
        /// The missing file, resolved against the catalog's folder.
        file: PathBuf,
    },
    /// A lookup or sequence naming an id the catalog lacks in the language and the fallbacks.
    #[error("no prompt `{id}` for language `{language}` (nor its fallbacks)")]
    UnknownPrompt {
        /// The id.
        id: String,
        /// The language asked for.
        language: String,
    },
    /// A character with no spoken form in [`Catalog::say_digits`].
    #[error("cannot speak `{character}` in {digits:?}: only 0-9, * and # have prompts")]
    NotADigit {
        /// The offending character.
        character: char,
        /// The whole string.
        digits: String,
    },
    /// A prompt file that does not decode.
    #[error("prompt `{id}` ({language}): {source}")]
    Decode {
        /// The prompt id.
        id: String,
        /// Its language.
        language: String,
        /// The decoder's error, naming the file.
        source: crate::audio::AudioError,
    },
}

/// One catalog entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// Stable id the flows use (`enter_pin`, `digit_5`, …).
    pub id: String,
    /// Language tag, normalised to lower case with `-` (`en`, `en-gb`).
    pub language: String,
    /// What the recording says: for transcripts, logs and accessibility.
    pub text: String,
    /// The file, resolved against the catalog's folder.
    pub file: PathBuf,
}

/// The prompt catalog of one folder.
#[derive(Debug, Clone)]
pub struct Catalog {
    dir: PathBuf,
    prompts: Vec<Prompt>,
    index: HashMap<(String, String), usize>,
}

const KEYS: [&str; 4] = ["id", "language", "text", "file"];

impl Catalog {
    /// Reads `dir/catalog.toml` and checks every entry and that every file exists.
    pub fn load(dir: &Path) -> Result<Catalog, PromptError> {
        let path = dir.join(CATALOG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| PromptError::Read {
            path: path.clone(),
            source,
        })?;
        Catalog::parse(dir, &path, &text)
    }

    /// Parses catalog text as if read from `path`; files resolve against `dir`.
    pub fn parse(dir: &Path, path: &Path, text: &str) -> Result<Catalog, PromptError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| PromptError::Syntax {
            path: path.to_owned(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let invalid =
            |location: String, key: &'static str, reason: &str| PromptError::InvalidValue {
                path: path.to_owned(),
                location,
                key,
                reason: reason.to_owned(),
            };
        if let Some(key) = table.keys().find(|k| k.as_str() != "prompt") {
            return Err(PromptError::UnknownKey {
                path: path.to_owned(),
                location: "top level".into(),
                key: key.clone(),
            });
        }
        let entries = match table.get("prompt") {
            None => return Ok(Catalog::from_prompts(dir, Vec::new())),
            Some(toml::Value::Array(entries)) => entries,
            Some(_) => {
                return Err(invalid(
                    "top level".into(),
                    "prompt",
                    "must be an array of tables ([[prompt]])",
                ));
            }
        };

        let mut prompts = Vec::with_capacity(entries.len());
        let mut first_seen: HashMap<(String, String), usize> = HashMap::new();
        for (i, entry) in entries.iter().enumerate() {
            let number = i + 1;
            let Some(entry) = entry.as_table() else {
                return Err(invalid(
                    format!("prompt #{number}"),
                    "prompt",
                    "must be a table",
                ));
            };
            // Name the entry by its id in later errors when it has a usable one: "prompt #7" alone
            // sends the reader counting tables.
            let location = match entry.get("id").and_then(|v| v.as_str()) {
                Some(id) => format!("prompt #{number} (`{id}`)"),
                None => format!("prompt #{number}"),
            };
            if let Some(key) = entry.keys().find(|k| !KEYS.contains(&k.as_str())) {
                return Err(PromptError::UnknownKey {
                    path: path.to_owned(),
                    location,
                    key: key.clone(),
                });
            }
            let get = |key: &'static str| -> Result<&str, PromptError> {
                match entry.get(key) {
                    None => Err(PromptError::MissingKey {
                        path: path.to_owned(),
                        location: location.clone(),
                        key,
                    }),
                    Some(toml::Value::String(s)) => Ok(s.as_str()),
                    Some(other) => Err(invalid(
                        location.clone(),
                        key,
                        &format!("must be a string, not {}", other.type_str()),
                    )),
                }
            };
            let id = get("id")?;
            let language = get("language")?;
            let text = get("text")?;
            let file = get("file")?;

            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(invalid(
                    location,
                    "id",
                    "must be non-empty lower-case letters, digits and `_`",
                ));
            }
            let language = normalise_language(language).ok_or_else(|| {
                invalid(
                    location.clone(),
                    "language",
                    "not a language tag like `en` or `en-GB`",
                )
            })?;
            if text.trim().is_empty() {
                return Err(invalid(
                    location,
                    "text",
                    "must say what the recording says",
                ));
            }
            let relative = Path::new(file);
            // Files stay inside the prompt folder: a catalog must not be able to point the server
            // at arbitrary files on the host.
            if file.is_empty()
                || !relative
                    .components()
                    .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
            {
                return Err(invalid(
                    location,
                    "file",
                    "must be a relative path inside the prompt folder",
                ));
            }

            let key = (id.to_owned(), language.clone());
            if let Some(&first) = first_seen.get(&key) {
                return Err(PromptError::DuplicateId {
                    path: path.to_owned(),
                    id: id.to_owned(),
                    language,
                    first,
                    second: number,
                });
            }
            let resolved = dir.join(relative);
            if !resolved.is_file() {
                return Err(PromptError::MissingFile {
                    path: path.to_owned(),
                    entry: number,
                    id: id.to_owned(),
                    file: resolved,
                });
            }
            first_seen.insert(key, number);
            prompts.push(Prompt {
                id: id.to_owned(),
                language,
                text: text.to_owned(),
                file: resolved,
            });
        }
        Ok(Catalog::from_prompts(dir, prompts))
    }

    fn from_prompts(dir: &Path, prompts: Vec<Prompt>) -> Catalog {
        let index = prompts
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.id.clone(), p.language.clone()), i))
            .collect();
        Catalog {
            dir: dir.to_owned(),
            prompts,
            index,
        }
    }

    /// The folder the catalog was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every entry, in file order.
    pub fn prompts(&self) -> &[Prompt] {
        &self.prompts
    }

    /// The prompt for `id` in `language`, else in its primary language (`en` for `en-GB`), else
    /// in [`FALLBACK_LANGUAGE`].
    pub fn get(&self, id: &str, language: &str) -> Option<&Prompt> {
        self.position(id, language).map(|i| &self.prompts[i])
    }

    /// Index into [`Catalog::prompts`] of what [`Catalog::get`] returns.
    pub(crate) fn position(&self, id: &str, language: &str) -> Option<usize> {
        let wanted = normalise_language(language).unwrap_or_default();
        let primary = wanted.split('-').next().unwrap_or_default().to_owned();
        [wanted.clone(), primary, FALLBACK_LANGUAGE.to_owned()]
            .into_iter()
            .find_map(|lang| self.index.get(&(id.to_owned(), lang)).copied())
    }

    /// Whether `id` can be played in `language` (directly or through a fallback).
    pub fn contains(&self, id: &str, language: &str) -> bool {
        self.position(id, language).is_some()
    }

    /// A sequence of the given ids, each checked to exist in at least the fallback language.
    pub fn sequence<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Sequence, PromptError> {
        let mut sequence = Sequence::default();
        for id in ids {
            self.check(id)?;
            sequence.push(id);
        }
        Ok(sequence)
    }

    /// The spoken form of a digit string, one prompt per key: "5401" is five, four, zero, one.
    pub fn say_digits(&self, digits: &str) -> Result<Sequence, PromptError> {
        let mut sequence = Sequence::default();
        self.append_digits(&mut sequence, digits)?;
        Ok(sequence)
    }

    /// A phrase followed by spoken digits ("extension" + "1 0 0 1").
    pub fn phrase_then_digits(&self, phrase: &str, digits: &str) -> Result<Sequence, PromptError> {
        let mut sequence = self.sequence([phrase])?;
        self.append_digits(&mut sequence, digits)?;
        Ok(sequence)
    }

    /// The login read-back: "desk `device` is now extension `user`", digit by digit.
    pub fn login_accepted(&self, device: &str, user: &str) -> Result<Sequence, PromptError> {
        let mut sequence = self.phrase_then_digits(ids::LOGIN_ACCEPTED_PREFIX, device)?;
        sequence.extend(self.phrase_then_digits(ids::LOGIN_ACCEPTED_MIDDLE, user)?);
        Ok(sequence)
    }

    fn append_digits(&self, sequence: &mut Sequence, digits: &str) -> Result<(), PromptError> {
        for character in digits.chars() {
            let id = digit_id(character).ok_or_else(|| PromptError::NotADigit {
                character,
                digits: digits.to_owned(),
            })?;
            self.check(id)?;
            sequence.push(id);
        }
        Ok(())
    }

    /// Sequences are built without a language (the caller's is applied when played, and
    /// [`Player::new`] resolves it), so here an id only has to exist in some language.
    fn check(&self, id: &str) -> Result<(), PromptError> {
        if self.prompts.iter().any(|p| p.id == id) {
            Ok(())
        } else {
            Err(PromptError::UnknownPrompt {
                id: id.to_owned(),
                language: FALLBACK_LANGUAGE.to_owned(),
            })
        }
    }
}

/// The prompt id that speaks a keypad key (`0`-`9`, `*`, `#`).
pub fn digit_id(key: char) -> Option<&'static str> {
    match key {
        '0'..='9' => Some(ids::DIGITS[key as usize - '0' as usize]),
        '*' => Some(ids::STAR),
        '#' => Some(ids::POUND),
        _ => None,
    }
}

/// Lower-cases a language tag and turns `_` into `-` (`en_GB` → `en-gb`); `None` when it is not
/// made of 1-8 character alphanumeric subtags.
fn normalise_language(tag: &str) -> Option<String> {
    let tag = tag.trim().to_ascii_lowercase().replace('_', "-");
    let valid = !tag.is_empty()
        && tag.split('-').all(|sub| {
            (1..=8).contains(&sub.len()) && sub.bytes().all(|b| b.is_ascii_alphanumeric())
        });
    valid.then_some(tag)
}

/// Prompt ids to play one after another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sequence {
    ids: Vec<String>,
}

impl Sequence {
    /// Appends one prompt.
    pub fn push(&mut self, id: &str) {
        self.ids.push(id.to_owned());
    }

    /// Appends another sequence.
    pub fn extend(&mut self, other: Sequence) {
        self.ids.extend(other.ids);
    }

    /// The ids in play order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Number of prompts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is nothing to play.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_normalise() {
        assert_eq!(normalise_language("en_GB").as_deref(), Some("en-gb"));
        assert_eq!(normalise_language(" EN ").as_deref(), Some("en"));
        assert_eq!(normalise_language(""), None);
        assert_eq!(normalise_language("en--gb"), None);
        assert_eq!(normalise_language("e n"), None);
    }

    #[test]
    fn every_key_has_a_digit_id() {
        for key in "0123456789*#".chars() {
            assert!(digit_id(key).is_some(), "{key}");
        }
        assert_eq!(digit_id('7'), Some("digit_7"));
        assert_eq!(digit_id('A'), None);
    }
}
