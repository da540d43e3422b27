-- Forwarding to the event store (INTERFACE.md section 7): each event's place in commit
-- order, destinations with their durable positions, planned batches and leases, dead
-- letters, and leases for jobs that run on one replica at a time.

-- The transaction that inserted the row. Forwarding and the change feed read rows in
-- (xid, seq) order and only below the oldest transaction still running
-- (pg_snapshot_xmin), so a row whose transaction commits late is never skipped: every
-- transaction below that horizon has finished, and every later one gets a larger xid.
-- Rows that exist now all get the xid of this migration, which committed after them.
ALTER TABLE events ADD COLUMN xid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_by_position ON events (xid, seq);

CREATE TABLE destinations (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    kind                TEXT NOT NULL,
    filter              JSONB NOT NULL,
    start_from          TEXT NOT NULL,
    config_public       JSONB NOT NULL,   -- secrets shown as "***"
    config_sealed       TEXT NOT NULL,    -- AES-256-GCM of the full config JSON
    paused              BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    -- Every matching event at or before this position is delivered or dead-lettered.
    position_xid        BIGINT NOT NULL,
    position_seq        BIGINT NOT NULL,
    -- The batch planned after the position and not yet acknowledged: after a crash it is
    -- sent again whole, under the same id.
    batch_id            TEXT,
    batch_end_xid       BIGINT,
    batch_end_seq       BIGINT,
    -- The replica delivering this destination, until when, and the fencing generation
    -- every position update must carry.
    lease_holder        TEXT,
    lease_generation    BIGINT NOT NULL DEFAULT 0,
    lease_expires_at    TIMESTAMPTZ,
    failing             BOOLEAN NOT NULL DEFAULT FALSE,
    last_delivered_at   TIMESTAMPTZ,
    last_error_at       TIMESTAMPTZ,
    last_error          TEXT,
    delivered_count     BIGINT NOT NULL DEFAULT 0,
    dead_letters_count  BIGINT NOT NULL DEFAULT 0,
    retries_count       BIGINT NOT NULL DEFAULT 0,
    expired_count       BIGINT NOT NULL DEFAULT 0
);

-- Records a destination refused: kept whole (the event object as sent), so a replay
-- works even after retention deleted the event.
CREATE TABLE dead_letters (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination_id      TEXT NOT NULL,
    event_id            TEXT NOT NULL,
    at                  TIMESTAMPTZ NOT NULL,
    reason              TEXT NOT NULL,
    attempts            BIGINT NOT NULL,
    record              TEXT NOT NULL,
    replay_requested    BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (destination_id, event_id)
);

-- Background jobs that must run on one replica at a time (retention).
CREATE TABLE leases (
    name                TEXT PRIMARY KEY,
    holder              TEXT NOT NULL,
    generation          BIGINT NOT NULL,
    expires_at          TIMESTAMPTZ NOT NULL
);

-- Alert-webhook deliveries of destination transitions sit beside the connections' ones.
ALTER TABLE alert_deliveries ALTER COLUMN connection_id DROP NOT NULL;
ALTER TABLE alert_deliveries ADD COLUMN destination_id TEXT;
CREATE INDEX alert_deliveries_by_destination ON alert_deliveries (destination_id, id);
CREATE INDEX status_history_by_time ON status_history (at);
CREATE INDEX alert_deliveries_by_time ON alert_deliveries (at);

-- One row per destination, for dashboards and SQL: what its status is made of.
CREATE VIEW destination_health AS
SELECT id, name, kind, paused, failing, created_at, last_delivered_at, last_error_at, last_error,
       delivered_count, dead_letters_count, retries_count, expired_count,
       lease_holder, lease_expires_at, position_xid, position_seq
FROM destinations;
