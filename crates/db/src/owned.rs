//! What every resource owned by one account shares: finding one row, deleting it, and keyset
//! pages newest first. A resource's own module implements [`Owned`] for its row type and keeps
//! only the statements that are its own (insert, update, search).
//!
//! The table needs `id` (UUIDv7), `owner_id` and `created_at` columns, and an index on
//! `(owner_id, created_at DESC, id DESC)` for the pages.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::{Db, Result, time, traced_pool};

/// A row type of a table whose rows belong to one account.
pub trait Owned: Send + Unpin + for<'r> sqlx::FromRow<'r, PgRow> + for<'r> sqlx::FromRow<'r, SqliteRow> {
    /// The table.
    const TABLE: &'static str;
    /// The columns the row type reads, comma-separated.
    const COLUMNS: &'static str;
    /// The column a soft delete sets (`deleted_at`); `None` when a delete removes the row.
    const DELETED_AT: Option<&'static str> = None;

    /// The row's place in the newest-first order.
    fn cursor(&self) -> Cursor;
}

/// A position in the newest-first order (`created_at DESC, id DESC`): the last row a client
/// has seen. The id breaks ties between equal creation times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// The row's creation time.
    pub created_at: DateTime<Utc>,
    /// The row's id.
    pub id: Uuid,
}

/// `AND <deleted_at> IS NULL` for soft-deleted tables, else nothing.
fn live<T: Owned>() -> String {
    T::DELETED_AT.map_or_else(String::new, |column| format!(" AND {column} IS NULL"))
}

/// The owner's row with this id (live, for soft-deleted tables); another owner's is `None`.
pub async fn find_owned<T: Owned>(db: &Db, owner_id: Uuid, id: Uuid) -> Result<Option<T>> {
    let sql = format!("SELECT {} FROM {} WHERE id = $1 AND owner_id = $2{}", T::COLUMNS, T::TABLE, live::<T>());
    Ok(traced_pool!(db, "SELECT", T::TABLE, &sql, |pool| sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(owner_id)
        .fetch_optional(pool)
        .await?))
}

/// At most `limit` of the owner's rows after `after` in the newest-first order, from the
/// newest when `after` is `None`. Keyset paging: no offset to skip, stable while rows are added.
pub async fn list_owned_after<T: Owned>(db: &Db, owner_id: Uuid, after: Option<Cursor>, limit: i64) -> Result<Vec<T>> {
    // Row values compare (created_at, id) as a pair on both engines; SQLite's RFC 3339 text
    // sorts like the time it holds, its UUID blobs like PostgreSQL's UUIDs.
    let sql = format!(
        "SELECT {} FROM {} WHERE owner_id = $1{} AND ($2 IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        T::COLUMNS,
        T::TABLE,
        live::<T>()
    );
    Ok(traced_pool!(db, "SELECT", T::TABLE, &sql, |pool| sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(owner_id)
        .bind(after.map(|a| a.created_at))
        .bind(after.map(|a| a.id))
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Deletes the owner's row (soft-deletes it for soft-deleted tables); false when there is none.
pub async fn delete_owned<T: Owned>(db: &Db, owner_id: Uuid, id: Uuid) -> Result<bool> {
    let (sql, now) = match T::DELETED_AT {
        Some(column) => (
            format!(
                "UPDATE {} SET {column} = $3, updated_at = $3 WHERE id = $1 AND owner_id = $2 AND {column} IS NULL",
                T::TABLE
            ),
            Some(time::now()),
        ),
        None => (format!("DELETE FROM {} WHERE id = $1 AND owner_id = $2", T::TABLE), None),
    };
    let done = traced_pool!(db, "DELETE", T::TABLE, &sql, |pool| {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id).bind(owner_id);
        match now {
            Some(now) => query.bind(now),
            None => query,
        }
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done > 0)
}
