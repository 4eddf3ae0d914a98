//! The embedded directory: users and their PIN hashes, who is logged in at which desk, failed
//! attempts and lockouts, and the report outbox (contract §1 `users`/`devices`, §4, §5).
//!
//! # Semantics (what a PBX user expects)
//!
//! - **One desk per user, one user per desk.** Logging in at a second desk releases the first
//!   (a `release` report for it, then the `login`). Logging in at a desk someone else holds
//!   replaces them (`previous_user` in the `login` report; no separate release). Logging in
//!   again where you already are refreshes the login.
//! - **Wrong account and wrong PIN are indistinguishable** ([`LoginOutcome::Incorrect`]), in
//!   result and in time: an unknown account, or one without a PIN, is verified against a dummy
//!   hash of the same cost.
//! - **Lockouts.** `failures` wrong attempts on one account within `window` lock the account
//!   for `lock`; `device_failures` on one desk (across any accounts: someone trying many
//!   extensions) lock the desk. The attempt that trips a lock gets [`LoginOutcome::LockedOut`]
//!   and writes a `locked_out` report (null `user` for a desk). While locked, attempts are
//!   refused without verifying and without counting again, and write no report. Failures from
//!   before a lock ended do not count again after it, so an expired lock gives a fresh
//!   allowance; an admin [`Directory::unlock`] does too. A successful login clears its
//!   account's failures.
//! - **Atomic and ordered.** A login reads the lockout state and the PIN hash, verifies the
//!   PIN (Argon2id, tens of milliseconds, at most one job per core), then takes the write lock
//!   (`BEGIN IMMEDIATE`), checks the lockout and the hash again and writes the outcome with its
//!   reports. Verifying outside the lock lets logins run in parallel (the load bench saw them
//!   fail at 12/s when the hash ran under the lock); checking again under it keeps the attempt
//!   counters exact under concurrent guessing, since a lock that engaged meanwhile wins.
//!   Reports are written in the same transaction as the change they report, so they exist if
//!   and only if it does. A write transaction that ends in an error closes its connection
//!   ([`WriteTx`]): after a full disk SQLite may have rolled back on its own.
//! - **Health.** [`Directory::probe`] writes one row, so the server can refuse calls while the
//!   store cannot record a login (read-only, disk full).
//! - **Durable.** SQLite in WAL mode with `synchronous=FULL`: a committed login or report
//!   survives a power cut, which is the "never lost" promise of contract §5.
//!
//! # Store
//!
//! SQLite through sqlx (no compile-time checked queries: nothing is needed at build time).
//! The SQL is kept portable where that is cheap: `$n` placeholders, `ON CONFLICT … DO UPDATE`,
//! `RETURNING`, BIGINT millisecond timestamps, no `user` column. Postgres is not implemented:
//! it needs its own migration (`reports.seq` as an identity column) and a `PgPool`, and
//! `BEGIN IMMEDIATE` becomes a row lock or SERIALIZABLE.
//!
//! PINs never leave this module except as [`SecretString`]s going in: they appear in no log,
//! error, `Debug` output or report.

mod pin;
mod seam;
mod users;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sqlx::Connection as _;
use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use time::OffsetDateTime;
use tokio::sync::{Notify, Semaphore};

use crate::lockout;
pub use crate::lockout::{LockKind, LockoutPolicy};
use hotdesk_core::identity::{Extension, SourceKey};
use hotdesk_core::model::{Event, Report};
pub use hotdesk_core::model::{LoginAttempt, LoginOutcome, Via};

pub use crate::error::DirectoryError;
pub use crate::records::{ImportLineError, ImportReport, Lock, Login, Pending, User};
pub use pin::{
    MIN_PEPPER_BYTES, PEPPER_ENV, PIN_DIGITS, Pepper, PinPolicy, dummy_hash, hash_pin, pepper_path,
    validate_pin, verify_pin,
};

/// How long a connection waits for another writer before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The directory: cheap to clone (one shared pool), safe to use from any task.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    pepper: Pepper,
    policy: LockoutPolicy,
    /// Which PINs may be set.
    pin_policy: PinPolicy,
    /// See [`dummy_hash`].
    dummy_hash: String,
    /// Woken after every commit that wrote a report, for the delivery task.
    outbox: Notify,
    /// One permit per core for Argon2id. Each hash holds 19 MiB and a core's worth of CPU for
    /// tens of milliseconds; unbounded, 500 logins at once ran hundreds of them on the blocking
    /// pool (5 GB of RSS in the load bench) and starved the RTP pacing. Waiters queue here,
    /// in order, instead.
    hash_slots: Semaphore,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// A report about to be written.
