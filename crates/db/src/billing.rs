//! An account's subscription, as the billing service reads and writes it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Result, Tx, time, traced_conn};

/// The subscription columns of `users`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRow {
    /// `free`, `pro`, `enterprise`.
    #[sqlx(rename = "subscription_plan")]
    pub plan: String,
    /// `inactive` (none), `trialing`, `active`, `past_due`, `canceled`, `incomplete`.
    #[sqlx(rename = "subscription_status")]
    pub status: String,
    /// `stripe`, `apple`, `google`; `None` when never subscribed.
    #[sqlx(rename = "subscription_store")]
    pub store: Option<String>,
    /// The end of the paid period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether the subscription ends at `current_period_end`.
    pub cancel_at_period_end: bool,
}

const COLUMNS: &str =
    "subscription_plan, subscription_status, subscription_store, current_period_end, cancel_at_period_end";

/// The account's subscription; `None` when there is no such account.
pub async fn find_subscription<'c>(conn: impl Into<Conn<'c>>, user_id: Uuid) -> Result<Option<SubscriptionRow>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let conn = conn.into();
    Ok(traced_conn!(conn, "SELECT", "users", &sql, |e| sqlx::query_as::<_, SubscriptionRow>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(user_id)
    .fetch_optional(e)
    .await?))
}

/// Writes the account's subscription; false when there is no such account. Callers hold the
/// row (see `dialect::lock_subscription`) so that they compare and write one state at a time.
pub async fn write_subscription(tx: &mut Tx, user_id: Uuid, row: &SubscriptionRow) -> Result<bool> {
    const SQL: &str = "UPDATE users SET subscription_plan = $2, subscription_status = $3, subscription_store = $4,
                current_period_end = $5, cancel_at_period_end = $6, updated_at = $7 WHERE id = $1";
    let conn = Conn::from(tx);
    let done = traced_conn!(conn, "UPDATE", "users", SQL, |e| sqlx::query(SQL)
        .bind(user_id)
        .bind(&row.plan)
        .bind(&row.status)
        .bind(row.store.as_deref())
        .bind(row.current_period_end)
        .bind(row.cancel_at_period_end)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// The account's Stripe customer id; `None` when it has none (or there is no such account).
pub async fn find_stripe_customer<'c>(conn: impl Into<Conn<'c>>, user_id: Uuid) -> Result<Option<String>> {
    const SQL: &str = "SELECT stripe_customer_id FROM users WHERE id = $1";
    let conn = conn.into();
    let found: Option<Option<String>> =
        traced_conn!(conn, "SELECT", "users", SQL, |e| sqlx::query_scalar(SQL).bind(user_id).fetch_optional(e).await?);
    Ok(found.flatten())
}

/// Records `customer_id` as the account's Stripe customer unless it already has one (one
/// customer per account, ever). True when this call set it; false when the account already
/// had a customer (re-read it with [`find_stripe_customer`]) or does not exist.
/// [`DbError::Conflict`](crate::DbError::Conflict) when another account holds `customer_id`.
pub async fn set_stripe_customer<'c>(conn: impl Into<Conn<'c>>, user_id: Uuid, customer_id: &str) -> Result<bool> {
    const SQL: &str =
        "UPDATE users SET stripe_customer_id = $2, updated_at = $3 WHERE id = $1 AND stripe_customer_id IS NULL";
    let conn = conn.into();
    let done = traced_conn!(conn, "UPDATE", "users", SQL, |e| sqlx::query(SQL)
        .bind(user_id)
        .bind(customer_id)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// The account whose Stripe customer is `customer_id`.
pub async fn find_user_by_stripe_customer<'c>(conn: impl Into<Conn<'c>>, customer_id: &str) -> Result<Option<Uuid>> {
    const SQL: &str = "SELECT id FROM users WHERE stripe_customer_id = $1";
    let conn = conn.into();
    Ok(traced_conn!(conn, "SELECT", "users", SQL, |e| sqlx::query_scalar(SQL)
        .bind(customer_id)
        .fetch_optional(e)
        .await?))
}

/// Forgets a Stripe customer that Stripe deleted; true when an account held it.
pub async fn clear_stripe_customer<'c>(conn: impl Into<Conn<'c>>, customer_id: &str) -> Result<bool> {
    const SQL: &str = "UPDATE users SET stripe_customer_id = NULL, updated_at = $2 WHERE stripe_customer_id = $1";
    let conn = conn.into();
    let done = traced_conn!(conn, "UPDATE", "users", SQL, |e| sqlx::query(SQL)
        .bind(customer_id)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}
