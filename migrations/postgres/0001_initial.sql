-- pushgate schema for PostgreSQL. Ids are UUID text, so rows read the same in both backends.

CREATE TABLE connections (
    id                          TEXT PRIMARY KEY,
    tenant_id                   TEXT NOT NULL,
    name                        TEXT NOT NULL,
    source                      TEXT NOT NULL,
    stream                      TEXT NOT NULL,
    heartbeat_interval_seconds  BIGINT,
    grace_seconds               BIGINT NOT NULL,
    config_public               JSONB NOT NULL,  -- secrets shown as "***"
    config_sealed               TEXT NOT NULL,   -- AES-256-GCM of the full config JSON
    paused                      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at                  TIMESTAMPTZ NOT NULL,
    updated_at                  TIMESTAMPTZ NOT NULL,
    confirmed_at                TIMESTAMPTZ,
    external_id                 TEXT,
    expires_at                  TIMESTAMPTZ,
    confirmation_url            TEXT,
    subscription_lost_at        TIMESTAMPTZ,
    reauthorization_required_at TIMESTAMPTZ,
    data_last_received_at       TIMESTAMPTZ,
    last_heartbeat_at           TIMESTAMPTZ,
    status_last_checked_at      TIMESTAMPTZ,
    last_status                 TEXT,
    last_status_message         TEXT,
    auth_failure_streak         BIGINT NOT NULL DEFAULT 0,
    events_count                BIGINT NOT NULL DEFAULT 0,
    heartbeats_count            BIGINT NOT NULL DEFAULT 0,
    duplicates_count            BIGINT NOT NULL DEFAULT 0,
    rejections_count            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX connections_tenant ON connections (tenant_id);

CREATE TABLE events (
    seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    connection_id  TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    source         TEXT NOT NULL,
    stream         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL,
    occurred_at    TIMESTAMPTZ,
    received_at    TIMESTAMPTZ NOT NULL,
    payload        JSONB NOT NULL,
    UNIQUE (connection_id, dedupe_key)
);
CREATE INDEX events_by_connection ON events (connection_id, seq);
CREATE INDEX events_by_stream ON events (stream, seq);

CREATE TABLE rejections (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id  TEXT,             -- null when the id named no connection
    at             TIMESTAMPTZ NOT NULL,
    reason         TEXT NOT NULL,
    source_addr    TEXT,
    detail         TEXT NOT NULL,
    body_prefix    TEXT NOT NULL     -- at most 4 KiB
);
CREATE INDEX rejections_by_connection ON rejections (connection_id, id);

CREATE TABLE status_history (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    connection_id  TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL,
    old_status     TEXT,
    new_status     TEXT NOT NULL,
    message        TEXT
);
CREATE INDEX status_history_by_connection ON status_history (connection_id, id);

CREATE TABLE admin_tokens (
    token_sha256   TEXT PRIMARY KEY,
    created_at     TIMESTAMPTZ NOT NULL
);
