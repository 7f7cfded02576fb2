//! Sign-in sessions and their single-use, rotated refresh tokens (stored as hashes).
//!
//! A session is a refresh-token family: presenting a token that was already used revokes the
//! whole family, so a stolen token is useless once either party uses it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, Tx, time, traced_pool};

/// Where a sign-in came from (kept for the user's session list and for audits).
#[derive(Clone, Debug, Default)]
pub struct SessionOrigin<'a> {
    /// `User-Agent` header, truncated.
    pub user_agent: Option<&'a str>,
    /// Client IP.
    pub ip_address: Option<&'a str>,
}

/// Starts a session with its first refresh token; returns the session id.
pub async fn create_session(
    db: &Db,
    user_id: Uuid,
    refresh_hash: &str,
    expires_at: DateTime<Utc>,
    origin: &SessionOrigin<'_>,
) -> Result<Uuid> {
    const SESSION: &str = "INSERT INTO sessions (id, user_id, created_at, expires_at, user_agent, ip_address)
         VALUES ($1, $2, $3, $4, $5, $6)";
    const TOKEN: &str =
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    let id = Uuid::now_v7();
    let now = time::now();
    let statements = [SESSION, TOKEN].join(";\n");
    traced_pool!(db, "INSERT", "sessions", &statements, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(SESSION)
            .bind(id)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .bind(origin.user_agent)
            .bind(origin.ip_address)
            .execute(&mut *tx)
            .await?;
        sqlx::query(TOKEN).bind(refresh_hash).bind(id).bind(now).bind(expires_at).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(id)
}

/// What presenting a refresh token led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid; it is now used and `new_hash` replaces it.
    Rotated {
        /// The account.
        user_id: Uuid,
        /// The session (unchanged across rotations).
        session_id: Uuid,
    },
    /// The token had already been used: the whole session is now revoked.
    Reused,
    /// Unknown, expired, or its session is revoked or expired.
    Invalid,
}

/// Uses `old_hash` once and stores `new_hash` as its successor, in the caller's transaction
/// (so what the outcome causes, e.g. an audit entry, commits with it). The caller commits on
/// [`Rotation::Rotated`] and [`Rotation::Reused`] (which revoked the session) and drops the
/// transaction on [`Rotation::Invalid`], undoing the claim of a token whose session is gone.
pub async fn rotate_refresh_token(tx: &mut Tx, old_hash: &str, new_hash: &str) -> Result<Rotation> {
    const CLAIM: &str = "UPDATE refresh_tokens SET used_at = $2
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2
         RETURNING session_id, (SELECT user_id FROM sessions WHERE sessions.id = refresh_tokens.session_id), expires_at";
    const LIVE: &str = "SELECT id FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2";
    const SUCCESSOR: &str =
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    const REVOKE_FAMILY: &str = "UPDATE sessions SET revoked_at = $2
         WHERE revoked_at IS NULL
           AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL)";
    let now = time::now();
    let statements = [CLAIM, LIVE, SUCCESSOR, REVOKE_FAMILY].join(";\n");
    let engine = tx.engine();
    let outcome = crate::observe::traced(engine, "UPDATE", "refresh_tokens", &statements, async {
        Ok(crate::on_tx!(tx, |c| {
            let claimed: Option<(Uuid, Uuid, DateTime<Utc>)> =
                sqlx::query_as(CLAIM).bind(old_hash).bind(now).fetch_optional(&mut *c).await?;
            match claimed {
                Some((session_id, user_id, expires_at)) => {
                    let live: Option<(Uuid,)> =
                        sqlx::query_as(LIVE).bind(session_id).bind(now).fetch_optional(&mut *c).await?;
                    if live.is_none() {
                        Rotation::Invalid
                    } else {
                        sqlx::query(SUCCESSOR)
                            .bind(new_hash)
                            .bind(session_id)
                            .bind(now)
                            .bind(expires_at)
                            .execute(&mut *c)
                            .await?;
                        Rotation::Rotated { user_id, session_id }
                    }
                }
                None => {
                    let revoked =
                        sqlx::query(REVOKE_FAMILY).bind(old_hash).bind(now).execute(&mut *c).await?.rows_affected();
                    if revoked > 0 { Rotation::Reused } else { Rotation::Invalid }
                }
            }
        }))
    })
    .await?;
    Ok(outcome)
}

/// Revokes the session a refresh token belongs to; false when the token is unknown.
pub async fn revoke_session_by_token(db: &Db, refresh_hash: &str) -> Result<bool> {
    const SQL: &str = "UPDATE sessions SET revoked_at = $2
         WHERE revoked_at IS NULL AND id = (SELECT session_id FROM refresh_tokens WHERE token_hash = $1)";
    let done = traced_pool!(db, "UPDATE", "sessions", SQL, |pool| sqlx::query(SQL)
        .bind(refresh_hash)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// Revokes every session of an account.
pub async fn revoke_all_sessions(db: &Db, user_id: Uuid) -> Result<u64> {
    const SQL: &str = "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
    let done = traced_pool!(db, "UPDATE", "sessions", SQL, |pool| sqlx::query(SQL)
        .bind(user_id)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done)
}

/// Deletes sessions that expired or were revoked before `before` (their refresh tokens go with
/// them); returns how many.
pub async fn delete_stale_sessions(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1";
    Ok(traced_pool!(db, "DELETE", "sessions", SQL, |pool| sqlx::query(SQL)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
}
