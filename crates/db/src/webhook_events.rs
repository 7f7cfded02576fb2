//! Inbound webhook events: stored once per provider and event id (with the job that processes
//! them, in one transaction), their processing recorded, listed and replayed by admins.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, Tx, time, traced_conn, traced_pool};

/// Where an event is in its life.
pub const STATUSES: [&str; 3] = ["received", "processed", "failed"];

/// A row of `webhook_events`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookEvent {
    /// UUIDv7.
    pub id: Uuid,
    /// `stripe`, `clerk`, `supabase`, `apple` or `google`.
    pub provider: String,
    /// The provider's id of the event; unique per provider.
    pub event_id: String,
    /// The provider's type of the event (`customer.subscription.updated`, `user.created`, …).
    pub event_type: String,
    /// `received` (not processed yet, or replayed), `processed`, or `failed` (the last attempt
    /// failed; the queue retries it until its attempts run out).
    pub status: String,
    /// The allow-listed request headers, a JSON object of strings (never a secret).
    pub headers: String,
    /// The body as received.
    pub payload: String,
    /// Processing attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
    /// When it was last processed successfully.
    pub processed_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A row of `webhook_events` as a listing shows it: without headers and payload.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookEventSummary {
    /// See [`WebhookEvent::id`].
    pub id: Uuid,
    /// See [`WebhookEvent::provider`].
    pub provider: String,
    /// See [`WebhookEvent::event_id`].
    pub event_id: String,
    /// See [`WebhookEvent::event_type`].
    pub event_type: String,
    /// See [`WebhookEvent::status`].
    pub status: String,
    /// See [`WebhookEvent::attempts`].
    pub attempts: i32,
    /// See [`WebhookEvent::last_error`].
    pub last_error: Option<String>,
    /// See [`WebhookEvent::received_at`].
    pub received_at: DateTime<Utc>,
    /// See [`WebhookEvent::processed_at`].
    pub processed_at: Option<DateTime<Utc>>,
    /// See [`WebhookEvent::updated_at`].
    pub updated_at: DateTime<Utc>,
}

/// A verified event to store.
#[derive(Clone, Copy, Debug)]
pub struct NewWebhookEvent<'a> {
    /// See [`WebhookEvent::provider`].
    pub provider: &'a str,
    /// See [`WebhookEvent::event_id`].
    pub event_id: &'a str,
    /// See [`WebhookEvent::event_type`].
    pub event_type: &'a str,
    /// See [`WebhookEvent::headers`].
    pub headers: &'a str,
    /// See [`WebhookEvent::payload`].
    pub payload: &'a str,
}

/// What a listing keeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookEventFilter<'a> {
    /// Only this provider.
    pub provider: Option<&'a str>,
    /// Only this status.
    pub status: Option<&'a str>,
}

const COLUMNS: &str = "id, provider, event_id, event_type, status, headers, payload, attempts, last_error, \
     received_at, processed_at, updated_at";
const SUMMARY_COLUMNS: &str =
    "id, provider, event_id, event_type, status, attempts, last_error, received_at, processed_at, updated_at";

/// Stores a verified event as `received`, alone or in the caller's transaction. `None` when
/// the provider's event id is already stored: a redelivery, which changes nothing.
pub async fn insert_event(conn: impl Into<Conn<'_>>, new: &NewWebhookEvent<'_>) -> Result<Option<WebhookEvent>> {
    let sql = format!(
        "INSERT INTO webhook_events (id, provider, event_id, event_type, status, headers, payload, attempts,
             received_at, updated_at)
         VALUES ($1, $2, $3, $4, 'received', $5, $6, 0, $7, $7)
         ON CONFLICT (provider, event_id) DO NOTHING RETURNING {COLUMNS}"
    );
    let conn = conn.into();
    Ok(traced_conn!(conn, "INSERT", "webhook_events", &sql, |e| sqlx::query_as::<_, WebhookEvent>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(Uuid::now_v7())
    .bind(new.provider)
    .bind(new.event_id)
    .bind(new.event_type)
    .bind(new.headers)
    .bind(new.payload)
    .bind(time::now())
    .fetch_optional(e)
    .await?))
}

