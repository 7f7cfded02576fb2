//! The statements that must differ between PostgreSQL and SQLite, side by side.

use crate::{Db, Result};

/// A table's column, as the schema reports it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

/// Every column of every application table (migration bookkeeping excluded), sorted.
pub async fn list_columns(db: &Db) -> Result<Vec<Column>> {
    let rows: Vec<(String, String, bool)> = match db {
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT table_name::text, column_name::text, is_nullable = 'YES'
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await?
        }
        Db::Sqlite(pool, _) => {
            sqlx::query_as(
                "SELECT m.name, p.name, p.\"notnull\" = 0 AND p.pk = 0
                 FROM sqlite_schema m JOIN pragma_table_info(m.name) p
                 WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
            )
            .fetch_all(pool)
            .await?
        }
    };
    let mut columns: Vec<Column> =
        rows.into_iter().map(|(table, column, nullable)| Column { table, column, nullable }).collect();
    columns.sort();
    Ok(columns)
}

/// Claims up to `limit` runnable jobs for `lease`: first `running` jobs whose lease expired
/// (their worker died), then due `queued`/`failed` jobs, oldest first; each becomes `running`
/// with one more attempt. Two statements, each an ordered scan of its own partial index, so a
/// claim reads `limit` rows however long the queue is. PostgreSQL skips rows another worker is
/// claiming (`FOR UPDATE SKIP LOCKED`); SQLite has a single writer, so each statement alone is
/// atomic.
pub async fn claim_jobs(db: &Db, lease: chrono::Duration, limit: i64) -> Result<Vec<crate::jobs::Job>> {
    const EXPIRED: &str =
        "SELECT id FROM jobs WHERE state = 'running' AND lease_until < $1 ORDER BY lease_until LIMIT $3";
    const DUE: &str =
        "SELECT id FROM jobs WHERE state IN ('queued', 'failed') AND run_at <= $1 ORDER BY run_at LIMIT $3";
    let lock = match db {
        Db::Postgres(_) => " FOR UPDATE SKIP LOCKED",
        Db::Sqlite(..) => "",
    };
    let now = crate::time::now();
    let mut claimed = Vec::new();
    for runnable in [EXPIRED, DUE] {
        let wanted = limit - claimed.len() as i64;
        if wanted <= 0 {
            break;
        }
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = $2, started_at = $1, \
             updated_at = $1 WHERE id IN ({runnable}{lock}) RETURNING {}",
            crate::jobs::COLUMNS
        );
        let jobs = crate::traced_pool!(db, "UPDATE", "jobs", &sql, |pool| sqlx::query_as::<_, crate::jobs::Job>(
            sqlx::AssertSqlSafe(sql.as_str())
        )
        .bind(now)
        .bind(now + lease)
        .bind(wanted)
        .fetch_all(pool)
        .await?);
        claimed.extend(jobs);
    }
    Ok(claimed)
}

/// Locks the audit chain head for the rest of `tx` and returns it. PostgreSQL locks the row
/// (`FOR UPDATE`), so appends from every instance queue behind each other; on SQLite the
/// transaction already holds the database's write lock (`BEGIN IMMEDIATE`).
pub async fn lock_audit_chain_head(tx: &mut crate::Tx) -> Result<crate::audit::ChainHead> {
    const POSTGRES: &str = "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE";
    const SQLITE: &str = "SELECT seq, hash FROM audit_chain_head WHERE id = 1";
    let sql = match tx.engine() {
        crate::Engine::Postgres => POSTGRES,
        crate::Engine::Sqlite => SQLITE,
    };
    let conn = crate::Conn::from(tx);
    Ok(crate::traced_conn!(conn, "SELECT", "audit_chain_head", sql, |e| sqlx::query_as::<_, crate::audit::ChainHead>(
        sql
    )
    .fetch_one(e)
    .await?))
}

/// Locks the active super admins' rows for the rest of `tx` and returns their ids, so two
/// concurrent demotions cannot both see another super admin left. SQLite's single writer
/// serialises them already.
pub async fn lock_active_super_admins(tx: &mut crate::Tx) -> Result<Vec<uuid::Uuid>> {
    const POSTGRES: &str = "SELECT id FROM users WHERE role = 'super_admin' AND is_active ORDER BY id FOR UPDATE";
    const SQLITE: &str = "SELECT id FROM users WHERE role = 'super_admin' AND is_active ORDER BY id";
    let sql = match tx.engine() {
        crate::Engine::Postgres => POSTGRES,
        crate::Engine::Sqlite => SQLITE,
    };
    let conn = crate::Conn::from(tx);
    let rows: Vec<(uuid::Uuid,)> =
        crate::traced_conn!(conn, "SELECT", "users", sql, |e| sqlx::query_as(sql).fetch_all(e).await?);
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Holds the account's row for the rest of `tx` and returns its subscription, so that two
/// concurrent changes compare and write one at a time. SQLite's single writer serialises them
/// already.
pub async fn lock_subscription(
    tx: &mut crate::Tx,
    user_id: uuid::Uuid,
) -> Result<Option<crate::billing::SubscriptionRow>> {
    const POSTGRES: &str = "SELECT subscription_plan, subscription_status, subscription_store, current_period_end,
        cancel_at_period_end FROM users WHERE id = $1 FOR UPDATE";
    let conn = crate::Conn::from(tx);
    match conn.engine() {
        crate::Engine::Postgres => Ok(crate::traced_conn!(conn, "SELECT", "users", POSTGRES, |e| sqlx::query_as::<
            _,
            crate::billing::SubscriptionRow,
        >(POSTGRES)
        .bind(user_id)
        .fetch_optional(e)
        .await?)),
        crate::Engine::Sqlite => crate::billing::find_subscription(conn, user_id).await,
    }
}
