//! Users: extension, display name, prompt language and PIN hash; CSV import.

use secrecy::SecretString;

use super::{Directory, NewReport, Via, from_ms, insert_report, now, to_ms};
use crate::error::DirectoryError;
use crate::records::{ImportLineError, ImportReport, User};
use hotdesk_core::identity::Extension;
use hotdesk_core::model::Event;

/// Longest display name, in characters.
const MAX_NAME: usize = 100;

type UserRow = (String, String, Option<String>, bool, i64);

fn user_from_row((extension, name, language, has_pin, created): UserRow) -> User {
    User {
        extension,
        name,
        language,
        has_pin,
        created: from_ms(created),
    }
}

/// The columns of a [`UserRow`], as a literal for `concat!` (sqlx wants `'static` SQL).
macro_rules! user_columns {
    () => {
        "extension, name, language, pin_hash IS NOT NULL AS has_pin, created_ms"
    };
}

impl Directory {
    /// Adds a user without a PIN (set one with [`Directory::set_pin`]).
    pub async fn add_user(
        &self,
        extension: &str,
        name: Option<&str>,
        language: Option<&str>,
    ) -> Result<User, DirectoryError> {
        validate_extension(extension)?;
        let name = name.unwrap_or_default();
        validate_name(name)?;
        if let Some(language) = language {
            validate_language(language)?;
        }
        let created = now();
        let inserted = sqlx::query(
            "INSERT INTO users (extension, name, language, pin_hash, created_ms) \
             VALUES ($1, $2, $3, NULL, $4) ON CONFLICT (extension) DO NOTHING",
        )
        .bind(extension)
        .bind(name)
        .bind(language)
        .bind(to_ms(created))
        .execute(&self.inner.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(DirectoryError::UserExists(extension.into()));
        }
        Ok(User {
            extension: extension.into(),
            name: name.into(),
            language: language.map(Into::into),
            has_pin: false,
            created,
        })
    }