/// The event with this id.
pub async fn find_event(db: &Db, id: Uuid) -> Result<Option<WebhookEvent>> {
    let sql = format!("SELECT {COLUMNS} FROM webhook_events WHERE id = $1");
    Ok(traced_pool!(db, "SELECT", "webhook_events", &sql, |pool| sqlx::query_as::<_, WebhookEvent>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .fetch_optional(pool)
    .await?))
}

/// A page of events, newest first, and how many match across pages.
pub async fn list_events(
    db: &Db,
    filter: WebhookEventFilter<'_>,
    skip: i64,
    limit: i64,
) -> Result<(Vec<WebhookEventSummary>, i64)> {
    const WHERE: &str = "WHERE ($1 IS NULL OR provider = $1) AND ($2 IS NULL OR status = $2)";
    let list = format!(
        "SELECT {SUMMARY_COLUMNS} FROM webhook_events {WHERE} ORDER BY received_at DESC, id DESC LIMIT $3 OFFSET $4"
    );
    let items = traced_pool!(db, "SELECT", "webhook_events", &list, |pool| sqlx::query_as::<_, WebhookEventSummary>(
        sqlx::AssertSqlSafe(list.as_str())
    )
    .bind(filter.provider)
    .bind(filter.status)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let count = format!("SELECT COUNT(*) FROM webhook_events {WHERE}");
    let total = traced_pool!(db, "SELECT", "webhook_events", &count, |pool| sqlx::query_as::<_, (i64,)>(
        sqlx::AssertSqlSafe(count.as_str())
    )
    .bind(filter.provider)
    .bind(filter.status)
    .fetch_one(pool)
    .await?
    .0);
    Ok((items, total))
}

/// Records a successful processing attempt: `processed`, the error cleared. False when there
/// is no such event.
pub async fn mark_processed(db: &Db, id: Uuid) -> Result<bool> {
    const SQL: &str = "UPDATE webhook_events SET status = 'processed', attempts = attempts + 1, last_error = NULL,
         processed_at = $2, updated_at = $2 WHERE id = $1";
    let done = traced_pool!(db, "UPDATE", "webhook_events", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Records a failed processing attempt: `failed`, with its error. False when there is no such
/// event.
pub async fn mark_failed(db: &Db, id: Uuid, error: &str) -> Result<bool> {
    const SQL: &str = "UPDATE webhook_events SET status = 'failed', attempts = attempts + 1, last_error = $2,
         updated_at = $3 WHERE id = $1";
    let done = traced_pool!(db, "UPDATE", "webhook_events", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(error)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// Puts an event back to `received` for another processing (an admin's replay), in the
/// caller's transaction; its attempts and last error stay as the record of what happened.
/// `None` when there is no such event.
pub async fn mark_replayed(tx: &mut Tx, id: Uuid) -> Result<Option<WebhookEvent>> {
    let sql =
        format!("UPDATE webhook_events SET status = 'received', updated_at = $2 WHERE id = $1 RETURNING {COLUMNS}");
    let conn = Conn::from(tx);
    Ok(traced_conn!(conn, "UPDATE", "webhook_events", &sql, |e| sqlx::query_as::<_, WebhookEvent>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(id)
    .bind(time::now())
    .fetch_optional(e)
    .await?))
}

/// Events per provider and status: `(provider, status, count)`, sorted, for the dashboard.
pub async fn count_by_status(db: &Db) -> Result<Vec<(String, String, i64)>> {
    const SQL: &str = "SELECT provider, status, COUNT(*) FROM webhook_events GROUP BY provider, status
         ORDER BY provider, status";
    Ok(traced_pool!(db, "SELECT", "webhook_events", SQL, |pool| sqlx::query_as::<_, (String, String, i64)>(SQL)
        .fetch_all(pool)
        .await?))
}
