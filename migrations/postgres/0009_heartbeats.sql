-- Each heartbeat a connection counted: the sender's id for it, the time the sender signed
-- or carried (what proves liveness) and when it arrived. A heartbeat whose id is already
-- here is a replay or a retry and changes nothing; the 24-hour arrival chart reads it.
-- Rows older than the retention window are pruned.
CREATE TABLE heartbeats (
    connection_id  TEXT NOT NULL,
    heartbeat_id   TEXT NOT NULL,
    signed_at      TIMESTAMPTZ NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connection_id, heartbeat_id)
);
CREATE INDEX heartbeats_by_arrival ON heartbeats (connection_id, received_at);
