//! The store's one error type.

/// Why a directory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The store cannot be opened.
    #[error("store {url}: cannot open: {source}{hint}")]
    Open {
        /// `store.url`.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
        /// What the file system says when SQLite's own code is vague, e.g.
        /// "; the file system holding it is read-only" for SQLITE_CANTOPEN.
        hint: String,
    },
    /// The schema migrations failed.
    #[error("store {url}: migration failed: {source}")]
    Migrate {
        /// `store.url`.
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store: {0}")]
    Store(#[from] sqlx::Error),
    /// Bad input: names the field and why (never echoes a PIN).
    #[error("{field}: {reason}")]
    Invalid {
        /// The field (`extension`, `pin`, `language`, `device` …).
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// No user with that extension.
    #[error("extension {0}: no such user")]
    UnknownUser(String),
    /// The user already exists.
    #[error("extension {0}: user already exists")]
    UserExists(String),
    /// `after` is not the id of a report.
    #[error("after: {0:?} is not the id of a report")]
    UnknownEvent(String),
    /// The pepper given in the environment is unusable.
    #[error("PIN pepper: {0}")]
    Pepper(String),
    /// The pepper file is unusable.
    #[error("PIN pepper {}: {reason}", path.display())]
    PepperFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The database's PIN hashes were made with another pepper.
    #[error(
        "store {url}: its PIN hashes were made with another pepper, so every PIN would fail; \
         restore the original HOTDESK_PIN_PEPPER or pepper file"
    )]
    PepperMismatch {
        /// `store.url`.
        url: String,
    },
    /// Hashing or verifying failed (a corrupt stored hash, or the worker thread died).
    #[error("PIN hash: {0}")]
    Hash(String),
    /// The database holds something this code never writes.
    #[error("store: corrupt row: {0}")]
    Corrupt(String),
    /// The CSV could not be read at all (per-line problems are in the import report).
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl DirectoryError {
    /// True when the caller's input is at fault (exit status 2, HTTP 4xx); false for internal
    /// trouble (exit status 1, HTTP 5xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DirectoryError::Invalid { .. }
                | DirectoryError::UnknownUser(_)
                | DirectoryError::UserExists(_)
                | DirectoryError::UnknownEvent(_)
                | DirectoryError::Pepper(_)
                | DirectoryError::PepperFile { .. }
                | DirectoryError::PepperMismatch { .. }
                | DirectoryError::Read { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pepper_variable_is_named_as_the_pin_module_reads_it() {
        let text = super::DirectoryError::PepperMismatch { url: "u".into() }.to_string();
        assert!(text.contains(crate::directory::PEPPER_ENV), "{text}");
    }
}
