-- Canary heartbeats (aws_sns, gcp_pubsub): the outcome of the last publish, shown on the
-- connection so a failing canary is visible before its missing heartbeat turns the
-- connection to error.
ALTER TABLE connections ADD COLUMN canary_last_published_at TEXT;
ALTER TABLE connections ADD COLUMN canary_last_error TEXT;
ALTER TABLE connections ADD COLUMN canary_last_error_at TEXT;
