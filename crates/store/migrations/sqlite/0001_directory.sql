-- The hot-desk directory and its report outbox (src/directory, src/report).
--
-- Times are milliseconds since the Unix epoch, UTC, as BIGINT: comparable, portable to
-- Postgres, and free of text-format ambiguity. Column names avoid reserved words (`user`).
-- Only `reports.seq` is SQLite-specific (INTEGER PRIMARY KEY = the rowid, so insertion order);
-- a Postgres migration would declare it BIGINT GENERATED ALWAYS AS IDENTITY.

-- Store-wide facts, e.g. the fingerprint of the PIN pepper the hashes were made with.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    extension  TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    -- NULL: the server's default prompt language.
    language   TEXT,
    -- PHC string ($argon2id$v=19$…), peppered; NULL: no PIN yet, so no login possible.
    pin_hash   TEXT,
    created_ms BIGINT NOT NULL
);

-- Who is logged in at which desk. One desk per user (UNIQUE): logging in at a second desk
-- releases the first.
CREATE TABLE logins (
    device   TEXT PRIMARY KEY,
    user_ext TEXT NOT NULL UNIQUE,
    since_ms BIGINT NOT NULL,
    via      TEXT NOT NULL,
    call_id  TEXT
);

-- Failed PIN attempts, pruned past the lockout window. `account` is what the caller keyed,
-- whether or not such a user exists.
CREATE TABLE failures (
    id      INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    device  TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX failures_by_account ON failures (account, at_ms);
CREATE INDEX failures_by_device ON failures (device, at_ms);

CREATE TABLE lockouts (
    -- 'account' or 'device'
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);

-- The report log and webhook outbox: written in the same transaction as the state change it
-- reports, delivered in `seq` order per device.
CREATE TABLE reports (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    device          TEXT NOT NULL,
    user_ext        TEXT,
    previous_user   TEXT,
    via             TEXT NOT NULL,
    call_id         TEXT,
    at_ms           BIGINT NOT NULL,
    delivered_ms    BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX reports_pending ON reports (device, seq) WHERE delivered_ms IS NULL;
