-- Graph catch-up (src/microsoft/catch_up.rs): after Graph lost notifications (lifecycle
-- `missed`) or removed a subscription pushgate then created again, the changes in
-- between are read with a delta query and stored as events.
--
-- A second dedupe key for events: the changed item's id and version (Graph's etag or
-- change key), with whether it was deleted, when the event carries both. A Graph
-- notification and a catch-up of the same change share it, so the later of the two is a
-- duplicate. NULL (no id or no version known) never matches anything: such an event is
-- stored.
ALTER TABLE events ADD COLUMN version_key TEXT;
CREATE UNIQUE INDEX events_by_version ON events (connection_id, version_key);

-- The delta state of each connection whose subscription pushgate keeps: the resource its
-- links read, the last `@odata.deltaLink` (the last known state), the `@odata.nextLink`
-- of a round still under way (with whether it stores what it reads, and when it began),
-- whether a catch-up is due (since when, why, and the last time it was asked for), and
-- the `missed` report last taken up.
CREATE TABLE graph_catch_up (
    connection_id     TEXT PRIMARY KEY,
    resource          TEXT,
    delta_link        TEXT,
    next_link         TEXT,
    round_stores      BOOLEAN NOT NULL DEFAULT FALSE,
    round_started_at  TIMESTAMPTZ,
    round_items       BIGINT NOT NULL DEFAULT 0,
    round_duplicates  BIGINT NOT NULL DEFAULT 0,
    due_since         TIMESTAMPTZ,
    due_reason        TEXT,
    due_asked_at      TIMESTAMPTZ,
    missed_seen_at    TIMESTAMPTZ
);

-- The outcome of the catch-up's rounds, shown with the connection like the upkeep's.
ALTER TABLE connections ADD COLUMN catch_up_last_success_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN catch_up_last_error TEXT;
ALTER TABLE connections ADD COLUMN catch_up_last_error_at TIMESTAMPTZ;
