-- Feature flags, evaluated from memory by every instance. `user_ids` and `plans` are JSON
-- arrays the service reads whole (never queried inside). Every write also bumps the one row of
-- `feature_flag_revision` in the same transaction: instances poll that number to notice a
-- change (deletes included) made elsewhere.

CREATE TABLE feature_flags (
    key                TEXT PRIMARY KEY,
    description        TEXT,
    enabled            BOOLEAN NOT NULL,
    rollout_percentage INTEGER CHECK (rollout_percentage BETWEEN 0 AND 100),
    group_id           TEXT,
    user_ids           JSONB NOT NULL,
    plans              JSONB NOT NULL,
    expires_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);

CREATE TABLE feature_flag_revision (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);

INSERT INTO feature_flag_revision (id, revision) VALUES (1, 0);
