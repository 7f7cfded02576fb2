//! The audit log: append-only entries chained by hash (see ADR 0010). Appending is three calls
//! in the writer's transaction: [`crate::dialect::lock_audit_chain_head`], [`insert_entry`],
//! [`advance_chain_head`]; the service computes the hash between them. Nothing here updates or
//! deletes an entry.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Db, Result, Tx, traced_conn, traced_pool};

/// The hash the first entry links to.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A row of `audit_log`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    /// UUIDv7.
    pub id: Uuid,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When the action happened (microseconds).
    pub occurred_at: DateTime<Utc>,
    /// Who acted (`None` for an anonymous caller).
    pub actor_id: Option<Uuid>,
    /// Their email then.
    pub actor_email: Option<String>,
    /// Their role then.
    pub actor_role: Option<String>,
    /// The user an impersonating admin acted as.
    pub impersonated_user_id: Option<Uuid>,
    /// `user.updated`, `auth.login`, …
    pub action: String,
    /// `user`, `job`, `impersonation`, …
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// Canonical JSON text, stored as hashed.
    pub details: String,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent (bounded).
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The previous entry's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of `prev_hash` and the entry's other fields.
    pub hash: String,
}

const COLUMNS: &str = "id, seq, occurred_at, actor_id, actor_email, actor_role, impersonated_user_id, action, \
     resource_type, resource_id, details, ip, user_agent, request_id, prev_hash, hash";

/// The chain's last link.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChainHead {
    /// The last entry's `seq` (0 when empty).
    pub seq: i64,
    /// The last entry's hash ([`GENESIS_HASH`] when empty).
    pub hash: String,
}

/// Inserts an entry whose `seq`, `prev_hash` and `hash` the caller computed under the chain
/// head's lock.
pub async fn insert_entry(tx: &mut Tx, row: &AuditRow) -> Result<()> {
    let sql = format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
    );
    let conn = crate::Conn::from(tx);
    traced_conn!(conn, "INSERT", "audit_log", &sql, |e| sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(row.id)
        .bind(row.seq)
        .bind(row.occurred_at)
        .bind(row.actor_id)
        .bind(&row.actor_email)
        .bind(&row.actor_role)
        .bind(row.impersonated_user_id)
        .bind(&row.action)
        .bind(&row.resource_type)
        .bind(&row.resource_id)
        .bind(&row.details)
        .bind(&row.ip)
        .bind(&row.user_agent)
        .bind(&row.request_id)
        .bind(&row.prev_hash)
        .bind(&row.hash)
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// Moves the chain head to the entry just inserted.
pub async fn advance_chain_head(tx: &mut Tx, head: &ChainHead) -> Result<()> {
    const SQL: &str = "UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1";
    let conn = crate::Conn::from(tx);
    traced_conn!(conn, "UPDATE", "audit_chain_head", SQL, |e| sqlx::query(SQL)
        .bind(head.seq)
        .bind(&head.hash)
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// The chain head, unlocked (what `verify` compares the last entry with).
pub async fn find_chain_head(db: &Db) -> Result<ChainHead> {
    const SQL: &str = "SELECT seq, hash FROM audit_chain_head WHERE id = 1";
    Ok(traced_pool!(db, "SELECT", "audit_chain_head", SQL, |pool| sqlx::query_as::<_, ChainHead>(SQL)
        .fetch_one(pool)
        .await?))
}

/// Which entries a listing shows; every field narrows it.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditFilter<'a> {
    /// Only this actor.
    pub actor_id: Option<Uuid>,
    /// Only this action.
    pub action: Option<&'a str>,
    /// Only this resource type.
    pub resource_type: Option<&'a str>,
    /// Only this resource id.
    pub resource_id: Option<&'a str>,
    /// At or after this moment.
    pub since: Option<DateTime<Utc>>,
    /// At or before this moment.
    pub until: Option<DateTime<Utc>>,
}

const WHERE: &str = "($1 IS NULL OR actor_id = $1) AND ($2 IS NULL OR action = $2) \
     AND ($3 IS NULL OR resource_type = $3) AND ($4 IS NULL OR resource_id = $4) \
     AND ($5 IS NULL OR occurred_at >= $5) AND ($6 IS NULL OR occurred_at <= $6)";

/// One page of entries, newest first, and how many match in all.
pub async fn list_entries(db: &Db, filter: &AuditFilter<'_>, skip: i64, limit: i64) -> Result<(Vec<AuditRow>, i64)> {
    let page_sql = format!("SELECT {COLUMNS} FROM audit_log WHERE {WHERE} ORDER BY seq DESC LIMIT $7 OFFSET $8");
    let count_sql = format!("SELECT COUNT(*) FROM audit_log WHERE {WHERE}");
    let items = traced_pool!(db, "SELECT", "audit_log", &page_sql, |pool| sqlx::query_as::<_, AuditRow>(
        sqlx::AssertSqlSafe(page_sql.as_str())
    )
    .bind(filter.actor_id)
    .bind(filter.action)
    .bind(filter.resource_type)
    .bind(filter.resource_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let (total,): (i64,) = traced_pool!(db, "SELECT", "audit_log", &count_sql, |pool| sqlx::query_as(
        sqlx::AssertSqlSafe(count_sql.as_str())
    )
    .bind(filter.actor_id)
    .bind(filter.action)
    .bind(filter.resource_type)
    .bind(filter.resource_id)
    .bind(filter.since)
    .bind(filter.until)
    .fetch_one(pool)
    .await?);
    Ok((items, total))
}

/// Up to `limit` matching entries older than `before_seq` (all when `None`), newest first:
/// the keyset pages an export streams.
pub async fn list_entries_before(
    db: &Db,
    filter: &AuditFilter<'_>,
    before_seq: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {WHERE} AND ($7 IS NULL OR seq < $7) ORDER BY seq DESC LIMIT $8"
    );
    Ok(traced_pool!(db, "SELECT", "audit_log", &sql, |pool| sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(filter.actor_id)
    .bind(filter.action)
    .bind(filter.resource_type)
    .bind(filter.resource_id)
    .bind(filter.since)
    .bind(filter.until)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// Up to `limit` entries after `after_seq`, in chain order: the batches `verify` walks.
pub async fn list_chain_after(db: &Db, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    Ok(traced_pool!(db, "SELECT", "audit_log", &sql, |pool| sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// The entry with this id.
pub async fn find_entry(db: &Db, id: Uuid) -> Result<Option<AuditRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE id = $1");
    Ok(traced_pool!(db, "SELECT", "audit_log", &sql, |pool| sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?))
}
