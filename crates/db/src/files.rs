//! Files owned by one account, stored outside the database (`DATA_DIR/files` or an S3 bucket).
//! A row is `pending` from the issue of its upload URL until the upload is confirmed
//! (`uploaded`). Finding, deleting and keyset pages are the shared [`crate::owned`] statements;
//! the statements here are the file's own.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::owned::{Cursor, Owned};
use crate::{Conn, Db, Result, time, traced_conn, traced_pool};

/// A file waiting for its upload.
pub const PENDING: &str = "pending";
/// A file whose upload was confirmed.
pub const UPLOADED: &str = "uploaded";

/// A row of `files`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct File {
    /// UUIDv7.
    pub id: Uuid,
    /// The owning account.
    pub owner_id: Uuid,
    /// The name the client gave (1..=255 characters, never a path).
    pub filename: String,
    /// The declared media type.
    pub content_type: String,
    /// The declared size in bytes.
    pub size_bytes: i64,
    /// Where the object lives in the store; made by the server.
    pub storage_key: String,
    /// [`PENDING`] or [`UPLOADED`].
    pub status: String,
    /// When the upload URL was issued.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When the upload was confirmed.
    pub uploaded_at: Option<DateTime<Utc>>,
}

impl Owned for File {
    const TABLE: &'static str = "files";
    const COLUMNS: &'static str = COLUMNS;

    fn cursor(&self) -> Cursor {
        Cursor { created_at: self.created_at, id: self.id }
    }
}

const COLUMNS: &str =
    "id, owner_id, filename, content_type, size_bytes, storage_key, status, created_at, updated_at, uploaded_at";

/// A file about to be uploaded; the caller makes the id (it is part of the storage key).
#[derive(Clone, Debug)]
pub struct NewFile<'a> {
    /// UUIDv7.
    pub id: Uuid,
    /// The owning account.
    pub owner_id: Uuid,
    /// The client's name for it.
    pub filename: &'a str,
    /// The declared media type.
    pub content_type: &'a str,
    /// The declared size.
    pub size_bytes: i64,
    /// The server-made key.
    pub storage_key: &'a str,
}

/// One page of an owner's files, newest first.
#[derive(Clone, Debug)]
pub struct FilePage {
    /// The page.
    pub items: Vec<File>,
    /// All matching files, across pages.
    pub total: i64,
}

/// Records a pending file.
pub async fn insert_file(db: &Db, new: &NewFile<'_>) -> Result<File> {
    let sql = format!(
        "INSERT INTO files (id, owner_id, filename, content_type, size_bytes, storage_key, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) RETURNING {COLUMNS}"
    );
    Ok(traced_pool!(db, "INSERT", "files", &sql, |pool| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(new.id)
        .bind(new.owner_id)
        .bind(new.filename)
        .bind(new.content_type)
        .bind(new.size_bytes)
        .bind(new.storage_key)
        .bind(time::now())
        .fetch_one(pool)
        .await?))
}

/// Any account's file `id` (the signed transfer routes, whose signature names the file).
pub async fn find_file(db: &Db, id: Uuid) -> Result<Option<File>> {
    let sql = format!("SELECT {COLUMNS} FROM files WHERE id = $1");
    Ok(traced_pool!(db, "SELECT", "files", &sql, |pool| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// Marks the owner's pending file uploaded; `None` when it is not the owner's or not pending
/// (so a second confirmation changes nothing).
pub async fn mark_uploaded(conn: impl Into<Conn<'_>>, owner_id: Uuid, id: Uuid) -> Result<Option<File>> {
    let conn = conn.into();
    let sql = format!(
        "UPDATE files SET status = 'uploaded', uploaded_at = $3, updated_at = $3
         WHERE id = $1 AND owner_id = $2 AND status = 'pending' RETURNING {COLUMNS}"
    );
    Ok(traced_conn!(conn, "UPDATE", "files", &sql, |e| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(owner_id)
        .bind(time::now())
        .fetch_optional(e)
        .await?))
}

/// The owner's files, newest first, optionally only those in `status`.
pub async fn list_files(db: &Db, owner_id: Uuid, status: Option<&str>, skip: i64, limit: i64) -> Result<FilePage> {
    const WHERE: &str = "owner_id = $1 AND ($2 IS NULL OR status = $2)";
    let list =
        format!("SELECT {COLUMNS} FROM files WHERE {WHERE} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4");
    let items = traced_pool!(db, "SELECT", "files", &list, |pool| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(
        list.as_str()
    ))
    .bind(owner_id)
    .bind(status)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let count = format!("SELECT COUNT(*) FROM files WHERE {WHERE}");
    let total = traced_pool!(db, "SELECT", "files", &count, |pool| sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(
        count.as_str()
    ))
    .bind(owner_id)
    .bind(status)
    .fetch_one(pool)
    .await?
    .0);
    Ok(FilePage { items, total })
}

/// Deletes the owner's file and returns it (its size and status say what it used); `None`
/// when there is none.
pub async fn delete_file(conn: impl Into<Conn<'_>>, owner_id: Uuid, id: Uuid) -> Result<Option<File>> {
    let conn = conn.into();
    let sql = format!("DELETE FROM files WHERE id = $1 AND owner_id = $2 RETURNING {COLUMNS}");
    Ok(traced_conn!(conn, "DELETE", "files", &sql, |e| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(owner_id)
        .fetch_optional(e)
        .await?))
}

/// At most `limit` pending files created before `before`, oldest first.
pub async fn stale_pending_files(db: &Db, before: DateTime<Utc>, limit: i64) -> Result<Vec<File>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT $2"
    );
    Ok(traced_pool!(db, "SELECT", "files", &sql, |pool| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await?))
}

/// Deletes file `id` if it is still pending; false when it was confirmed (or is gone) meanwhile.
pub async fn delete_pending_file(db: &Db, id: Uuid) -> Result<bool> {
    const SQL: &str = "DELETE FROM files WHERE id = $1 AND status = 'pending'";
    let done =
        traced_pool!(db, "DELETE", "files", SQL, |pool| sqlx::query(SQL).bind(id).execute(pool).await?.rows_affected());
    Ok(done > 0)
}

/// How many files the owner has in `status`.
pub async fn count_files(db: &Db, owner_id: Uuid, status: &str) -> Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM files WHERE owner_id = $1 AND status = $2";
    Ok(traced_pool!(db, "SELECT", "files", SQL, |pool| sqlx::query_as::<_, (i64,)>(SQL)
        .bind(owner_id)
        .bind(status)
        .fetch_one(pool)
        .await?
        .0))
}

/// At most `limit` of the owner's files after `after` in the newest-first order (from the
/// newest when `None`), optionally only those in `status`: keyset pages.
pub async fn list_files_after(
    db: &Db,
    owner_id: Uuid,
    status: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<File>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM files WHERE owner_id = $1 AND ($2 IS NULL OR status = $2)
         AND ($3 IS NULL OR (created_at, id) < ($3, $4)) ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    Ok(traced_pool!(db, "SELECT", "files", &sql, |pool| sqlx::query_as::<_, File>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(owner_id)
        .bind(status)
        .bind(after.map(|a| a.created_at))
        .bind(after.map(|a| a.id))
        .bind(limit)
        .fetch_all(pool)
        .await?))
}
