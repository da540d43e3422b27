-- Timestamps are RFC 3339 text in UTC, as in every SQLite table here.
-- The Office 365 audit content waiting to be fetched: one row per content notification
-- (`contentId`) of an `o365_activity` connection that has Management API credentials,
-- queued in the same transaction that stored the notification. The holder of the
-- `o365_fetch` job lease fetches each due row (`next_attempt_at`), stores its audit
-- records and marks it `done` in one transaction; a failure keeps `attempts`,
-- `last_error` and the next try, until the blob's `expires_at` (Microsoft keeps content
-- 7 days), when it turns `expired`. A `contentUri` outside the Management API is
-- `refused`, never requested. Finished rows are kept a day past their expiry, so a
-- repeated notification is not queued again, then pruned.
CREATE TABLE o365_fetches (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id    TEXT NOT NULL,
    content_id       TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    content_uri      TEXT NOT NULL,
    content_created  TEXT,
    expires_at       TEXT NOT NULL,
    queued_at        TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',   -- pending, done, expired, refused
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    finished_at      TEXT,
    records          INTEGER,                           -- audit records the blob held
    UNIQUE (connection_id, content_id)
);
CREATE INDEX o365_fetches_due ON o365_fetches (next_attempt_at) WHERE state = 'pending';
CREATE INDEX o365_fetches_by_connection ON o365_fetches (connection_id, state);

-- What fetching did for each connection: when records were last stored, how many, how
-- many blobs expired unfetched, and the last fetch failure (kept after later successes).
ALTER TABLE connections ADD COLUMN data_last_fetched_at TEXT;
ALTER TABLE connections ADD COLUMN records_fetched_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN blobs_expired_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN fetch_last_error TEXT;
ALTER TABLE connections ADD COLUMN fetch_last_error_at TEXT;
