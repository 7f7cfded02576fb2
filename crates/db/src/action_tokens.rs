//! Single-use tokens sent by email (verification, password reset), stored as hashes.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, Tx, time, traced_conn, traced_pool};

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms an email address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
        }
    }
}

/// Stores a token hash for an account, alone or in the caller's transaction.
pub async fn create_action_token(
    conn: impl Into<Conn<'_>>,
    user_id: Uuid,
    purpose: Purpose,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    const SQL: &str =
        "INSERT INTO action_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
    let conn = conn.into();
    traced_conn!(conn, "INSERT", "action_tokens", SQL, |e| sqlx::query(SQL)
        .bind(token_hash)
        .bind(user_id)
        .bind(purpose.as_str())
        .bind(time::now())
        .bind(expires_at)
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// The account of a live (unused, unexpired) token of this purpose: one indexed read, so a
/// caller can refuse a bogus token before doing expensive work. It does not use the token.
pub async fn find_live_token(db: &Db, purpose: Purpose, token_hash: &str) -> Result<Option<Uuid>> {
    const SQL: &str = "SELECT user_id FROM action_tokens
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3";
    let user: Option<(Uuid,)> = traced_pool!(db, "SELECT", "action_tokens", SQL, |pool| sqlx::query_as(SQL)
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(time::now())
        .fetch_optional(pool)
        .await?);
    Ok(user.map(|(id,)| id))
}

/// Uses a live token of this purpose; returns its account.
const CONSUME: &str = "UPDATE action_tokens SET used_at = $3
     WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
     RETURNING user_id";

/// Confirms the email of the token's account and uses the token, atomically; returns the
/// account id, or `None` when the token is unknown, used or expired.
pub async fn verify_email(db: &Db, token_hash: &str) -> Result<Option<Uuid>> {
    const VERIFY: &str = "UPDATE users SET email_verified = TRUE, updated_at = $2 WHERE id = $1 AND is_active";
    let now = time::now();
    let statements = [CONSUME, VERIFY].join(";\n");
    let user = traced_pool!(db, "UPDATE", "action_tokens", &statements, |pool| {
        let mut tx = pool.begin().await?;
        let user: Option<(Uuid,)> = sqlx::query_as(CONSUME)
            .bind(token_hash)
            .bind(Purpose::VerifyEmail.as_str())
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some((id,)) = user {
            sqlx::query(VERIFY).bind(id).bind(now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        user.map(|(id,)| id)
    });
    Ok(user)
}

/// Sets a new password hash for the token's account, uses the token, and revokes every other
/// outstanding reset token and every session of the account, in the caller's transaction (its
/// audit entry commits with it); returns the account id, or `None` for a bad token.
pub async fn reset_password(tx: &mut Tx, token_hash: &str, new_password_hash: &str) -> Result<Option<Uuid>> {
    const SET_PASSWORD: &str = "UPDATE users SET hashed_password = $2, updated_at = $3 WHERE id = $1 AND is_active";
    const REVOKE: &str = "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
    const REVOKE_RESETS: &str =
        "UPDATE action_tokens SET used_at = $2 WHERE user_id = $1 AND purpose = $3 AND used_at IS NULL";
    let now = time::now();
    let statements = [CONSUME, SET_PASSWORD, REVOKE, REVOKE_RESETS].join(";\n");
    let engine = tx.engine();
    let user = crate::observe::traced(engine, "UPDATE", "action_tokens", &statements, async {
        Ok(crate::on_tx!(tx, |c| {
            let user: Option<(Uuid,)> = sqlx::query_as(CONSUME)
                .bind(token_hash)
                .bind(Purpose::ResetPassword.as_str())
                .bind(now)
                .fetch_optional(&mut *c)
                .await?;
            if let Some((id,)) = user {
                sqlx::query(SET_PASSWORD).bind(id).bind(new_password_hash).bind(now).execute(&mut *c).await?;
                sqlx::query(REVOKE).bind(id).bind(now).execute(&mut *c).await?;
                sqlx::query(REVOKE_RESETS)
                    .bind(id)
                    .bind(now)
                    .bind(Purpose::ResetPassword.as_str())
                    .execute(&mut *c)
                    .await?;
            }
            user.map(|(id,)| id)
        }))
    })
    .await?;
    Ok(user)
}

/// Deletes one-time tokens that expired or were used before `before`; returns how many.
pub async fn delete_stale_action_tokens(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "DELETE FROM action_tokens WHERE expires_at < $1 OR used_at < $1";
    Ok(traced_pool!(db, "DELETE", "action_tokens", SQL, |pool| sqlx::query(SQL)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
}
