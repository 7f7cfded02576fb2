-- Inbound webhooks: every verified event, stored once per provider and event id, processed by
-- a `webhook_event` job. The payload is the body as received (UTF-8 text, so an escaped NUL
-- stays storable); the headers are an allow-listed JSON object that never holds a secret.

CREATE TABLE webhook_events (
    id           UUID PRIMARY KEY,
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('received', 'processed', 'failed')),
    headers      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    received_at  TIMESTAMPTZ NOT NULL,
    processed_at TIMESTAMPTZ,
    updated_at   TIMESTAMPTZ NOT NULL,
    UNIQUE (provider, event_id)
);

-- The admin log, newest first, with or without a provider or a status.
CREATE INDEX webhook_events_received_idx ON webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_status_idx ON webhook_events (status, received_at DESC);
