-- Messages sent through the public contact form. The reference id is what the sender is
-- told; spam is stored (status 'spam') so an operator can see what was caught.

CREATE TABLE contact_submissions (
    id           UUID PRIMARY KEY,
    reference_id TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    email        TEXT NOT NULL,
    subject      TEXT,
    message      TEXT NOT NULL,
    phone        TEXT,
    company      TEXT,
    source       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('new', 'read', 'replied', 'spam', 'archived')),
    spam_reason  TEXT,
    ip_address   TEXT,
    user_agent   TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- The admin list, newest first, whole or by status.
CREATE INDEX contact_submissions_created_idx ON contact_submissions (created_at DESC, id DESC);
CREATE INDEX contact_submissions_status_idx ON contact_submissions (status, created_at DESC, id DESC);
