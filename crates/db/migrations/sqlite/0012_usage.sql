-- Usage metering. Counted usage reaches `usage_daily` (and its dimensions) in the same
-- transaction that queues what is billed for it in `usage_meter_events`, so what is counted
-- and what is billed cannot diverge.

-- Usage events that carry an id of their own (ingested from a product's backend): the id makes
-- a retried batch count once.
CREATE TABLE usage_events (
    id          TEXT PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric      TEXT NOT NULL,
    value       INTEGER NOT NULL,
    occurred_at TEXT NOT NULL,
    dimensions  TEXT NOT NULL,
    received_at TEXT NOT NULL
);

CREATE INDEX usage_events_user_idx ON usage_events (user_id, occurred_at);

-- Usage per account, metric and UTC day: what reports and limits read.
CREATE TABLE usage_daily (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric     TEXT NOT NULL,
    day        TEXT NOT NULL,
    value      INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (user_id, metric, day)
);

-- The busiest accounts of a metric in a period.
CREATE INDEX usage_daily_metric_day_idx ON usage_daily (metric, day);
-- What changed since the limit alerts last looked.
CREATE INDEX usage_daily_updated_idx ON usage_daily (updated_at);

-- The same usage split by one dimension (`endpoint`, `model`, `provider`, …): one row per
-- dimension name and value, so a breakdown never parses JSON.
CREATE TABLE usage_daily_dimensions (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric     TEXT NOT NULL,
    day        TEXT NOT NULL,
    name       TEXT NOT NULL,
    item       TEXT NOT NULL,
    value      INTEGER NOT NULL,
    PRIMARY KEY (user_id, metric, day, name, item)
);

-- Limit alerts sent: one row per account, metric, period (`YYYY-MM`) and threshold, whose
-- insertion decides which instance sends it.
CREATE TABLE usage_alerts (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    metric    TEXT NOT NULL,
    period    TEXT NOT NULL,
    threshold INTEGER NOT NULL CHECK (threshold IN (80, 100)),
    sent_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, metric, period, threshold)
);

-- The outbox of Stripe meter events. The identifier is derived from our own event or
-- aggregate id and sent as Stripe's `identifier`, so a resend is deduplicated on both sides.
-- Kept when the account is deleted: it is a billing record.
CREATE TABLE usage_meter_events (
    identifier         TEXT PRIMARY KEY,
    user_id            BLOB NOT NULL,
    metric             TEXT NOT NULL,
    event_name         TEXT NOT NULL,
    stripe_customer_id TEXT NOT NULL,
    value              INTEGER NOT NULL,
    occurred_at        TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    created_at         TEXT NOT NULL,
    sent_at            TEXT
);

CREATE INDEX usage_meter_events_status_idx ON usage_meter_events (status, created_at);

-- Batches of in-memory counts already added to the aggregates: a batch whose commit went
-- unacknowledged is retried under the same id and counts once.
CREATE TABLE usage_flushes (
    id         TEXT PRIMARY KEY,
    flushed_at TEXT NOT NULL
);

CREATE INDEX usage_flushes_flushed_idx ON usage_flushes (flushed_at);
