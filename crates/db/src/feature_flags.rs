//! Feature flags: the rows admins edit, and the revision number every write bumps so that
//! other instances notice a change (a delete included) with one tiny query.

use chrono::{DateTime, Utc};
/// JSON columns (`user_ids`, `plans`), as the row type holds them.
pub use sqlx::types::Json;
use uuid::Uuid;

use crate::{Conn, Db, Result, time, traced_conn, traced_pool};

/// A row of `feature_flags`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FeatureFlag {
    /// Unique key (`^[a-z0-9][a-z0-9_.-]{0,99}$`, checked by the service).
    pub key: String,
    /// What the flag is for.
    pub description: Option<String>,
    /// Off when false, whatever else is set.
    pub enabled: bool,
    /// 0..=100: the share of users it is on for; `None` for no rollout rule.
    pub rollout_percentage: Option<i32>,
    /// Stickiness group of the rollout; `None` means the key.
    pub group_id: Option<String>,
    /// Accounts it is always on for.
    pub user_ids: Json<Vec<Uuid>>,
    /// Plans it is limited to (empty: any plan).
    pub plans: Json<Vec<String>>,
    /// When it turns off by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a flag holds besides its key and timestamps (a new flag, or a whole replacement).
#[derive(Clone, Debug, Default)]
pub struct FlagFields<'a> {
    /// Description.
    pub description: Option<&'a str>,
    /// Whether it is on at all.
    pub enabled: bool,
    /// Rollout percentage.
    pub rollout_percentage: Option<i32>,
    /// Stickiness group.
    pub group_id: Option<&'a str>,
    /// Always-on accounts.
    pub user_ids: &'a [Uuid],
    /// Allowed plans.
    pub plans: &'a [String],
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "key, description, enabled, rollout_percentage, group_id, user_ids, plans, expires_at, created_at, updated_at";

/// Every flag, by key.
pub async fn list_flags(conn: impl Into<Conn<'_>>) -> Result<Vec<FeatureFlag>> {
    let conn = conn.into();
    let sql = format!("SELECT {COLUMNS} FROM feature_flags ORDER BY key");
    Ok(traced_conn!(conn, "SELECT", "feature_flags", &sql, |e| sqlx::query_as::<_, FeatureFlag>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .fetch_all(e)
    .await?))
}

/// The flag with this key.
pub async fn find_flag(conn: impl Into<Conn<'_>>, key: &str) -> Result<Option<FeatureFlag>> {
    let conn = conn.into();
    let sql = format!("SELECT {COLUMNS} FROM feature_flags WHERE key = $1");
    Ok(traced_conn!(conn, "SELECT", "feature_flags", &sql, |e| sqlx::query_as::<_, FeatureFlag>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(key)
    .fetch_optional(e)
    .await?))
}

/// How many flags there are.
pub async fn count_flags(conn: impl Into<Conn<'_>>) -> Result<i64> {
    let conn = conn.into();
    const SQL: &str = "SELECT COUNT(*) FROM feature_flags";
    Ok(traced_conn!(conn, "SELECT", "feature_flags", SQL, |e| sqlx::query_as::<_, (i64,)>(SQL).fetch_one(e).await?.0))
}

/// Creates a flag; a taken key is [`crate::DbError::Conflict`].
pub async fn insert_flag(conn: impl Into<Conn<'_>>, key: &str, fields: &FlagFields<'_>) -> Result<FeatureFlag> {
    let conn = conn.into();
    let sql = format!(
        "INSERT INTO feature_flags ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING {COLUMNS}"
    );
    Ok(traced_conn!(conn, "INSERT", "feature_flags", &sql, |e| sqlx::query_as::<_, FeatureFlag>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(key)
    .bind(fields.description)
    .bind(fields.enabled)
    .bind(fields.rollout_percentage)
    .bind(fields.group_id)
    .bind(Json(fields.user_ids))
    .bind(Json(fields.plans))
    .bind(fields.expires_at)
    .bind(time::now())
    .fetch_one(e)
    .await?))
}

/// Replaces what the flag holds; `None` when there is no such flag.
pub async fn update_flag(conn: impl Into<Conn<'_>>, key: &str, fields: &FlagFields<'_>) -> Result<Option<FeatureFlag>> {
    let conn = conn.into();
    let sql = format!(
        "UPDATE feature_flags SET description = $2, enabled = $3, rollout_percentage = $4, group_id = $5,
                user_ids = $6, plans = $7, expires_at = $8, updated_at = $9
         WHERE key = $1 RETURNING {COLUMNS}"
    );
    Ok(traced_conn!(conn, "UPDATE", "feature_flags", &sql, |e| sqlx::query_as::<_, FeatureFlag>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(key)
    .bind(fields.description)
    .bind(fields.enabled)
    .bind(fields.rollout_percentage)
    .bind(fields.group_id)
    .bind(Json(fields.user_ids))
    .bind(Json(fields.plans))
    .bind(fields.expires_at)
    .bind(time::now())
    .fetch_optional(e)
    .await?))
}

/// Deletes a flag; false when there is none.
pub async fn delete_flag(conn: impl Into<Conn<'_>>, key: &str) -> Result<bool> {
    let conn = conn.into();
    const SQL: &str = "DELETE FROM feature_flags WHERE key = $1";
    let done = traced_conn!(conn, "DELETE", "feature_flags", SQL, |e| sqlx::query(SQL)
        .bind(key)
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// Bumps the flags' revision (call in the transaction of every flag write) and returns it.
/// The row lock it takes also serialises concurrent flag writers on PostgreSQL.
pub async fn bump_revision(conn: impl Into<Conn<'_>>) -> Result<i64> {
    let conn = conn.into();
    const SQL: &str = "UPDATE feature_flag_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision";
    Ok(traced_conn!(conn, "UPDATE", "feature_flag_revision", SQL, |e| sqlx::query_as::<_, (i64,)>(SQL)
        .fetch_one(e)
        .await?
        .0))
}

/// The flags' current revision: one primary-key read, polled by every instance.
pub async fn current_revision(db: &Db) -> Result<i64> {
    const SQL: &str = "SELECT revision FROM feature_flag_revision WHERE id = 1";
    Ok(traced_pool!(db, "SELECT", "feature_flag_revision", SQL, |pool| sqlx::query_as::<_, (i64,)>(SQL)
        .fetch_one(pool)
        .await?
        .0))
}
