-- Files uploaded straight to storage (DATA_DIR/files or an S3 bucket). A row is `pending` from
-- the moment an upload URL is issued until `confirm` finds the object with the declared size and
-- type (`uploaded`). `storage_key` is made by the server from the ids; no client text reaches it.
CREATE TABLE files (
    id           UUID PRIMARY KEY,
    owner_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    storage_key  TEXT NOT NULL UNIQUE,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'uploaded')),
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    uploaded_at  TIMESTAMPTZ
);

CREATE INDEX files_owner_idx ON files (owner_id, created_at DESC, id DESC);
-- Pending uploads never confirmed, oldest first (the `files_cleanup` job).
CREATE INDEX files_pending_idx ON files (created_at) WHERE status = 'pending';
