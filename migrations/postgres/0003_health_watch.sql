-- The health watch: one row per alert-webhook delivery (transitions POSTed to
-- PUSHGATE_ALERT_WEBHOOK_URL), and the connection_health view dashboards and SQL read.

CREATE TABLE alert_deliveries (
    id             BIGSERIAL PRIMARY KEY,
    connection_id  TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,      -- when the transition happened
    old_status     TEXT,
    new_status     TEXT NOT NULL,
    message        TEXT,
    attempts       INTEGER NOT NULL,
    delivered      BOOLEAN NOT NULL,
    last_error     TEXT,
    finished_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_deliveries_by_connection ON alert_deliveries (connection_id, id);

-- One row per connection: what its status is made of, as the monitor last recorded it.
CREATE VIEW connection_health AS
SELECT id, tenant_id, name, source, stream, paused,
       last_status AS status, last_status_message AS status_message, status_last_checked_at,
       created_at, confirmed_at, subscription_lost_at, data_last_received_at, last_heartbeat_at,
       heartbeat_interval_seconds, grace_seconds, auth_failure_streak,
       events_count, heartbeats_count, duplicates_count, rejections_count
FROM connections;
