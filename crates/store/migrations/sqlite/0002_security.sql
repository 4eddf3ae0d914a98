-- Security hardening (2026-12): per-source limits, and no account entry kept unless it is a
-- user's extension.
--
-- `failures.account` becomes nullable: a failed attempt whose account entry is no user's exact
-- extension (a PIN typed without the first `#` looks like a long account number) keeps no
-- account at all; the attempt still counts against its desk and its source.
CREATE TABLE failures_new (
    id      INTEGER PRIMARY KEY,
    account TEXT,
    device  TEXT NOT NULL,
    -- The source key (IPv4 address, or IPv6 /64) when per-source limits apply.
    source  TEXT,
    at_ms   BIGINT NOT NULL
);
INSERT INTO failures_new (id, account, device, source, at_ms)
    SELECT id, CASE WHEN account IN (SELECT extension FROM users) THEN account END, device,
           NULL, at_ms
    FROM failures;
DROP TABLE failures;
ALTER TABLE failures_new RENAME TO failures;
CREATE INDEX failures_by_account ON failures (account, at_ms);
CREATE INDEX failures_by_device ON failures (device, at_ms);
CREATE INDEX failures_by_source ON failures (source, at_ms);

-- `source_blocked` reports name the source.
ALTER TABLE reports ADD COLUMN source TEXT;

-- Stores written before this kept whatever a caller keyed as the account of a failed attempt,
-- which may be a PIN: forget those that are no user's extension.
UPDATE reports SET user_ext = NULL
    WHERE event = 'login_failed' AND user_ext NOT IN (SELECT extension FROM users);
