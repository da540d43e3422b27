-- Graph subscription upkeep: a fingerprint of the settings the current subscription was
-- created with (resource, change type, client state, certificate, credentials), so a
-- change of the connection's config replaces the subscription.
ALTER TABLE connections ADD COLUMN upkeep_settings_hash TEXT;
