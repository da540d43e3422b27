-- Health rows 2 and 3 (INTERFACE.md section 3): why the subscription upkeep's calls are
-- refused, when that says something about the connection ('credentials' or
-- 'validation'), and since when; both cleared by the upkeep's next success.
ALTER TABLE connections ADD COLUMN upkeep_failure TEXT;
ALTER TABLE connections ADD COLUMN upkeep_failing_since TEXT;

-- The Graph lifecycle `missed` report the monitor last entered in the status history and
-- announced. Reports stored before this migration count as entered: an upgrade does not
-- announce old news.
ALTER TABLE connections ADD COLUMN missed_recorded_at TEXT;
UPDATE connections SET missed_recorded_at = missed_at;
