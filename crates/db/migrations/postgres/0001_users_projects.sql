-- Accounts and the example resource. Ids (UUIDv7) and timestamps are made by the service.

CREATE TABLE users (
    id                  UUID PRIMARY KEY,
    email               TEXT UNIQUE,
    hashed_password     TEXT,
    full_name           TEXT,
    avatar_url          TEXT,
    role                TEXT NOT NULL DEFAULT 'user'
                        CHECK (role IN ('user', 'admin', 'super_admin')),
    is_active           BOOLEAN NOT NULL DEFAULT TRUE,
    email_verified      BOOLEAN NOT NULL DEFAULT FALSE,
    subscription_plan   TEXT NOT NULL DEFAULT 'free',
    subscription_status TEXT NOT NULL DEFAULT 'inactive',
    last_login_at       TIMESTAMPTZ,
    login_count         BIGINT NOT NULL DEFAULT 0,
    deactivated_at      TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE projects (
    id          UUID PRIMARY KEY,
    owner_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);

CREATE INDEX projects_owner_live_idx ON projects (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
