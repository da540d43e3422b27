-- Timestamps are RFC 3339 text in UTC, as in every SQLite table here.
-- Job leases: the background jobs that run on one process at a time (the Graph
-- subscription upkeep, the canaries, the Pub/Sub subscription check, alert deliveries,
-- retention) each hold a row of `leases` (0006). Every take of a lease is a new
-- generation; a released lease keeps its row (expired), so generations only grow and a
-- write fenced with an old generation is refused. `acquired_at` says since when the
-- current holder holds it.
ALTER TABLE leases ADD COLUMN acquired_at TEXT;

-- The durable alert queue: each transition to announce waits here, oldest first, until
-- the process holding the `alerts` lease has delivered it or given up; its outcome then
-- moves to `alert_deliveries` in the same transaction. `attempts` and `next_attempt_at`
-- carry the backoff across restarts.
CREATE TABLE alert_queue (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id    TEXT,
    destination_id   TEXT,
    tenant_id        TEXT,
    name             TEXT NOT NULL,
    at               TEXT NOT NULL,      -- when the transition happened
    old_status       TEXT,
    new_status       TEXT NOT NULL,
    message          TEXT,
    enqueued_at      TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT
);
