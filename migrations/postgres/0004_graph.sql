-- Microsoft Graph: lost notifications reported upstream (lifecycle `missed`), and the
-- outcome of pushgate's subscription upkeep (create, renew, reauthorize), kept on the
-- connection so a failing renewal is visible before the subscription expires.
ALTER TABLE connections ADD COLUMN missed_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN upkeep_last_success_at TIMESTAMPTZ;
ALTER TABLE connections ADD COLUMN upkeep_last_error TEXT;
ALTER TABLE connections ADD COLUMN upkeep_last_error_at TIMESTAMPTZ;

-- The health view gains the subscription facts Graph sets.
DROP VIEW connection_health;
CREATE VIEW connection_health AS
SELECT id, tenant_id, name, source, stream, paused,
       last_status AS status, last_status_message AS status_message, status_last_checked_at,
       created_at, confirmed_at, subscription_lost_at, data_last_received_at, last_heartbeat_at,
       heartbeat_interval_seconds, grace_seconds, auth_failure_streak,
       events_count, heartbeats_count, duplicates_count, rejections_count,
       external_id, expires_at, reauthorization_required_at, missed_at
FROM connections;
