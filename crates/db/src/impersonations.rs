//! Impersonation sessions: an admin acting as a user for a bounded time. The token an admin
//! gets is bound to a row here; the guard checks the row on every request, so ending it takes
//! effect on every instance at once.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, Tx, time, traced_conn, traced_pool};

/// A session, with the emails of both sides (as they are now).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Impersonation {
    /// UUIDv7.
    pub id: Uuid,
    /// The admin.
    pub admin_id: Uuid,
    /// The admin's email.
    pub admin_email: Option<String>,
    /// The user impersonated.
    pub user_id: Uuid,
    /// The user's email.
    pub user_email: Option<String>,
    /// Why (10 to 500 characters).
    pub reason: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// When its token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was stopped.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who stopped it.
    pub ended_by: Option<Uuid>,
}

impl Impersonation {
    /// Neither stopped nor expired at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.ended_at.is_none() && self.expires_at > now
    }
}

const SELECT: &str = "SELECT s.id, s.admin_id, a.email AS admin_email, s.user_id, u.email AS user_email, s.reason, \
     s.started_at, s.expires_at, s.ended_at, s.ended_by \
     FROM impersonation_sessions s JOIN users a ON a.id = s.admin_id JOIN users u ON u.id = s.user_id";

/// What a new session starts with.
#[derive(Clone, Debug)]
pub struct NewImpersonation<'a> {
    /// The admin.
    pub admin_id: Uuid,
    /// The user.
    pub user_id: Uuid,
    /// Why.
    pub reason: &'a str,
    /// Its lifetime.
    pub duration: chrono::Duration,
}

/// Starts a session in the caller's transaction; returns its id and expiry.
pub async fn insert_impersonation(tx: &mut Tx, new: &NewImpersonation<'_>) -> Result<(Uuid, DateTime<Utc>)> {
    const SQL: &str = "INSERT INTO impersonation_sessions (id, admin_id, user_id, reason, started_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)";
    let (id, now) = (Uuid::now_v7(), time::now());
    let expires_at = now + new.duration;
    let conn = Conn::from(tx);
    traced_conn!(conn, "INSERT", "impersonation_sessions", SQL, |e| sqlx::query(SQL)
        .bind(id)
        .bind(new.admin_id)
        .bind(new.user_id)
        .bind(new.reason)
        .bind(now)
        .bind(expires_at)
        .execute(e)
        .await?
        .rows_affected());
    Ok((id, expires_at))
}

/// The session with this id, alone or in the caller's transaction.
pub async fn find_impersonation(conn: impl Into<Conn<'_>>, id: Uuid) -> Result<Option<Impersonation>> {
    let conn = conn.into();
    let sql = format!("{SELECT} WHERE s.id = $1");
    Ok(traced_conn!(conn, "SELECT", "impersonation_sessions", &sql, |e| sqlx::query_as::<_, Impersonation>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .fetch_optional(e)
    .await?))
}

/// The admin behind a live session `id` acting as `user_id`: `(admin_id, admin_email,
/// admin_role)`, or `None` when the session is stopped, expired, for another user, or its
/// admin is no longer an active admin. One indexed read per impersonated request.
pub async fn find_live_impersonator(
    db: &Db,
    id: Uuid,
    user_id: Uuid,
) -> Result<Option<(Uuid, Option<String>, String)>> {
    const SQL: &str = "SELECT a.id, a.email, a.role FROM impersonation_sessions s JOIN users a ON a.id = s.admin_id
         WHERE s.id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > $3
           AND a.is_active AND a.role IN ('admin', 'super_admin')";
    Ok(traced_pool!(db, "SELECT", "impersonation_sessions", SQL, |pool| sqlx::query_as(SQL)
        .bind(id)
        .bind(user_id)
        .bind(time::now())
        .fetch_optional(pool)
        .await?))
}

/// One page of sessions, newest first: all, only live ones (`Some(true)`) or only ended or
/// expired ones (`Some(false)`); and how many match in all.
pub async fn list_impersonations(
    db: &Db,
    active: Option<bool>,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Impersonation>, i64)> {
    const WHERE: &str = "($1 IS NULL OR ($1 = (s.ended_at IS NULL AND s.expires_at > $2)))";
    let page_sql = format!("{SELECT} WHERE {WHERE} ORDER BY s.started_at DESC, s.id DESC LIMIT $3 OFFSET $4");
    let count_sql = format!("SELECT COUNT(*) FROM impersonation_sessions s WHERE {WHERE}");
    let now = time::now();
    let items =
        traced_pool!(db, "SELECT", "impersonation_sessions", &page_sql, |pool| sqlx::query_as::<_, Impersonation>(
            sqlx::AssertSqlSafe(page_sql.as_str())
        )
        .bind(active)
        .bind(now)
        .bind(limit)
        .bind(skip)
        .fetch_all(pool)
        .await?);
    let (total,): (i64,) = traced_pool!(db, "SELECT", "impersonation_sessions", &count_sql, |pool| sqlx::query_as(
        sqlx::AssertSqlSafe(count_sql.as_str())
    )
    .bind(active)
    .bind(now)
    .fetch_one(pool)
    .await?);
    Ok((items, total))
}

/// Ends a live session in the caller's transaction; false when it is unknown, already
/// stopped or expired.
pub async fn end_impersonation(tx: &mut Tx, id: Uuid, ended_by: Uuid) -> Result<bool> {
    const SQL: &str = "UPDATE impersonation_sessions SET ended_at = $2, ended_by = $3
         WHERE id = $1 AND ended_at IS NULL AND expires_at > $2";
    let conn = Conn::from(tx);
    let done = traced_conn!(conn, "UPDATE", "impersonation_sessions", SQL, |e| sqlx::query(SQL)
        .bind(id)
        .bind(time::now())
        .bind(ended_by)
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}
