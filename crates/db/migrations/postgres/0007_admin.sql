-- The admin console: a tamper-evident audit log and impersonation sessions.
--
-- audit_log is append-only (no route updates or deletes it; retention is an operator's job,
-- done outside the API). Each row's hash covers the previous row's hash and the row's other
-- fields; `seq` orders the chain. Appends are serialised by locking the one row of
-- audit_chain_head (`FOR UPDATE`), which holds the last link. See ADR 0010.

CREATE TABLE audit_log (
    id                   UUID PRIMARY KEY,
    seq                  BIGINT NOT NULL UNIQUE,
    occurred_at          TIMESTAMPTZ NOT NULL,
    actor_id             UUID,
    actor_email          TEXT,
    actor_role           TEXT,
    impersonated_user_id UUID,
    action               TEXT NOT NULL,
    resource_type        TEXT NOT NULL,
    resource_id          TEXT,
    details              TEXT NOT NULL,
    ip                   TEXT,
    user_agent           TEXT,
    request_id           TEXT,
    prev_hash            TEXT NOT NULL,
    hash                 TEXT NOT NULL
);

-- Filters of the admin listing, each newest first.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id, seq);
CREATE INDEX audit_log_occurred_idx ON audit_log (occurred_at);

-- The chain's last link: one row, locked by every append.
CREATE TABLE audit_chain_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_chain_head (id, seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- An admin acting as a user: the impersonation token is refused once the row is ended or
-- expired, on every instance.
CREATE TABLE impersonation_sessions (
    id          UUID PRIMARY KEY,
    admin_id    UUID NOT NULL REFERENCES users (id),
    user_id     UUID NOT NULL REFERENCES users (id),
    reason      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ,
    ended_by    UUID
);
CREATE INDEX impersonation_sessions_started_idx ON impersonation_sessions (started_at DESC, id DESC);
CREATE INDEX impersonation_sessions_live_idx ON impersonation_sessions (expires_at) WHERE ended_at IS NULL;
