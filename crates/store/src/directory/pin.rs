//! PINs: the policy (4-10 digits), the server-side pepper, and Argon2id hashing.
//!
//! A 4-6 digit PIN has 10^4-10^6 values, so a stolen database could be brute-forced offline
//! whatever the hash cost. The pepper (Argon2's `secret` input, never stored in the database)
//! is what stops that: without it a hash cannot even be checked. Online guessing is stopped by
//! the lockouts in [`super`]. The functions here are synchronous and CPU-bound; the directory
//! runs them on `spawn_blocking`.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use hmac::{KeyInit, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::error::DirectoryError;

/// The environment variable that carries the pepper (hex or base64, at least 32 bytes).
pub const PEPPER_ENV: &str = "HOTDESK_PIN_PEPPER";

/// The shortest pepper accepted, in bytes.
pub const MIN_PEPPER_BYTES: usize = 32;

/// Shortest and longest PIN, in digits.
pub const PIN_DIGITS: std::ops::RangeInclusive<usize> = 4..=10;

/// The server-side secret mixed into every PIN hash. Cheap to clone; never printed.
#[derive(Clone)]
pub struct Pepper(Arc<SecretBox<[u8]>>);

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

impl Pepper {
    /// A pepper from raw bytes; at least [`MIN_PEPPER_BYTES`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Pepper, DirectoryError> {
        if bytes.len() < MIN_PEPPER_BYTES {
            return Err(DirectoryError::Pepper(format!(
                "{} bytes is too short: at least {MIN_PEPPER_BYTES} are needed",
                bytes.len()
            )));
        }
        Ok(Pepper(Arc::new(SecretBox::new(bytes.into_boxed_slice()))))
    }

    /// Parses the text form: hex (even length, 0-9a-f) or base64 (standard or URL-safe,
    /// padded or not). Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Pepper, DirectoryError> {
        let text = text.trim();
        let bytes =
            if text.len().is_multiple_of(2) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).ok()
            } else {
                None
            }
            .or_else(|| {
                let unpadded = text.trim_end_matches('=');
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(unpadded)
                    .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(unpadded))
                    .ok()
            })
            .ok_or_else(|| DirectoryError::Pepper("not hex and not base64".into()))?;
        Pepper::from_bytes(bytes)
    }

    /// A fresh random pepper (32 bytes from the OS-seeded CSPRNG).
    pub fn random() -> Pepper {
        let mut bytes = vec![0u8; MIN_PEPPER_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Pepper(Arc::new(SecretBox::new(bytes.into_boxed_slice())))
    }

    /// The pepper for a store: `env_value` (from [`PEPPER_ENV`]) when given; else the file
    /// `<database>.pepper` next to a SQLite file, created (mode 0600) on first run; else, for
    /// an in-memory store, a random one (its hashes die with the store anyway).
    ///
    /// A pepper file readable by group or others is refused: anyone who can read it and the
    /// database can brute-force every PIN offline.
    pub fn resolve(store_url: &str, env_value: Option<&str>) -> Result<Pepper, DirectoryError> {
        if let Some(text) = env_value.filter(|t| !t.trim().is_empty()) {
            return Pepper::parse(text)
                .map_err(|e| DirectoryError::Pepper(format!("{PEPPER_ENV}: {e}")));
        }
        match pepper_path(store_url) {
            Some(path) => Pepper::load_or_create(&path),
            None => {
                tracing::warn!(
                    "in-memory store and no {PEPPER_ENV}: using a random PIN pepper for this run"
                );
                Ok(Pepper::random())
            }
        }
    }

    /// Loads the pepper file, or creates it (hex, mode 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Pepper, DirectoryError> {
        let file_error = |reason: String| DirectoryError::PepperFile {
            path: path.to_owned(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_permissions(path).map_err(file_error)?;
                Pepper::parse(&text).map_err(|e| file_error(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let pepper = Pepper::random();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(path)
                    .map_err(|e| file_error(format!("cannot create: {e}")))?;
                let text = hex::encode(pepper.bytes());
                file.write_all(format!("{text}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| file_error(format!("cannot write: {e}")))?;
                tracing::info!(path = %path.display(), "created a new PIN pepper");
                Ok(pepper)
            }
            Err(e) => Err(file_error(format!("cannot read: {e}"))),
        }
    }

    fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// A fingerprint stored in the database so that opening it with another pepper (every PIN
    /// would then fail) is caught at start-up. HMAC of a constant: reveals nothing of the key.
    pub(crate) fn fingerprint(&self) -> String {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.bytes())
            .expect("HMAC takes keys of any length");
        mac.update(b"hotdesk pin pepper fingerprint v1");
        hex::encode(mac.finalize().into_bytes())
    }

    fn argon2(&self) -> Result<Argon2<'_>, DirectoryError> {
        Argon2::new_with_secret(
            self.bytes(),
            Algorithm::Argon2id,
            Version::V0x13,
            Params::default(),
        )
        .map_err(|e| DirectoryError::Hash(e.to_string()))
    }
}

/// `<file>.pepper` for `sqlite://FILE` (and `sqlite:FILE`); `None` for in-memory stores.
pub fn pepper_path(store_url: &str) -> Option<PathBuf> {
    let rest = store_url
        .strip_prefix("sqlite://")
        .or_else(|| store_url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" || rest.contains("mode=memory") {
        return None;
    }
    let mut path = PathBuf::from(file).into_os_string();
    path.push(".pepper");
    Some(PathBuf::from(path))
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot stat: {e}"))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "mode {:o} lets other users read the PIN pepper; run chmod 600 on it",
            mode & 0o777
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// Checks the PIN policy: 4 to 10 ASCII digits. The message never contains the PIN.
pub fn validate_pin(pin: &SecretString) -> Result<(), DirectoryError> {
    let pin = pin.expose_secret();
    let reason = if !pin.bytes().all(|b| b.is_ascii_digit()) {
        "must contain only the digits 0-9"
    } else if pin.len() < *PIN_DIGITS.start() {
        "is too short: a PIN has 4 to 10 digits"
    } else if pin.len() > *PIN_DIGITS.end() {
        "is too long: a PIN has 4 to 10 digits"
    } else {
        return Ok(());
    };
    Err(DirectoryError::Invalid {
        field: "pin",
        reason: reason.into(),
    })
}

/// Which PINs may be set (`[security]` `pin_min_digits`, `pin_refuse_weak`). Checked when a
/// PIN is set or imported, never at login: a PIN set before the policy still logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    /// Fewest digits (4-10).
    pub min_digits: usize,
    /// Refuse one digit repeated, runs up or down, and the user's own extension.
    pub refuse_weak: bool,
}

impl Default for PinPolicy {
    fn default() -> Self {
        PinPolicy {
            min_digits: *PIN_DIGITS.start(),
            refuse_weak: true,
        }
    }
}

impl PinPolicy {
    /// Whether `pin` may be the PIN of `extension`; the error says why not (never the PIN).
    pub fn check(&self, pin: &SecretString, extension: &str) -> Result<(), DirectoryError> {
        validate_pin(pin)?;
        let digits = pin.expose_secret().as_bytes();
        let reason = if digits.len() < self.min_digits {
            format!(
                "is too short: this server wants at least {} digits",
                self.min_digits
            )
        } else if !self.refuse_weak {
            return Ok(());
        } else if digits.iter().all(|&d| d == digits[0]) {
            "is too easy to guess: one digit repeated".into()
        } else if is_run(digits) {
            "is too easy to guess: a run of digits, each one more or one less than the last".into()
        } else if digits == extension.as_bytes() {
            "is too easy to guess: it is the extension itself".into()
        } else {
            return Ok(());
        };
        Err(DirectoryError::Invalid {
            field: "pin",
            reason,
        })
    }
}

/// Each digit one more than the last (`1234`, `7890`), or each one less (`9876`, `2109`).
fn is_run(digits: &[u8]) -> bool {
    let steps = |step: u8| {
        digits
            .windows(2)
            .all(|w| (w[0] - b'0' + step) % 10 == w[1] - b'0')
    };
    steps(1) || steps(9)
}

/// Hashes a PIN (Argon2id v19, default parameters, random salt, peppered) to a PHC string.
pub fn hash_pin(pepper: &Pepper, pin: &SecretString) -> Result<String, DirectoryError> {
    validate_pin(pin)?;
    hash_unchecked(pepper, pin.expose_secret().as_bytes())
}

fn hash_unchecked(pepper: &Pepper, pin: &[u8]) -> Result<String, DirectoryError> {
    pepper
        .argon2()?
        .hash_password(pin)
        .map(|h| h.to_string())
        .map_err(|e| DirectoryError::Hash(e.to_string()))
}

/// A hash of a random PIN nobody knows, verified against when the account does not exist or
/// has no PIN, so that the time taken does not tell whether an account exists.
pub fn dummy_hash(pepper: &Pepper) -> Result<String, DirectoryError> {
    let mut random = [0u8; 16];
    rand::rng().fill_bytes(&mut random);
    hash_unchecked(pepper, hex::encode(random).as_bytes())
}

/// True when `pin` matches `hash` under `pepper` (constant-time comparison inside argon2).
/// A PIN outside the policy is checked all the same (and fails), to take the same time.
pub fn verify_pin(pepper: &Pepper, pin: &SecretString, hash: &str) -> Result<bool, DirectoryError> {
    match pepper
        .argon2()?
        .verify_password(pin.expose_secret().as_bytes(), hash)
    {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(DirectoryError::Hash(e.to_string())),
    }
}
