-- The connection_health view also shows what pushgate fetched after notifications and
-- what it caught up after lost ones: for Office 365, when audit content was last fetched
-- and stored, the records stored, the blobs waiting (backlog) and those that expired
-- unfetched, with the last fetch error; for Graph, the outcome of the last catch-up
-- (delta queries after missed notifications). A SQL dashboard can then alert on a
-- growing backlog or an expired blob without reading the queue.
DROP VIEW connection_health;
CREATE VIEW connection_health AS
SELECT id, tenant_id, name, source, stream, paused,
       last_status AS status, last_status_message AS status_message, status_last_checked_at,
       created_at, COALESCE(activated_at, created_at) AS activated_at,
       confirmed_at, subscription_lost_at, data_last_received_at, last_heartbeat_at,
       heartbeat_interval_seconds, grace_seconds, auth_failure_streak,
       events_count, heartbeats_count, duplicates_count, rejections_count,
       external_id, expires_at, reauthorization_required_at, missed_at,
       upkeep_failure, upkeep_failing_since, upkeep_last_error, upkeep_last_error_at, upkeep_last_success_at,
       data_last_fetched_at, records_fetched_count, blobs_expired_count, fetch_last_error, fetch_last_error_at,
       (SELECT COUNT(*) FROM o365_fetches f WHERE f.connection_id = connections.id AND f.state = 'pending') AS fetch_backlog,
       catch_up_last_success_at, catch_up_last_error, catch_up_last_error_at
FROM connections;
