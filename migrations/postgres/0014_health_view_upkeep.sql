-- The connection_health view also says why a connection whose subscription pushgate keeps
-- is failing (health rows 2 and 3): the failure class ('credentials' or 'validation'),
-- since when, and the vendor's last error text (its code and message, never a secret),
-- so a SQL dashboard can show the cause next to "Unable to read API Endpoint" without
-- reading the connections table.
DROP VIEW connection_health;
CREATE VIEW connection_health AS
SELECT id, tenant_id, name, source, stream, paused,
       last_status AS status, last_status_message AS status_message, status_last_checked_at,
       created_at, COALESCE(activated_at, created_at) AS activated_at,
       confirmed_at, subscription_lost_at, data_last_received_at, last_heartbeat_at,
       heartbeat_interval_seconds, grace_seconds, auth_failure_streak,
       events_count, heartbeats_count, duplicates_count, rejections_count,
       external_id, expires_at, reauthorization_required_at, missed_at,
       upkeep_failure, upkeep_failing_since, upkeep_last_error, upkeep_last_error_at, upkeep_last_success_at
FROM connections;
