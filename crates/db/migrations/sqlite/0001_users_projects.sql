-- Accounts and the example resource. Ids (UUIDv7, 16-byte blobs) and timestamps
-- (RFC 3339 text, UTC) are made by the service.

CREATE TABLE users (
    id                  BLOB PRIMARY KEY NOT NULL,
    email               TEXT UNIQUE,
    hashed_password     TEXT,
    full_name           TEXT,
    avatar_url          TEXT,
    role                TEXT NOT NULL DEFAULT 'user'
                        CHECK (role IN ('user', 'admin', 'super_admin')),
    is_active           INTEGER NOT NULL DEFAULT 1,
    email_verified      INTEGER NOT NULL DEFAULT 0,
    subscription_plan   TEXT NOT NULL DEFAULT 'free',
    subscription_status TEXT NOT NULL DEFAULT 'inactive',
    last_login_at       TEXT,
    login_count         INTEGER NOT NULL DEFAULT 0,
    deactivated_at      TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);

CREATE TABLE projects (
    id          BLOB PRIMARY KEY NOT NULL,
    owner_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);

CREATE INDEX projects_owner_live_idx ON projects (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
