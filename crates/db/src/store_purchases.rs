//! In-app purchases (App Store, Google Play) and the one account each belongs to.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Result, Tx, time, traced_conn};

/// A row of `store_purchases`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StorePurchase {
    /// UUIDv7.
    pub id: Uuid,
    /// `apple` or `google`.
    pub store: String,
    /// Apple's `originalTransactionId`; the SHA-256 (hex) of a Google Play purchase token.
    pub purchase_id: String,
    /// The account it belongs to.
    pub user_id: Uuid,
    /// The store's product id last seen for it.
    pub product_id: String,
    /// The time of the newest state applied: Apple's `signedDate`; for Google, when the
    /// Publisher API was asked.
    pub last_signed_at: Option<DateTime<Utc>>,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A purchase to link.
#[derive(Clone, Copy, Debug)]
pub struct NewStorePurchase<'a> {
    /// See [`StorePurchase::store`].
    pub store: &'a str,
    /// See [`StorePurchase::purchase_id`].
    pub purchase_id: &'a str,
    /// See [`StorePurchase::user_id`].
    pub user_id: Uuid,
    /// See [`StorePurchase::product_id`].
    pub product_id: &'a str,
}

const COLUMNS: &str = "id, store, purchase_id, user_id, product_id, last_signed_at, created_at, updated_at";

/// Links a purchase to an account unless it is linked already. Returns the purchase's row and
/// whether this call created it; an existing row keeps its account (the caller compares
/// `user_id` to tell "already mine" from "someone else's").
pub async fn link_purchase(tx: &mut Tx, new: &NewStorePurchase<'_>) -> Result<(StorePurchase, bool)> {
    let insert = format!(
        "INSERT INTO store_purchases (id, store, purchase_id, user_id, product_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (store, purchase_id) DO NOTHING RETURNING {COLUMNS}"
    );
    let select = format!("SELECT {COLUMNS} FROM store_purchases WHERE store = $1 AND purchase_id = $2");
    let conn = Conn::from(&mut *tx);
    let inserted = traced_conn!(conn, "INSERT", "store_purchases", &insert, |e| sqlx::query_as::<_, StorePurchase>(
        sqlx::AssertSqlSafe(insert.as_str())
    )
    .bind(Uuid::now_v7())
    .bind(new.store)
    .bind(new.purchase_id)
    .bind(new.user_id)
    .bind(new.product_id)
    .bind(time::now())
    .fetch_optional(e)
    .await?);
    if let Some(row) = inserted {
        return Ok((row, true));
    }
    let conn = Conn::from(&mut *tx);
    let existing = traced_conn!(conn, "SELECT", "store_purchases", &select, |e| sqlx::query_as::<_, StorePurchase>(
        sqlx::AssertSqlSafe(select.as_str())
    )
    .bind(new.store)
    .bind(new.purchase_id)
    .fetch_one(e)
    .await?);
    Ok((existing, false))
}

/// The purchase `purchase_id` of `store`, and its account.
pub async fn find_purchase(conn: impl Into<Conn<'_>>, store: &str, purchase_id: &str) -> Result<Option<StorePurchase>> {
    let sql = format!("SELECT {COLUMNS} FROM store_purchases WHERE store = $1 AND purchase_id = $2");
    let conn = conn.into();
    Ok(traced_conn!(conn, "SELECT", "store_purchases", &sql, |e| sqlx::query_as::<_, StorePurchase>(
        sqlx::AssertSqlSafe(sql.as_str())
    )
    .bind(store)
    .bind(purchase_id)
    .fetch_optional(e)
    .await?))
}

/// Records that the state the store signed at `signed_at` (for `product_id`) is being applied,
/// unless a state signed at or after it was: true when this one is newer and may be applied,
/// false when it is stale or a repeat (the caller ignores it). One statement, so two deliveries
/// racing cannot both pass.
pub async fn advance_signed(tx: &mut Tx, id: Uuid, signed_at: DateTime<Utc>, product_id: &str) -> Result<bool> {
    const SQL: &str = "UPDATE store_purchases SET last_signed_at = $2, product_id = $3, updated_at = $4
         WHERE id = $1 AND (last_signed_at IS NULL OR last_signed_at < $2)";
    let conn = Conn::from(tx);
    let done = traced_conn!(conn, "UPDATE", "store_purchases", SQL, |e| sqlx::query(SQL)
        .bind(id)
        .bind(signed_at)
        .bind(product_id)
        .bind(time::now())
        .execute(e)
        .await?
        .rows_affected());
    Ok(done > 0)
}
