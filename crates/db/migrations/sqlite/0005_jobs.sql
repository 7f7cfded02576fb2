-- Background jobs: a durable queue in the application's own database. Ids and timestamps are
-- made by the service; payloads and outputs are JSON the service reads whole.

CREATE TABLE jobs (
    id           BLOB PRIMARY KEY NOT NULL,
    kind         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    state        TEXT NOT NULL
                 CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       TEXT NOT NULL,
    lease_until  TEXT,
    unique_key   TEXT UNIQUE,
    last_error   TEXT,
    user_id      BLOB,
    traceparent  TEXT,
    output       TEXT,
    created_at   TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    updated_at   TEXT NOT NULL
);

-- What workers claim: due jobs, and running jobs whose lease has expired.
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state IN ('queued', 'failed');
CREATE INDEX jobs_lease_idx ON jobs (lease_until) WHERE state = 'running';
-- The admin list, newest first, and the clean-up of finished jobs.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_finished_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;
