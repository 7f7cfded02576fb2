-- The change feed realtime instances poll to apply revocations to open sockets: accounts whose
-- row changed (role, deactivation) and sessions revoked since a moment.

CREATE INDEX users_updated_at_idx ON users (updated_at);
CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
