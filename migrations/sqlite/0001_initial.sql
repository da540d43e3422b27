-- pushgate schema for SQLite. Timestamps are RFC 3339 text in UTC; ids are UUID text.

CREATE TABLE connections (
    id                          TEXT PRIMARY KEY NOT NULL,
    tenant_id                   TEXT NOT NULL,
    name                        TEXT NOT NULL,
    source                      TEXT NOT NULL,
    stream                      TEXT NOT NULL,
    heartbeat_interval_seconds  INTEGER,
    grace_seconds               INTEGER NOT NULL,
    config_public               TEXT NOT NULL,  -- JSON, secrets shown as "***"
    config_sealed               TEXT NOT NULL,  -- AES-256-GCM of the full config JSON
    paused                      INTEGER NOT NULL DEFAULT 0,
    created_at                  TEXT NOT NULL,
    updated_at                  TEXT NOT NULL,
    confirmed_at                TEXT,
    external_id                 TEXT,
    expires_at                  TEXT,
    confirmation_url            TEXT,
    subscription_lost_at        TEXT,
    reauthorization_required_at TEXT,
    data_last_received_at       TEXT,
    last_heartbeat_at           TEXT,
    status_last_checked_at      TEXT,
    last_status                 TEXT,
    last_status_message         TEXT,
    auth_failure_streak         INTEGER NOT NULL DEFAULT 0,
    events_count                INTEGER NOT NULL DEFAULT 0,
    heartbeats_count            INTEGER NOT NULL DEFAULT 0,
    duplicates_count            INTEGER NOT NULL DEFAULT 0,
    rejections_count            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX connections_tenant ON connections (tenant_id);

CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    connection_id  TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    source         TEXT NOT NULL,
    stream         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL,
    occurred_at    TEXT,
    received_at    TEXT NOT NULL,
    payload        TEXT NOT NULL,  -- JSON
    UNIQUE (connection_id, dedupe_key)
);
CREATE INDEX events_by_connection ON events (connection_id, seq);
CREATE INDEX events_by_stream ON events (stream, seq);

CREATE TABLE rejections (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  TEXT,            -- null when the id named no connection
    at             TEXT NOT NULL,
    reason         TEXT NOT NULL,
    source_addr    TEXT,
    detail         TEXT NOT NULL,
    body_prefix    TEXT NOT NULL    -- at most 4 KiB
);
CREATE INDEX rejections_by_connection ON rejections (connection_id, id);

CREATE TABLE status_history (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    connection_id  TEXT NOT NULL,
    at             TEXT NOT NULL,
    old_status     TEXT,
    new_status     TEXT NOT NULL,
    message        TEXT
);
CREATE INDEX status_history_by_connection ON status_history (connection_id, id);

CREATE TABLE admin_tokens (
    token_sha256   TEXT PRIMARY KEY NOT NULL,
    created_at     TEXT NOT NULL
);