    /// Sets (or replaces) a user's PIN. The PIN must be 4 to 10 digits.
    pub async fn set_pin(&self, extension: &str, pin: &SecretString) -> Result<(), DirectoryError> {
        validate_extension(extension)?;
        if self.user(extension).await?.is_none() {
            return Err(DirectoryError::UnknownUser(extension.into()));
        }
        self.validate_pin_field(pin, extension)?;
        let hash = self.hash(pin).await?;
        let updated = sqlx::query("UPDATE users SET pin_hash = $2 WHERE extension = $1")
            .bind(extension)
            .bind(hash)
            .execute(&self.inner.pool)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(DirectoryError::UnknownUser(extension.into()));
        }
        Ok(())
    }

    /// Removes a user: releases their desk (a `release` report, via `api`), forgets their
    /// failures and lockout. False when there was no such user.
    pub async fn remove_user(&self, extension: &str) -> Result<bool, DirectoryError> {
        validate_extension(extension)?;
        let mut tx = super::WriteTx::begin(&self.inner.pool).await?;
        let device: Option<String> =
            sqlx::query_scalar("DELETE FROM logins WHERE user_ext = $1 RETURNING device")
                .bind(extension)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(device) = &device {
            insert_report(
                &mut tx,
                NewReport {
                    event: Event::Release,
                    device,
                    user: Some(extension),
                    previous_user: None,
                    via: Via::Api,
                    call_id: None,
                    source: None,
                },
                to_ms(now()),
            )
            .await?;
        }
        sqlx::query("DELETE FROM failures WHERE account = $1")
            .bind(extension)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM lockouts WHERE kind = 'account' AND subject = $1")
            .bind(extension)
            .execute(&mut *tx)
            .await?;
        let removed = sqlx::query("DELETE FROM users WHERE extension = $1")
            .bind(extension)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        if device.is_some() {
            self.inner.outbox.notify_one();
        }
        Ok(removed > 0)
    }

    /// Every user, by extension (numerically).
    pub async fn list_users(&self) -> Result<Vec<User>, DirectoryError> {
        let rows: Vec<UserRow> = sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY LENGTH(extension), extension"
        ))
        .fetch_all(&self.inner.pool)
        .await?;
        Ok(rows.into_iter().map(user_from_row).collect())
    }

    /// One user (for the IVR: name and prompt language), or `None`.
    pub async fn user(&self, extension: &str) -> Result<Option<User>, DirectoryError> {
        let row: Option<UserRow> = sqlx::query_as(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE extension = $1"
        ))
        .bind(extension)
        .fetch_optional(&self.inner.pool)
        .await?;
        Ok(row.map(user_from_row))
    }

    /// Imports users from CSV lines `extension,name,pin[,language]` (an optional header line
    /// starting with `extension`, `#` comments and blank lines are skipped). A new extension
    /// is added; an existing one gets the new name, and the PIN and language when given
    /// (an empty PIN or language keeps the current one). Each bad line is reported by number
    /// and the good lines are imported all the same.
    pub async fn import_csv(
        &self,
        reader: impl std::io::Read,
    ) -> Result<ImportReport, DirectoryError> {
        // Line by line rather than one csv reader over the whole input: a line number is then
        // exactly the file's, whatever comments or quoting errors came before, and one bad
        // line cannot swallow the next. (A quoted field cannot span lines; no field needs to.)
        let mut input = Vec::new();
        let mut reader = reader;
        reader
            .read_to_end(&mut input)
            .map_err(|e| DirectoryError::Read {
                path: "CSV".into(),
                reason: e.to_string(),
            })?;
        let mut report = ImportReport::default();
        let mut first = true;
        for (index, raw) in input.split(|&b| b == b'\n').enumerate() {
            let line = index as u64 + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t.trim(),
                Err(_) => {
                    report.errors.push(ImportLineError {
                        line,
                        message: "line: not UTF-8 text".into(),
                    });
                    continue;
                }
            };
            let text = if first {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let record = match parse_line(text) {
                Ok(r) => r,
                Err(message) => {
                    report.errors.push(ImportLineError { line, message });
                    continue;
                }
            };
            let is_header = first
                && record
                    .get(0)
                    .is_some_and(|f| f.eq_ignore_ascii_case("extension"));
            first = false;
            if is_header {
                continue;
            }
            match self.import_record(&record).await {
                Ok(true) => report.added += 1,
                Ok(false) => report.updated += 1,
                Err(e) if e.is_bad_input() => report.errors.push(ImportLineError {
                    line,
                    message: e.to_string(),
                }),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// One CSV record; true when the user is new.
    async fn import_record(&self, record: &csv::StringRecord) -> Result<bool, DirectoryError> {
        if !(3..=4).contains(&record.len()) {
            return Err(DirectoryError::Invalid {
                field: "line",
                reason: format!(
                    "expected extension,name,pin[,language]; found {} fields",
                    record.len()
                ),
            });
        }
        let extension = &record[0];
        let name = &record[1];
        let pin = SecretString::from(&record[2]);
        let language = record.get(3).filter(|l| !l.is_empty());
        validate_extension(extension)?;
        validate_name(name)?;
        if let Some(language) = language {
            validate_language(language)?;
        }
        let hash = if record[2].is_empty() {
            None
        } else {
            self.validate_pin_field(&pin, extension)?;
            Some(self.hash(&pin).await?)
        };
        let existed = self.user(extension).await?.is_some();
        sqlx::query(
            "INSERT INTO users (extension, name, language, pin_hash, created_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (extension) DO UPDATE SET \
             name = excluded.name, language = COALESCE(excluded.language, users.language), \
             pin_hash = COALESCE(excluded.pin_hash, users.pin_hash)",
        )
        .bind(extension)
        .bind(name)
        .bind(language)
        .bind(hash)
        .bind(to_ms(now()))
        .execute(&self.inner.pool)
        .await?;
        Ok(!existed)
    }
}

/// One CSV line as a record. The error never quotes the line (it could hold a PIN).
fn parse_line(text: &str) -> Result<csv::StringRecord, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    match (records.next(), records.next()) {
        (Some(Ok(record)), None) => Ok(record),
        _ => Err("line: not a CSV line (check the quotes)".into()),
    }
}

impl Directory {
    /// The server's PIN policy, with the error naming the field.
    fn validate_pin_field(
        &self,
        pin: &SecretString,
        extension: &str,
    ) -> Result<(), DirectoryError> {
        self.inner.pin_policy.check(pin, extension)
    }
}

/// Extensions are what is keyed at a desk: 1 to 20 digits.
pub(crate) fn validate_extension(extension: &str) -> Result<(), DirectoryError> {
    Extension::parse(extension)
        .map(drop)
        .map_err(|e| DirectoryError::Invalid {
            field: "extension",
            reason: e.to_string(),
        })
}

fn validate_name(name: &str) -> Result<(), DirectoryError> {
    let reason = if name.chars().count() > MAX_NAME {
        format!("is longer than {MAX_NAME} characters")
    } else if name.chars().any(char::is_control) {
        "contains control characters".into()
    } else {
        return Ok(());
    };
    Err(DirectoryError::Invalid {
        field: "name",
        reason,
    })
}

/// A BCP 47-ish tag as the prompt sets are named: `en`, `fra`, `pt-BR`, `zh-Hant-TW`.
fn validate_language(language: &str) -> Result<(), DirectoryError> {
    let mut parts = language.split('-');
    let primary = parts.next().unwrap_or_default();
    let ok = language.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(DirectoryError::Invalid {
            field: "language",
            reason: "is not a language tag like en, fr or pt-BR".into(),
        })
    }
}
