-- When a connection last became active: when it was created, or last resumed after a
-- pause. The health rules that give a connection time to be confirmed count from it, so
-- a connection resumed after a long pause gets that time again instead of turning red
-- at once.
--
-- Nullable, so a replica of an earlier version can still create connections while
-- others are upgraded; pushgate reads a NULL as the creation time, and so does the view.
ALTER TABLE connections ADD COLUMN activated_at TEXT;
UPDATE connections SET activated_at = created_at;

DROP VIEW connection_health;
CREATE VIEW connection_health AS
SELECT id, tenant_id, name, source, stream, paused,
       last_status AS status, last_status_message AS status_message, status_last_checked_at,
       created_at, COALESCE(activated_at, created_at) AS activated_at,
       confirmed_at, subscription_lost_at, data_last_received_at, last_heartbeat_at,
       heartbeat_interval_seconds, grace_seconds, auth_failure_streak,
       events_count, heartbeats_count, duplicates_count, rejections_count,
       external_id, expires_at, reauthorization_required_at, missed_at
FROM connections;