struct NewReport<'a> {
    event: Event,
    device: &'a str,
    user: Option<&'a str>,
    previous_user: Option<&'a str>,
    via: Via,
    call_id: Option<&'a str>,
    /// For `source_blocked`: the source key.
    source: Option<&'a str>,
}

/// What one login attempt is counted against.
#[derive(Debug, Clone)]
struct Subjects<'a> {
    /// The account keyed, when it is an extension at all (a known user's, once checked).
    account: Option<&'a str>,
    /// The desk, canonical.
    device: &'a str,
    /// The source key ([`SourceKey`]), when source limits apply.
    source: Option<String>,
}

type ReportRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    i64,
    i64,
    i64,
    Option<String>,
);

/// The columns of a [`ReportRow`], as a literal for `concat!` (sqlx wants `'static` SQL).
macro_rules! report_columns {
    () => {
        "seq, id, event, device, user_ext, previous_user, via, call_id, at_ms, attempts, \
         next_attempt_ms, source"
    };
}

impl Directory {
    /// Opens (creating if needed) the store at `url` (`sqlite://FILE` or `sqlite::memory:`),
    /// runs the migrations, and checks that `pepper` is the one the stored hashes were made
    /// with.
    pub async fn open(
        url: &str,
        pepper: Pepper,
        policy: LockoutPolicy,
    ) -> Result<Directory, DirectoryError> {
        Directory::open_with(url, pepper, policy, PinPolicy::default()).await
    }

