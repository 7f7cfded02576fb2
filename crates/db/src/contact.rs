//! Contact-form submissions: stored with the jobs they cause (one transaction), listed and
//! triaged by admins.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, time, traced_conn, traced_pool};

/// A row of `contact_submissions`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ContactSubmission {
    /// UUIDv7.
    pub id: Uuid,
    /// `CNT-XXXXXXXX`, what the sender is told; unique.
    pub reference_id: String,
    /// The sender's name.
    pub name: String,
    /// The sender's address (normalised).
    pub email: String,
    /// Optional subject.
    pub subject: Option<String>,
    /// The message.
    pub message: String,
    /// Optional phone number.
    pub phone: Option<String>,
    /// Optional company.
    pub company: Option<String>,
    /// Optional source (page or campaign).
    pub source: Option<String>,
    /// `new`, `read`, `replied`, `spam` or `archived`.
    pub status: String,
    /// Why it was taken for spam (`honeypot`, `too_fast`), when it was.
    pub spam_reason: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent (truncated).
    pub user_agent: Option<String>,
    /// When it arrived.
    pub created_at: DateTime<Utc>,
    /// Last change (of its status).
    pub updated_at: DateTime<Utc>,
}

/// A submission to store.
#[derive(Clone, Debug, Default)]
pub struct NewContactSubmission<'a> {
    /// See [`ContactSubmission::reference_id`].
    pub reference_id: &'a str,
    /// See [`ContactSubmission::name`].
    pub name: &'a str,
    /// See [`ContactSubmission::email`].
    pub email: &'a str,
    /// See [`ContactSubmission::subject`].
    pub subject: Option<&'a str>,
    /// See [`ContactSubmission::message`].
    pub message: &'a str,
    /// See [`ContactSubmission::phone`].
    pub phone: Option<&'a str>,
    /// See [`ContactSubmission::company`].
    pub company: Option<&'a str>,
    /// See [`ContactSubmission::source`].
    pub source: Option<&'a str>,
    /// See [`ContactSubmission::status`].
    pub status: &'a str,
    /// See [`ContactSubmission::spam_reason`].
    pub spam_reason: Option<&'a str>,
    /// See [`ContactSubmission::ip_address`].
    pub ip_address: Option<&'a str>,
    /// See [`ContactSubmission::user_agent`].
    pub user_agent: Option<&'a str>,
}

const COLUMNS: &str = "id, reference_id, name, email, subject, message, phone, company, source, status, \
     spam_reason, ip_address, user_agent, created_at, updated_at";

/// Stores a submission, alone or in the caller's transaction. A reference id already taken
/// is [`DbError::Conflict`](crate::DbError::Conflict).
pub async fn insert_submission(conn: impl Into<Conn<'_>>, new: &NewContactSubmission<'_>) -> Result<ContactSubmission> {
    let sql = format!(
        "INSERT INTO contact_submissions (id, reference_id, name, email, subject, message, phone, company, source, \
         status, spam_reason, ip_address, user_agent, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) RETURNING {COLUMNS}"
    );
    let conn = conn.into();
    Ok(traced_conn!(conn, "INSERT", "contact_submissions", &sql, |e| sqlx::query_as::<_, ContactSubmission>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(Uuid::now_v7())
    .bind(new.reference_id)
    .bind(new.name)
    .bind(new.email)
    .bind(new.subject)
    .bind(new.message)
    .bind(new.phone)
    .bind(new.company)
    .bind(new.source)
    .bind(new.status)
    .bind(new.spam_reason)
    .bind(new.ip_address)
    .bind(new.user_agent)
    .bind(time::now())
    .fetch_one(e)
    .await?))
}

/// The submission with this id.
pub async fn find_submission(db: &Db, id: Uuid) -> Result<Option<ContactSubmission>> {
    let sql = format!("SELECT {COLUMNS} FROM contact_submissions WHERE id = $1");
    Ok(traced_pool!(db, "SELECT", "contact_submissions", &sql, |pool| sqlx::query_as::<_, ContactSubmission>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .fetch_optional(pool)
    .await?))
}

/// A page of submissions, newest first, only those with `status` when given, and how many
/// match across pages.
pub async fn list_submissions(
    db: &Db,
    status: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<(Vec<ContactSubmission>, i64)> {
    let list = format!(
        "SELECT {COLUMNS} FROM contact_submissions WHERE ($1 IS NULL OR status = $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    );
    let items =
        traced_pool!(db, "SELECT", "contact_submissions", &list, |pool| sqlx::query_as::<_, ContactSubmission>(
            sqlx::AssertSqlSafe(list.as_str())
        )
        .bind(status)
        .bind(limit)
        .bind(skip)
        .fetch_all(pool)
        .await?);
    const COUNT: &str = "SELECT COUNT(*) FROM contact_submissions WHERE ($1 IS NULL OR status = $1)";
    let total = traced_pool!(db, "SELECT", "contact_submissions", COUNT, |pool| sqlx::query_as::<_, (i64,)>(COUNT)
        .bind(status)
        .fetch_one(pool)
        .await?
        .0);
    Ok((items, total))
}

/// Sets a submission's status, alone or in the caller's transaction; `None` when there is no such submission.
pub async fn set_submission_status(
    conn: impl Into<Conn<'_>>,
    id: Uuid,
    status: &str,
) -> Result<Option<ContactSubmission>> {
    let conn = conn.into();
    let sql = format!("UPDATE contact_submissions SET status = $2, updated_at = $3 WHERE id = $1 RETURNING {COLUMNS}");
    Ok(traced_conn!(conn, "UPDATE", "contact_submissions", &sql, |e| sqlx::query_as::<_, ContactSubmission>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .bind(status)
    .bind(time::now())
    .fetch_optional(e)
    .await?))
}
