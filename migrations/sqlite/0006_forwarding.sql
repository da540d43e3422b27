-- Forwarding to the event store (INTERFACE.md section 7): destinations with their durable
-- positions, planned batches and leases, dead letters, and leases for jobs that run on
-- one replica at a time. SQLite has one writer, so commit order is `seq` order; `events`
-- was created with AUTOINCREMENT, so a deleted row's seq is never given to a new row
-- behind a destination's position.

CREATE TABLE destinations (
    id                  TEXT PRIMARY KEY NOT NULL,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    filter              TEXT NOT NULL,    -- JSON
    start_from          TEXT NOT NULL,
    config_public       TEXT NOT NULL,    -- JSON, secrets shown as "***"
    config_sealed       TEXT NOT NULL,    -- AES-256-GCM of the full config JSON
    paused              INTEGER NOT NULL DEFAULT 0,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    -- Every matching event at or before this position is delivered or dead-lettered.
    position_xid        INTEGER NOT NULL,
    position_seq        INTEGER NOT NULL,
    -- The batch planned after the position and not yet acknowledged: after a crash it is
    -- sent again whole, under the same id.
    batch_id            TEXT,
    batch_end_xid       INTEGER,
    batch_end_seq       INTEGER,
    -- The process delivering this destination, until when, and the fencing generation
    -- every position update must carry.
    lease_holder        TEXT,
    lease_generation    INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    TEXT,
    failing             INTEGER NOT NULL DEFAULT 0,
    last_delivered_at   TEXT,
    last_error_at       TEXT,
    last_error          TEXT,
    delivered_count     INTEGER NOT NULL DEFAULT 0,
    dead_letters_count  INTEGER NOT NULL DEFAULT 0,
    retries_count       INTEGER NOT NULL DEFAULT 0,
    expired_count       INTEGER NOT NULL DEFAULT 0
);

-- Records a destination refused: kept whole (the event object as sent), so a replay
-- works even after retention deleted the event.
CREATE TABLE dead_letters (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    destination_id      TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    at                  TEXT NOT NULL,
    reason              TEXT NOT NULL,
    attempts            INTEGER NOT NULL,
    record              TEXT NOT NULL,
    replay_requested    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (destination_id, event_id)
);

-- Background jobs that must run on one process at a time (retention).
CREATE TABLE leases (
    name                TEXT PRIMARY KEY NOT NULL,
    holder              TEXT NOT NULL,
    generation          INTEGER NOT NULL,
    expires_at          TEXT NOT NULL
);

-- Alert-webhook deliveries of destination transitions sit beside the connections' ones:
-- the table is rebuilt so connection_id may be null.
CREATE TABLE alert_deliveries_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  TEXT,
    destination_id TEXT,
    at             TEXT NOT NULL,      -- when the transition happened
    old_status     TEXT,
    new_status     TEXT NOT NULL,
    message        TEXT,
    attempts       INTEGER NOT NULL,
    delivered      INTEGER NOT NULL,
    last_error     TEXT,
    finished_at    TEXT NOT NULL
);
INSERT INTO alert_deliveries_new (id, connection_id, at, old_status, new_status, message, attempts, delivered, last_error, finished_at)
    SELECT id, connection_id, at, old_status, new_status, message, attempts, delivered, last_error, finished_at FROM alert_deliveries;
DROP TABLE alert_deliveries;
ALTER TABLE alert_deliveries_new RENAME TO alert_deliveries;
CREATE INDEX alert_deliveries_by_connection ON alert_deliveries (connection_id, id);
CREATE INDEX alert_deliveries_by_destination ON alert_deliveries (destination_id, id);
CREATE INDEX status_history_by_time ON status_history (at);
CREATE INDEX alert_deliveries_by_time ON alert_deliveries (at);

-- One row per destination, for dashboards and SQL: what its status is made of.
CREATE VIEW destination_health AS
SELECT id, name, kind, paused, failing, created_at, last_delivered_at, last_error_at, last_error,
       delivered_count, dead_letters_count, retries_count, expired_count,
       lease_holder, lease_expires_at, position_xid, position_seq
FROM destinations;
