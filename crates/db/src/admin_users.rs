//! Accounts as admins see them: search, detail counts, and the changes an admin makes (name,
//! role, activation), each in the caller's transaction so the audit entry commits with it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::users::User;
use crate::{Conn, Db, Result, Tx, time, traced_conn, traced_pool};

use crate::users::COLUMNS;

/// The orders a listing offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserSort {
    /// Oldest first.
    CreatedAt,
    /// Newest first (the default).
    #[default]
    CreatedAtDesc,
    /// By email, A to Z.
    Email,
    /// By email, Z to A.
    EmailDesc,
    /// Least recently signed in first (never signed in last).
    LastLoginAt,
    /// Most recently signed in first (never signed in last).
    LastLoginAtDesc,
}

impl UserSort {
    fn order_by(self) -> &'static str {
        // Accounts without a value sort last either way, on both engines; `id` breaks ties.
        match self {
            UserSort::CreatedAt => "created_at, id",
            UserSort::CreatedAtDesc => "created_at DESC, id DESC",
            UserSort::Email => "(email IS NULL), email, id",
            UserSort::EmailDesc => "(email IS NULL), email DESC, id DESC",
            UserSort::LastLoginAt => "(last_login_at IS NULL), last_login_at, id",
            UserSort::LastLoginAtDesc => "(last_login_at IS NULL), last_login_at DESC, id DESC",
        }
    }
}

/// Which accounts a listing shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct UserFilter<'a> {
    /// Case-insensitive substring of the email (own or asserted) or the name.
    pub q: Option<&'a str>,
    /// Only this role.
    pub role: Option<&'a str>,
    /// Only active (or only deactivated) accounts.
    pub is_active: Option<bool>,
}

/// `%needle%` for `LIKE … ESCAPE '\'`, lowercased, with the wildcards in the needle escaped.
fn like_pattern(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// One page of accounts and how many match in all.
pub async fn list_users(
    db: &Db,
    filter: &UserFilter<'_>,
    sort: UserSort,
    skip: i64,
    limit: i64,
) -> Result<(Vec<User>, i64)> {
    const WHERE: &str = "($1 IS NULL OR LOWER(email) LIKE $1 ESCAPE '\\' OR LOWER(unverified_email) LIKE $1 ESCAPE '\\' \
            OR LOWER(full_name) LIKE $1 ESCAPE '\\') \
         AND ($2 IS NULL OR role = $2) AND ($3 IS NULL OR is_active = $3)";
    let page_sql = format!("SELECT {COLUMNS} FROM users WHERE {WHERE} ORDER BY {} LIMIT $4 OFFSET $5", sort.order_by());
    let count_sql = format!("SELECT COUNT(*) FROM users WHERE {WHERE}");
    let pattern = filter.q.map(like_pattern);
    let items = traced_pool!(db, "SELECT", "users", &page_sql, |pool| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(
        page_sql.as_str()
    ))
    .bind(pattern.as_deref())
    .bind(filter.role)
    .bind(filter.is_active)
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let (total,): (i64,) =
        traced_pool!(db, "SELECT", "users", &count_sql, |pool| sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str()))
            .bind(pattern.as_deref())
            .bind(filter.role)
            .bind(filter.is_active)
            .fetch_one(pool)
            .await?);
    Ok((items, total))
}

/// A linked external identity.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkedIdentity {
    /// `supabase`, `clerk`, `oidc`, …
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
}

/// The account's external identities, oldest first.
pub async fn list_identities(db: &Db, user_id: Uuid) -> Result<Vec<LinkedIdentity>> {
    const SQL: &str = "SELECT provider, subject, created_at FROM user_identities WHERE user_id = $1
         ORDER BY created_at, provider, subject";
    Ok(traced_pool!(db, "SELECT", "user_identities", SQL, |pool| sqlx::query_as::<_, LinkedIdentity>(SQL)
        .bind(user_id)
        .fetch_all(pool)
        .await?))
}

/// How many sign-in sessions of the account are live (neither revoked nor expired).
pub async fn count_live_sessions(db: &Db, user_id: Uuid) -> Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2";
    let (count,): (i64,) = traced_pool!(db, "SELECT", "sessions", SQL, |pool| sqlx::query_as(SQL)
        .bind(user_id)
        .bind(time::now())
        .fetch_one(pool)
        .await?);
    Ok(count)
}

/// The account with this id, read in the caller's transaction.
pub async fn find_user_in(tx: &mut Tx, id: Uuid) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let conn = Conn::from(tx);
    Ok(traced_conn!(conn, "SELECT", "users", &sql, |e| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(e)
        .await?))
}

/// What an admin changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AdminChange<'a> {
    /// New display name (`Some(None)` clears it).
    pub full_name: Option<Option<&'a str>>,
    /// New role.
    pub role: Option<&'a str>,
}

/// Applies an admin's change in the caller's transaction; `None` when there is no such account.
pub async fn update_user(tx: &mut Tx, id: Uuid, change: &AdminChange<'_>) -> Result<Option<User>> {
    let sql = format!(
        "UPDATE users SET full_name = CASE WHEN $2 THEN $3 ELSE full_name END, role = COALESCE($4, role), updated_at = $5
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    let conn = Conn::from(tx);
    Ok(traced_conn!(conn, "UPDATE", "users", &sql, |e| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(change.full_name.is_some())
        .bind(change.full_name.flatten())
        .bind(change.role)
        .bind(time::now())
        .fetch_optional(e)
        .await?))
}

/// Deactivates (revoking every sign-in session, so no refresh token works again) or
/// reactivates an account in the caller's transaction; `None` when there is no such account.
/// The change bumps `updated_at`, which the revocation feed turns into closed sockets.
pub async fn set_active(tx: &mut Tx, id: Uuid, active: bool) -> Result<Option<User>> {
    let sql = format!(
        "UPDATE users SET is_active = $2, deactivated_at = CASE WHEN $2 THEN NULL ELSE $3 END, updated_at = $3
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    const REVOKE: &str = "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
    let now = time::now();
    let user = {
        let conn = Conn::from(&mut *tx);
        traced_conn!(conn, "UPDATE", "users", &sql, |e| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id)
            .bind(active)
            .bind(now)
            .fetch_optional(e)
            .await?)
    };
    if user.is_some() && !active {
        let conn = Conn::from(&mut *tx);
        traced_conn!(conn, "UPDATE", "sessions", REVOKE, |e| sqlx::query(REVOKE)
            .bind(id)
            .bind(now)
            .execute(e)
            .await?
            .rows_affected());
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn wildcards_in_a_search_are_literal() {
        assert_eq!(like_pattern("Ada"), "%ada%");
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
