//! The change feed realtime instances poll to apply revocations to sockets already open:
//! accounts whose row changed (role, deactivation, erasure all bump `updated_at`) and sessions
//! revoked (logout, password reset, deactivation, refresh-token reuse) since a moment.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, traced_pool};

/// An account's current standing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountStanding {
    /// The account.
    pub user_id: Uuid,
    /// Its role now.
    pub role: String,
    /// Whether it is still active.
    pub is_active: bool,
}

/// A revoked session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
/// 0004), read in one statement so one snapshot sees a change made in one transaction whole
/// (a deletion deactivates the account and revokes its sessions together). The caller overlaps
/// its windows, so it must treat each change idempotently.
pub async fn changes_since(db: &Db, since: DateTime<Utc>) -> Result<Changes> {
    const SQL: &str = "SELECT id, role, is_active, NULL FROM users WHERE updated_at >= $1
         UNION ALL
         SELECT users.id, users.role, users.is_active, sessions.id
         FROM sessions JOIN users ON users.id = sessions.user_id
         WHERE sessions.revoked_at >= $1";
    let rows: Vec<(Uuid, String, bool, Option<Uuid>)> =
        traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as(SQL).bind(since).fetch_all(pool).await?);
    let mut changes = Changes::default();
    for (user_id, role, is_active, session_id) in rows {
        match session_id {
            Some(session_id) => changes.sessions.push(RevokedSession { session_id, user_id }),
            None => changes.accounts.push(AccountStanding { user_id, role, is_active }),
        }
    }
    Ok(changes)
}