    /// [`Directory::open`] with a PIN policy other than the default.
    pub async fn open_with(
        url: &str,
        pepper: Pepper,
        policy: LockoutPolicy,
        pin_policy: PinPolicy,
    ) -> Result<Directory, DirectoryError> {
        if let Some(reason) = policy.invalid() {
            return Err(DirectoryError::Invalid {
                field: "security",
                reason: reason.into(),
            });
        }
        if !url.starts_with("sqlite:") {
            return Err(DirectoryError::Invalid {
                field: "store.url",
                reason: format!(
                    "{:?}: only sqlite:// stores are implemented so far",
                    url.split("://").next().unwrap_or(url)
                ),
            });
        }
        let open_error = |source| DirectoryError::Open {
            url: url.into(),
            source,
            hint: String::new(),
        };
        let options = SqliteConnectOptions::from_str(url)
            .map_err(open_error)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        // One connection first switches a new file to WAL on its own: the pool opens its
        // connections concurrently, and two of them switching the journal mode at once get
        // SQLITE_BUSY without the busy handler being asked (seen under load in CI).
        let on_disk = !url.contains(":memory:") && !url.contains("mode=memory");
        if on_disk {
            private_files(options.get_filename());
            let first = SqliteConnection::connect_with(&options)
                .await
                .map_err(|source| DirectoryError::Open {
                    url: url.into(),
                    source,
                    hint: why_unwritable(options.get_filename()),
                })?;
            first.close().await.map_err(open_error)?;
        }
        // Connections are never recycled: an in-memory store lives only as long as one of
        // them, and reopening a file buys nothing.
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| DirectoryError::Migrate {
                url: url.into(),
                source,
            })?;
        check_pepper(&pool, url, &pepper).await?;
        let dummy = {
            let pepper = pepper.clone();
            tokio::task::spawn_blocking(move || dummy_hash(&pepper))
                .await
                .map_err(|e| DirectoryError::Hash(format!("hashing thread: {e}")))??
        };
        Ok(Directory {
            inner: Arc::new(Inner {
                pool,
                pepper,
                policy,
                pin_policy,
                dummy_hash: dummy,
                outbox: Notify::new(),
                hash_slots: Semaphore::new(
                    std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                ),
            }),
        })
    }

    /// The lockout policy in force.
    pub fn policy(&self) -> LockoutPolicy {
        self.inner.policy
    }

    /// Closes the pool (waits for connections to be returned). Optional: dropping the last
    /// clone closes it too, but not before the process may exit.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    /// Whether `a.pin` matches `hash`; an account without one is checked against the dummy
    /// hash, so that both take the same time.
    async fn check_pin(
        &self,
        a: &LoginAttempt,
        hash: Option<String>,
    ) -> Result<bool, DirectoryError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let matches = self.verify(&a.pin, hash).await.map_err(|e| match e {
            DirectoryError::Hash(reason) => {
                DirectoryError::Hash(format!("stored hash of extension {}: {reason}", a.account))
            }
            other => other,
        })?;
        Ok(known && matches)
    }

    /// [`Directory::login_at`] now.
    pub async fn login(&self, attempt: &LoginAttempt) -> Result<LoginOutcome, DirectoryError> {
        self.login_at(attempt, now()).await
    }

    /// A login attempt at time `now` (injected so lockout windows can be tested without
    /// sleeping). See the module documentation for the semantics.
    pub async fn login_at(
        &self,
        a: &LoginAttempt,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, DirectoryError> {
        let device = canonical("device", &a.device)?;
        let call_id = a.call_id.as_deref().filter(|c| !c.is_empty());
        if let Some(c) = call_id {
            check_call_id(c)?;
        }
        // What the caller keyed is an account only if it is a user's exact extension; anything
        // else (a PIN typed without the first `#`, a number spelt with a leading zero) is not
        // kept, logged or reported anywhere.
        let keyed = Extension::parse(&a.account).ok();
        let subjects = Subjects {
            account: keyed.as_ref().map(Extension::as_str),
            device: device.as_str(),
            source: a.source.map(|ip| SourceKey::of(ip).as_str().to_owned()),
        };
        let now_ms = to_ms(now);
        // The PIN is checked before the write lock is taken: Argon2id takes tens of
        // milliseconds of CPU, and under the lock every login in the store waited for every
        // other one's hash (the load bench saw logins time out at 12/s). The lock is then
        // taken to record the outcome, and what was read is checked again under it.
        let (locked_until, stored) = {
            let mut conn = self.inner.pool.acquire().await?;
            let lock = active_lock(&mut conn, &subjects, now_ms).await?;
            (lock, account_hash(&mut conn, subjects.account).await?)
        };
        if let Some(until) = locked_until {
            return Ok(LoginOutcome::LockedOut {
                until: from_ms(until),
            });
        }
        let mut matches = self.check_pin(a, stored.clone().flatten()).await?;

        let mut tx = WriteTx::begin(&self.inner.pool).await?;
        // A lock that engaged while we hashed (parallel guesses) wins: no more failures are
        // counted than the policy allows.
        if let Some(until) = active_lock(&mut tx, &subjects, now_ms).await? {
            tx.rollback().await?;
            return Ok(LoginOutcome::LockedOut {
                until: from_ms(until),
            });
        }
        let now_stored = account_hash(&mut tx, subjects.account).await?;
        if now_stored != stored {
            // The PIN changed while we hashed (rare): check the new one, under the lock.
            matches = self.check_pin(a, now_stored.clone().flatten()).await?;
        }
        let account = match (&now_stored, &keyed) {
            (Some(hash), Some(account)) if hash.is_some() && matches => account.as_str(),
            _ => {
                let known = subjects.account.filter(|_| now_stored.is_some());
                let failed = Subjects {
                    account: known,
                    ..subjects
                };
                let outcome = self
                    .record_failure(&mut tx, &failed, a.via, call_id, now_ms)
                    .await?;
                tx.commit().await?;
                self.inner.outbox.notify_one();
                return Ok(outcome);
            }
        };
        let outcome = self
            .record_login(&mut tx, account, device.as_str(), a.via, call_id, now_ms)
            .await?;
        tx.commit().await?;
        self.inner.outbox.notify_one();
        Ok(outcome)
    }

    /// Writes a failed attempt and its report; locks each subject whose failures reach the
    /// policy's limit ([`LockoutPolicy::lock_until`]), with a `locked_out` (account, desk) or
    /// `source_blocked` report.
    async fn record_failure(
        &self,
        tx: &mut WriteTx,
        s: &Subjects<'_>,
        via: Via,
        call_id: Option<&str>,
        now_ms: i64,
    ) -> Result<LoginOutcome, DirectoryError> {
        let policy = self.inner.policy;
        let oldest = now_ms.saturating_sub(lockout::ms(policy.longest_window()));
        sqlx::query("DELETE FROM failures WHERE at_ms <= $1")
            .bind(oldest)
            .execute(&mut **tx)
            .await?;
        sqlx::query(
            "INSERT INTO failures (account, device, source, at_ms) VALUES ($1, $2, $3, $4)",
        )
        .bind(s.account)
        .bind(s.device)
        .bind(s.source.as_deref())
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        let failed = NewReport {
            event: Event::LoginFailed,
            device: s.device,
            user: s.account,
            previous_user: None,
            via,
            call_id,
            source: None,
        };
        insert_report(tx, failed, now_ms).await?;
        let subjects = [
            (LockKind::Account, s.account),
            (LockKind::Device, Some(s.device)),
            (LockKind::Source, s.source.as_deref()),
        ];
        let mut locked_until = None;
        for (kind, subject) in subjects {
            let Some(subject) = subject else { continue };
            let count = recent_failures(tx, &policy, kind, subject, now_ms).await?;
            let Some(until) = policy.lock_until(kind, count, now_ms) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO lockouts (kind, subject, until_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (kind, subject) DO UPDATE SET until_ms = excluded.until_ms",
            )
            .bind(kind.as_str())
            .bind(subject)
            .bind(until)
            .execute(&mut **tx)
            .await?;
            let report = NewReport {
                event: kind.event(),
                device: s.device,
                user: (kind == LockKind::Account).then_some(subject),
                previous_user: None,
                via,
                call_id,
                source: (kind == LockKind::Source).then_some(subject),
            };
            insert_report(tx, report, now_ms).await?;
            tracing::warn!(
                kind = kind.as_str(),
                subject,
                "locked after {count} failed logins"
            );
            locked_until = locked_until.max(Some(until));
        }
        Ok(match locked_until {
            Some(until) => LoginOutcome::LockedOut {
                until: from_ms(until),
            },
            None => LoginOutcome::Incorrect,
        })
    }

    /// Logs `account` in at `device` (the PIN matched): releases the user's other desk and
    /// replaces whoever held this one, with their reports.
    async fn record_login(
        &self,
        tx: &mut WriteTx,
        account: &str,
        device: &str,
        via: Via,
        call_id: Option<&str>,
        now_ms: i64,
    ) -> Result<LoginOutcome, DirectoryError> {
        sqlx::query("DELETE FROM failures WHERE account = $1")
            .bind(account)
            .execute(&mut **tx)
            .await?;
        let elsewhere: Option<String> = sqlx::query_scalar(
            "DELETE FROM logins WHERE user_ext = $1 AND device <> $2 RETURNING device",
        )
        .bind(account)
        .bind(device)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(other) = &elsewhere {
            let release = NewReport {
                event: Event::Release,
                device: other,
                user: Some(account),
                previous_user: None,
                via,
                call_id,
                source: None,
            };
            insert_report(tx, release, now_ms).await?;
        }
        let holder: Option<String> =
            sqlx::query_scalar("SELECT user_ext FROM logins WHERE device = $1")
                .bind(device)
                .fetch_optional(&mut **tx)
                .await?;
        let previous_user = holder.filter(|h| h != account);
        sqlx::query(
            "INSERT INTO logins (device, user_ext, since_ms, via, call_id) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (device) DO UPDATE SET user_ext = excluded.user_ext, \
             since_ms = excluded.since_ms, via = excluded.via, call_id = excluded.call_id",
        )
        .bind(device)
        .bind(account)
        .bind(now_ms)
        .bind(via.as_str())
        .bind(call_id)
        .execute(&mut **tx)
        .await?;
        let login = NewReport {
            event: Event::Login,
            device,
            user: Some(account),
            previous_user: previous_user.as_deref(),
            via,
            call_id,
            source: None,
        };
        insert_report(tx, login, now_ms).await?;
        Ok(LoginOutcome::Accepted {
            user: account.to_owned(),
            previous_user,
            released_from: elsewhere,
        })
    }

    /// [`Directory::release_at`] now.
    pub async fn release(
        &self,
        device: &str,
        via: Via,
        call_id: Option<&str>,
    ) -> Result<Option<String>, DirectoryError> {
        self.release_at(device, via, call_id, now()).await
    }

    /// Releases a desk: the user logged in there, or `None` when nobody was (and then no
    /// report is written).
    pub async fn release_at(
        &self,
        device: &str,
        via: Via,
        call_id: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<String>, DirectoryError> {
        canonical("device", device)?;
        let call_id = call_id.filter(|c| !c.is_empty());
        if let Some(c) = call_id {
            check_call_id(c)?;
        }
        let mut tx = WriteTx::begin(&self.inner.pool).await?;
        let user: Option<String> =
            sqlx::query_scalar("DELETE FROM logins WHERE device = $1 RETURNING user_ext")
                .bind(device)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(user) = &user {
            insert_report(
                &mut tx,
                NewReport {
                    event: Event::Release,
                    device,
                    user: Some(user),
                    previous_user: None,
                    via,
                    call_id,
                    source: None,
                },
                to_ms(now),
            )
            .await?;
        }
        tx.commit().await?;
        if user.is_some() {
            self.inner.outbox.notify_one();
        }
        Ok(user)
    }

    /// Every current login, by desk.
    pub async fn logins(&self) -> Result<Vec<Login>, DirectoryError> {
        let rows: Vec<(String, String, i64, String, Option<String>)> = sqlx::query_as(
            "SELECT device, user_ext, since_ms, via, call_id FROM logins \
             ORDER BY LENGTH(device), device",
        )
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter()
            .map(|(device, user, since, via, call_id)| {
                Ok(Login {
                    device,
                    user,
                    since: from_ms(since),
                    via: parse_via(&via)?,
                    call_id,
                })
            })
            .collect()
    }

    /// The login at one desk, if any.
    pub async fn login_at_device(&self, device: &str) -> Result<Option<Login>, DirectoryError> {
        Ok(self
            .logins()
            .await?
            .into_iter()
            .find(|l| l.device == device))
    }

    /// Clears the lockout and the failure count of an account, or of a desk with that
    /// extension (both, if both exist), or the block of a source (an IP address, or an IPv6
    /// /64 as [`SourceKey`] writes it). True when a lock was in force.
    pub async fn unlock(&self, subject: &str) -> Result<bool, DirectoryError> {
        let (kinds, key): (&[&str], String) = match Extension::parse(subject) {
            Ok(extension) => (&["account", "device"], extension.into()),
            Err(_) => (&["source"], parse_source(subject)?),
        };
        let now_ms = to_ms(now());
        let mut tx = WriteTx::begin(&self.inner.pool).await?;
        let mut cleared = Vec::new();
        for kind in kinds {
            let until: Option<i64> = sqlx::query_scalar(
                "DELETE FROM lockouts WHERE kind = $1 AND subject = $2 RETURNING until_ms",
            )
            .bind(kind)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?;
            cleared.extend(until);
        }
        sqlx::query("DELETE FROM failures WHERE account = $1 OR device = $1 OR source = $1")
            .bind(&key)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(cleared.into_iter().any(|until| until > now_ms))
    }

    /// Every lock in force at `now`, soonest to end first.
    pub async fn lockouts_at(&self, now: OffsetDateTime) -> Result<Vec<Lock>, DirectoryError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT kind, subject, until_ms FROM lockouts WHERE until_ms > $1 \
             ORDER BY until_ms, kind, subject",
        )
        .bind(to_ms(now))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter()
            .map(|(kind, subject, until)| {
                Ok(Lock {
                    kind: LockKind::parse(&kind)
                        .ok_or_else(|| DirectoryError::Corrupt(format!("lock kind {kind:?}")))?
                        .as_str(),
                    subject,
                    until: from_ms(until),
                })
            })
            .collect()
    }

    /// [`Directory::locked_until_at`] now.
    pub async fn locked_until(
        &self,
        subject: &str,
    ) -> Result<Option<OffsetDateTime>, DirectoryError> {
        self.locked_until_at(subject, now()).await
    }

    /// When the lock on an account or desk named `subject` (or the block of a source, given
    /// as an address) ends, if one is in force at `now`.
    pub async fn locked_until_at(
        &self,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, DirectoryError> {
        let subjects = Subjects {
            account: Some(subject),
            device: subject,
            source: parse_source(subject).ok(),
        };
        let mut conn = self.inner.pool.acquire().await?;
        Ok(active_lock(&mut conn, &subjects, to_ms(now))
            .await?
            .map(from_ms))
    }

    /// True when an account or desk named `subject` is locked now.
    pub async fn is_locked(&self, subject: &str) -> Result<bool, DirectoryError> {
        Ok(self.locked_until(subject).await?.is_some())
    }

    /// The report log after the report `after` (from the start when `None`), oldest first, at
    /// most `limit` (`GET /v1/events?after=ID`). Delivered or not.
    pub async fn events_after(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Report>, DirectoryError> {
        let after_seq = match after {
            None => 0,
            Some(id) => sqlx::query_scalar("SELECT seq FROM reports WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.inner.pool)
                .await?
                .ok_or_else(|| DirectoryError::UnknownEvent(id.into()))?,
        };
        let rows: Vec<ReportRow> = sqlx::query_as(concat!(
            "SELECT ",
            report_columns!(),
            " FROM reports WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter()
            .map(|row| report_from_row(row).map(|p| p.report))
            .collect()
    }

    /// Deletes what no one needs any more at `now`: delivered reports older than `retention`
    /// (`None`: keep them), failures older than every window that counts them, and locks that
    /// ended. Undelivered reports are never deleted. Returns the reports deleted.
    pub async fn prune_at(
        &self,
        now: OffsetDateTime,
        retention: Option<Duration>,
    ) -> Result<u64, DirectoryError> {
        let now_ms = to_ms(now);
        let policy = self.inner.policy;
        let failures_before =
            now_ms.saturating_sub(duration_ms(policy.window.max(policy.source_window)));
        let mut tx = WriteTx::begin(&self.inner.pool).await?;
        let reports = match retention {
            Some(keep) => {
                sqlx::query("DELETE FROM reports WHERE delivered_ms IS NOT NULL AND at_ms < $1")
                    .bind(now_ms.saturating_sub(duration_ms(keep)))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            None => 0,
        };
        sqlx::query("DELETE FROM failures WHERE at_ms <= $1")
            .bind(failures_before)
            .execute(&mut *tx)
            .await?;
        // An ended lock still marks where its subject's failures start counting again, for as
        // long as failures from before it could be counted.
        sqlx::query("DELETE FROM lockouts WHERE until_ms <= $1")
            .bind(failures_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(reports)
    }

    /// Writes one row and commits: `Err` when the store cannot take a login right now (the
    /// file or its file system read-only, the disk full, the file gone), so that the server
    /// refuses calls instead of running prompts that cannot end in a login.
    pub async fn probe(&self) -> Result<(), DirectoryError> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('probe', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(to_ms(OffsetDateTime::now_utc()).to_string())
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Reports not yet acknowledged by the webhook receiver (a gauge for `/metrics`).
    pub async fn queue_depth(&self) -> Result<u64, DirectoryError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports WHERE delivered_ms IS NULL")
            .fetch_one(&self.inner.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The oldest undelivered report of every device, oldest first.
    pub async fn outbox_heads(&self) -> Result<Vec<Pending>, DirectoryError> {
        let rows: Vec<ReportRow> = sqlx::query_as(concat!(
            "SELECT ",
            report_columns!(),
            " FROM reports r WHERE delivered_ms IS NULL AND seq = (SELECT MIN(seq) FROM reports p \
             WHERE p.delivered_ms IS NULL AND p.device = r.device) ORDER BY seq"
        ))
        .fetch_all(&self.inner.pool)
        .await?;
        rows.into_iter().map(report_from_row).collect()
    }

    /// Marks a report delivered (acknowledged with a 2xx).
    pub async fn mark_delivered(&self, seq: i64, at_ms: i64) -> Result<(), DirectoryError> {
        sqlx::query("UPDATE reports SET delivered_ms = $2, last_error = NULL WHERE seq = $1")
            .bind(seq)
            .bind(at_ms)
            .execute(&self.inner.pool)
            .await?;
        Ok(())
    }

    /// Records a failed delivery attempt and when to try again.
    pub async fn mark_failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), DirectoryError> {
        sqlx::query(
            "UPDATE reports SET attempts = $2, next_attempt_ms = $3, last_error = $4 \
             WHERE seq = $1",
        )
        .bind(seq)
        .bind(i64::from(attempts))
        .bind(next_attempt_ms)
        .bind(error)
        .execute(&self.inner.pool)
        .await?;
        Ok(())
    }

    /// Woken whenever a report is committed.
    pub fn outbox_notify(&self) -> &Notify {
        &self.inner.outbox
    }

    /// Verifies on the blocking pool (Argon2 is tens of milliseconds of CPU).
    async fn verify(&self, pin: &SecretString, hash: String) -> Result<bool, DirectoryError> {
        let pepper = self.inner.pepper.clone();
        let pin = pin.clone();
        self.hashing(move || verify_pin(&pepper, &pin, &hash)).await
    }

    /// Hashes on the blocking pool.
    async fn hash(&self, pin: &SecretString) -> Result<String, DirectoryError> {
        validate_pin(pin)?;
        let pepper = self.inner.pepper.clone();
        let pin = pin.clone();
        self.hashing(move || hash_pin(&pepper, &pin)).await
    }

    /// Runs an Argon2id job on the blocking pool once a hashing slot is free.
    async fn hashing<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, DirectoryError> + Send + 'static,
    ) -> Result<T, DirectoryError> {
        let _slot = self
            .inner
            .hash_slots
            .acquire()
            .await
            .map_err(|e| DirectoryError::Hash(format!("hashing slots: {e}")))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| DirectoryError::Hash(format!("hashing thread: {e}")))?
    }
}

/// Stores the pepper's fingerprint on first use; refuses another pepper while hashes exist.
async fn check_pepper(pool: &SqlitePool, url: &str, pepper: &Pepper) -> Result<(), DirectoryError> {
    let fingerprint = pepper.fingerprint();
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'pepper_fingerprint'")
            .fetch_optional(pool)
            .await?;
    if stored.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    if stored.is_some() {
        let hashes: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE pin_hash IS NOT NULL")
                .fetch_one(pool)
                .await?;
        if hashes > 0 {
            return Err(DirectoryError::PepperMismatch { url: url.into() });
        }
    }
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES ('pepper_fingerprint', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(fingerprint)
    .execute(pool)
    .await?;
    Ok(())
}

/// The end of the latest lock in force at `now_ms` on the account or the device.
/// A `BEGIN IMMEDIATE` transaction on a pooled connection, ended by [`WriteTx::commit`] or
/// [`WriteTx::rollback`]. Dropped unfinished (an error on the way), its connection is closed
/// instead of going back to the pool: on SQLITE_FULL or an I/O error SQLite may already have
/// rolled the transaction back itself, sqlx's own rollback then fails and its transaction count
/// stays at one, and every later `BEGIN` on that connection failed ("non-zero transaction
/// depth"; found by the disk-full test once the disk had space again).
pub(crate) struct WriteTx {
    conn: PoolConnection<Sqlite>,
    done: bool,
}

impl WriteTx {
    pub(crate) async fn begin(pool: &SqlitePool) -> Result<WriteTx, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        Ok(WriteTx { conn, done: false })
    }

    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.done = true;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), sqlx::Error> {
        sqlx::query("ROLLBACK").execute(&mut *self.conn).await?;
        self.done = true;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.done {
            self.conn.close_on_drop();
        }
    }
}

/// `None` when `account` is no user; `Some(None)` for a user without a PIN; else the hash.
async fn account_hash(
    conn: &mut SqliteConnection,
    account: Option<&str>,
) -> Result<Option<Option<String>>, DirectoryError> {
    let Some(account) = account else {
        return Ok(None);
    };
    Ok(
        sqlx::query_scalar("SELECT pin_hash FROM users WHERE extension = $1")
            .bind(account)
            .fetch_optional(conn)
            .await?,
    )
}

/// The end of the latest lock in force at `now_ms` on any of the attempt's subjects.
async fn active_lock(
    conn: &mut SqliteConnection,
    s: &Subjects<'_>,
    now_ms: i64,
) -> Result<Option<i64>, DirectoryError> {
    Ok(sqlx::query_scalar(
        "SELECT MAX(until_ms) FROM lockouts WHERE until_ms > $1 AND \
         ((kind = 'account' AND subject = $2) OR (kind = 'device' AND subject = $3) \
          OR (kind = 'source' AND subject = $4))",
    )
    .bind(now_ms)
    .bind(s.account)
    .bind(s.device)
    .bind(s.source.as_deref())
    .fetch_one(conn)
    .await?)
}

/// Failures of one subject that count at `now_ms` ([`LockoutPolicy::counting_since`]).
async fn recent_failures(
    conn: &mut SqliteConnection,
    policy: &LockoutPolicy,
    kind: LockKind,
    subject: &str,
    now_ms: i64,
) -> Result<i64, DirectoryError> {
    let last_lock: Option<i64> =
        sqlx::query_scalar("SELECT until_ms FROM lockouts WHERE kind = $1 AND subject = $2")
            .bind(kind.as_str())
            .bind(subject)
            .fetch_optional(&mut *conn)
            .await?;
    let since = policy.counting_since(kind, now_ms, last_lock);
    let sql = match kind {
        LockKind::Account => "SELECT COUNT(*) FROM failures WHERE account = $1 AND at_ms > $2",
        LockKind::Device => "SELECT COUNT(*) FROM failures WHERE device = $1 AND at_ms > $2",
        LockKind::Source => "SELECT COUNT(*) FROM failures WHERE source = $1 AND at_ms > $2",
    };
    Ok(sqlx::query_scalar(sql)
        .bind(subject)
        .bind(since)
        .fetch_one(conn)
        .await?)
}

async fn insert_report(
    conn: &mut SqliteConnection,
    r: NewReport<'_>,
    at_ms: i64,
) -> Result<Report, DirectoryError> {
    let at = from_ms(at_ms);
    let id = ulid::Ulid::from_datetime(at.into()).to_string();
    sqlx::query(
        "INSERT INTO reports (id, event, device, user_ext, previous_user, via, call_id, at_ms, \
         next_attempt_ms, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
    )
    .bind(&id)
    .bind(r.event.as_str())
    .bind(r.device)
    .bind(r.user)
    .bind(r.previous_user)
    .bind(r.via.as_str())
    .bind(r.call_id)
    .bind(at_ms)
    .bind(r.source)
    .execute(conn)
    .await?;
    Ok(Report {
        id,
        event: r.event,
        device: r.device.into(),
        user: r.user.map(Into::into),
        previous_user: r.previous_user.map(Into::into),
        via: r.via,
        call_id: r.call_id.map(Into::into),
        at,
        source: r.source.map(Into::into),
    })
}

fn report_from_row(row: ReportRow) -> Result<Pending, DirectoryError> {
    let (seq, id, event, device, user, previous_user, via, call_id, at_ms, attempts, next, source) =
        row;
    Ok(Pending {
        seq,
        report: Report {
            event: Event::parse(&event)
                .ok_or_else(|| DirectoryError::Corrupt(format!("report {id}: event {event:?}")))?,
            id,
            device,
            user,
            previous_user,
            via: parse_via(&via)?,
            call_id,
            at: from_ms(at_ms),
            source,
        },
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_ms: next,
    })
}

/// A stored `via`.
fn parse_via(s: &str) -> Result<Via, DirectoryError> {
    Via::parse(s).ok_or_else(|| DirectoryError::Corrupt(format!("unknown via {s:?}")))
}

/// An extension from outside (device, account), which must be canonical ([`Extension`]).
fn canonical(field: &'static str, value: &str) -> Result<Extension, DirectoryError> {
    Extension::parse(value).map_err(|e| DirectoryError::Invalid {
        field,
        reason: e.to_string(),
    })
}

/// The source key ([`SourceKey`]) of an address or an IPv6 /64.
fn parse_source(text: &str) -> Result<String, DirectoryError> {
    SourceKey::parse(text)
        .map(|k| k.as_str().to_owned())
        .map_err(|e| DirectoryError::Invalid {
            field: "subject",
            reason: format!("an extension, or {e}"),
        })
}

/// A SIP Call-ID: may be empty (no call), else at most 256 visible ASCII characters.
fn check_call_id(value: &str) -> Result<(), DirectoryError> {
    if value.len() > 256 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(DirectoryError::Invalid {
            field: "call_id",
            reason: "must be at most 256 visible ASCII characters".into(),
        });
    }
    Ok(())
}

/// The current time, truncated to the millisecond the store keeps.
pub fn now() -> OffsetDateTime {
    from_ms(to_ms(OffsetDateTime::now_utc()))
}

/// Makes the store's file, and its WAL and shared-memory files if they exist, readable by
/// the owner only: they hold the PIN hashes (peppered, but still what an offline guess
/// starts from). A new file is created 0600 before SQLite opens it; SQLite gives the WAL and
/// shm files the mode of the database file.
/// Failures are logged, not fatal: a read-only store is refused with a clearer message when
/// SQLite opens it, and a file someone else owns is theirs to protect.
fn private_files(path: &Path) {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if !path.exists() {
        // Any failure here is SQLite's to report, with the usual hint.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if let Ok(meta) = std::fs::metadata(file)
            && meta.permissions().mode() & 0o077 != 0
            && let Err(e) = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(file = %file.display(), "cannot make the store private (0600): {e}");
        }
    }
}

/// Why SQLite could not open `path` for writing, as the file system tells it; empty when it
/// can (or the reason is something else).
fn why_unwritable(path: &Path) -> String {
    let probe = if path.exists() {
        std::fs::OpenOptions::new().append(true).open(path)
    } else {
        // A new store is created next to its WAL and pepper files: the directory must be
        // writable, which only creating a file tells.
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        tempfile::tempfile_in(dir.unwrap_or(Path::new(".")))
    };
    match probe {
        Ok(_) => String::new(),
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {
            "; the file system holding it is read-only".into()
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            "; no permission to write it".into()
        }
        Err(e) => format!("; {e}"),
    }
}

pub fn to_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivered_reports_past_the_retention_are_pruned_and_no_others() {
        let d = Directory::open(
            "sqlite::memory:",
            Pepper::random(),
            LockoutPolicy::default(),
        )
        .await
        .unwrap();
        d.add_user("1001", None, None).await.unwrap();
        d.set_pin("1001", &SecretString::from("2580"))
            .await
            .unwrap();
        let t0 = from_ms(1_800_000_000_000);
        let day = time::Duration::days(1);
        for (i, device) in ["5401", "5402", "5403"].into_iter().enumerate() {
            let attempt = LoginAttempt {
                device: device.into(),
                account: "1001".into(),
                pin: SecretString::from("2580"),
                via: Via::FeatureCode,
                call_id: Some("c".into()),
                source: None,
            };
            d.login_at(&attempt, t0 + day * (i as i32)).await.unwrap();
        }
        // Logins at days 0, 1 and 2, each releasing the one before: five reports.
        let all = d.events_after(None, 100).await.unwrap();
        assert_eq!(all.len(), 5);
        // All but the last delivered.
        let heads = d.outbox_heads().await.unwrap();
        assert!(!heads.is_empty());
        let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM reports ORDER BY seq")
            .fetch_all(&d.inner.pool)
            .await
            .unwrap();
        for seq in &seqs[..4] {
            d.mark_delivered(*seq, to_ms(t0)).await.unwrap();
        }
        // At day 3 with a 36 h retention: the delivered reports of days 0 and 1 go (4: the
        // day-2 release is delivered but recent), the undelivered one stays.
        let pruned = d
            .prune_at(t0 + day * 3, Some(Duration::from_secs(36 * 3600)))
            .await
            .unwrap();
        let left = d.events_after(None, 100).await.unwrap();
        assert_eq!(pruned as usize + left.len(), 5);
        assert!(left.iter().all(|r| r.at >= t0 + day * 2), "{left:?}");
        assert_eq!(
            left.last().map(|r| r.id.clone()),
            all.last().map(|r| r.id.clone())
        );
    }
}
