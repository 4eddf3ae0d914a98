//! The lockout policy, pure: what the failures counted so far lock, and until when. No store
//! and no clock: times are milliseconds since the epoch, passed in, so the rules are tested on
//! injected time (the store only counts rows and writes what this decides).
//!
//! - **Accounts**: `failures` wrong attempts within `window` lock the account for `lock`.
//! - **Desks**: `device_failures` wrong attempts from one desk (any accounts) within `window`
//!   lock the desk for `lock`: someone trying many extensions at one phone.
//! - **Sources**: `source_failures` wrong attempts from one address (any desks) within
//!   `source_window` block it for `source_block`, as fail2ban does over Asterisk's security
//!   events: someone guessing across desks and accounts from one host.
//! - Failures from before a lock ended do not count again after it (an expired lock gives a
//!   fresh allowance), so a count starts at the later of the window's start and the subject's
//!   last lock's end ([`LockoutPolicy::counting_since`]).

use std::time::Duration;

use hotdesk_core::model::Event;

/// Lockout limits (`[security]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failed attempts on one account within `window` that lock it.
    pub failures: u32,
    /// The sliding window failures are counted in.
    pub window: Duration,
    /// How long a lock lasts.
    pub lock: Duration,
    /// Failed attempts from one desk (any accounts) within `window` that lock the desk.
    pub device_failures: u32,
    /// Failed attempts from one source address (any desks, any accounts) within
    /// `source_window` that block the source for `source_block`.
    pub source_failures: u32,
    /// The window source failures are counted in.
    pub source_window: Duration,
    /// How long a source stays blocked.
    pub source_block: Duration,
}

impl LockoutPolicy {
    /// Failures per desk when the configuration does not say: twice the usual per-account
    /// limit, so one person mistyping does not lock a shared phone.
    pub const DEFAULT_DEVICE_FAILURES: u32 = 10;

    /// Why the policy cannot work, if it cannot: every limit, window and duration must be
    /// positive.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.failures == 0
            || self.device_failures == 0
            || self.source_failures == 0
            || self.window.is_zero()
            || self.lock.is_zero()
            || self.source_window.is_zero()
            || self.source_block.is_zero()
        {
            return Some(
                "lockout and source-block failures, windows and durations must be positive",
            );
        }
        None
    }
}

impl Default for LockoutPolicy {
    /// Five failures in 15 minutes lock an account for 15 minutes; ten lock a desk; twenty from
    /// one source in 15 minutes block it for 15 minutes (the configuration's defaults, checked
    /// against them by a test of the server's config).
    fn default() -> Self {
        LockoutPolicy {
            failures: 5,
            window: Duration::from_secs(900),
            lock: Duration::from_secs(900),
            device_failures: Self::DEFAULT_DEVICE_FAILURES,
            source_failures: 20,
            source_window: Duration::from_secs(900),
            source_block: Duration::from_secs(900),
        }
    }
}

impl LockoutPolicy {
    /// Where the failures of `kind` that count now start: the window's start, or the end of
    /// the subject's last lock when that is later.
    pub fn counting_since(&self, kind: LockKind, now_ms: i64, last_lock_ms: Option<i64>) -> i64 {
        let window = match kind {
            LockKind::Source => self.source_window,
            LockKind::Account | LockKind::Device => self.window,
        };
        now_ms
            .saturating_sub(ms(window))
            .max(last_lock_ms.unwrap_or(i64::MIN))
    }

    /// Until when `count` failures of `kind` counted at `now_ms` lock it, if they do.
    pub fn lock_until(&self, kind: LockKind, count: i64, now_ms: i64) -> Option<i64> {
        let (limit, lasts) = match kind {
            LockKind::Account => (self.failures, self.lock),
            LockKind::Device => (self.device_failures, self.lock),
            LockKind::Source => (self.source_failures, self.source_block),
        };
        (count >= i64::from(limit)).then(|| now_ms.saturating_add(ms(lasts)))
    }

    /// How far back any failure still counts for something.
    pub fn longest_window(&self) -> Duration {
        self.window.max(self.source_window)
    }
}

/// A duration in milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a lock is on (the `lockouts.kind` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// An account (too many wrong PINs for it).
    Account,
    /// A desk phone (too many failures from it, any accounts).
    Device,
    /// A source address (too many failures from it, any desks).
    Source,
}

impl LockKind {
    /// The stored and reported name.
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Account => "account",
            LockKind::Device => "device",
            LockKind::Source => "source",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(s: &str) -> Option<LockKind> {
        [LockKind::Account, LockKind::Device, LockKind::Source]
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The report a new lock of this kind writes.
    pub fn event(self) -> Event {
        match self {
            LockKind::Source => Event::SourceBlocked,
            LockKind::Account | LockKind::Device => Event::LockedOut,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            failures: 3,
            window: Duration::from_secs(600),
            lock: Duration::from_secs(900),
            device_failures: 5,
            source_failures: 8,
            source_window: Duration::from_secs(300),
            source_block: Duration::from_secs(1800),
        }
    }

    #[test]
    fn each_subject_locks_at_its_own_limit_for_its_own_time() {
        let p = policy();
        let now = 100 * MIN;
        assert_eq!(p.lock_until(LockKind::Account, 2, now), None);
        assert_eq!(
            p.lock_until(LockKind::Account, 3, now),
            Some(now + 15 * MIN)
        );
        assert_eq!(p.lock_until(LockKind::Device, 4, now), None);
        assert_eq!(p.lock_until(LockKind::Device, 5, now), Some(now + 15 * MIN));
        assert_eq!(p.lock_until(LockKind::Source, 7, now), None);
        assert_eq!(p.lock_until(LockKind::Source, 9, now), Some(now + 30 * MIN));
    }

    #[test]
    fn failures_count_within_the_window_and_after_the_last_lock() {
        let p = policy();
        let now = 100 * MIN;
        // Accounts and desks look back ten minutes, sources five.
        assert_eq!(p.counting_since(LockKind::Account, now, None), 90 * MIN);
        assert_eq!(p.counting_since(LockKind::Device, now, None), 90 * MIN);
        assert_eq!(p.counting_since(LockKind::Source, now, None), 95 * MIN);
        // A lock that ended two minutes ago: only what came after it counts.
        assert_eq!(
            p.counting_since(LockKind::Account, now, Some(98 * MIN)),
            98 * MIN
        );
        // One that ended before the window changes nothing.
        assert_eq!(
            p.counting_since(LockKind::Account, now, Some(50 * MIN)),
            90 * MIN
        );
        assert_eq!(p.longest_window(), Duration::from_secs(600));
    }

    #[test]
    fn a_new_source_lock_is_reported_as_a_block() {
        assert_eq!(LockKind::Source.event(), Event::SourceBlocked);
        assert_eq!(LockKind::Account.event(), Event::LockedOut);
        for kind in [LockKind::Account, LockKind::Device, LockKind::Source] {
            assert_eq!(LockKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(LockKind::parse("desk").is_none());
    }
}
