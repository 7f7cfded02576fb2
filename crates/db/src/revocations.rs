//! The change feed realtime instances poll to apply revocations to sockets already open:
//! accounts whose row changed (role, deactivation, erasure all bump `updated_at`) and sessions
//! revoked (logout, password reset, deactivation, refresh-token reuse) since a moment.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, traced_pool};

/// An account's current standing.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountStanding {
    /// The account.
    pub user_id: Uuid,
    /// Its role now.
    pub role: String,
    /// Whether it is still active.
    pub is_active: bool,
}

/// A revoked session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RevokedSession {
    /// The session.
    pub session_id: Uuid,
    /// Its account.
    pub user_id: Uuid,
}

/// What changed at or after a moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Accounts whose row changed, as they are now.
    pub accounts: Vec<AccountStanding>,
    /// Sessions revoked.
    pub sessions: Vec<RevokedSession>,
}

/// Accounts changed and sessions revoked at or after `since` (both indexed, see migration
/// 0004). The caller overlaps its windows, so it must treat each change idempotently.
pub async fn changes_since(db: &Db, since: DateTime<Utc>) -> Result<Changes> {
    const ACCOUNTS: &str = "SELECT id AS user_id, role, is_active FROM users WHERE updated_at >= $1";
    const SESSIONS: &str = "SELECT id AS session_id, user_id FROM sessions WHERE revoked_at >= $1";
    let statements = [ACCOUNTS, SESSIONS].join(";\n");
    let changes = traced_pool!(db, "SELECT", "users", &statements, |pool| {
        let accounts = sqlx::query_as::<_, AccountStanding>(ACCOUNTS).bind(since).fetch_all(pool).await?;
        let sessions = sqlx::query_as::<_, RevokedSession>(SESSIONS).bind(since).fetch_all(pool).await?;
        Changes { accounts, sessions }
    });
    Ok(changes)
}
