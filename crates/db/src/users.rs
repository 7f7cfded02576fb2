//! Accounts: creation, lookup, profile, roles, login bookkeeping and erasure.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Conn, Db, Result, inline, on_pool, time, traced_conn, traced_pool};

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// UUIDv7.
    pub id: Uuid,
    /// Normalised (trimmed, lowercase) and unique: the address the account signs in with and is
    /// recovered by. `None` for erased accounts and external accounts without a verified one.
    pub email: Option<String>,
    /// Argon2id PHC string; `None` for accounts that sign in elsewhere.
    pub hashed_password: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Avatar URL (http or https).
    pub avatar_url: Option<String>,
    /// `user`, `admin` or `super_admin`.
    pub role: String,
    /// False once deactivated.
    pub is_active: bool,
    /// Whether the email address was confirmed.
    pub email_verified: bool,
    /// Billing plan (`free` until billing says otherwise).
    pub subscription_plan: String,
    /// Billing status.
    pub subscription_status: String,
    /// Last sign-in or activity (maintained in batches, not per request).
    pub last_login_at: Option<DateTime<Utc>>,
    /// Number of sign-ins.
    pub login_count: i64,
    /// When the account was deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// An address an external provider asserted without verifying it: shown (marked
    /// unverified) but not unique, and never used to sign in, recover or link accounts.
    pub unverified_email: Option<String>,
}

impl User {
    /// The address to show: the account's own, else the unverified one a provider asserted.
    pub fn shown_email(&self) -> Option<&str> {
        self.email.as_deref().or(self.unverified_email.as_deref())
    }

    /// Whether the address [`shown_email`](Self::shown_email) returns is confirmed.
    pub fn shown_email_verified(&self) -> bool {
        self.email.is_some() && self.email_verified
    }

    /// The account from the first 16 columns of an inline read: [`COLUMNS`], in that order.
    pub(crate) fn from_inline(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
        Ok(User {
            id: row.get(0)?,
            email: row.get(1)?,
            hashed_password: row.get(2)?,
            full_name: row.get(3)?,
            avatar_url: row.get(4)?,
            role: row.get(5)?,
            is_active: row.get(6)?,
            email_verified: row.get(7)?,
            subscription_plan: row.get(8)?,
            subscription_status: row.get(9)?,
            last_login_at: inline::timestamp(row, 10)?,
            login_count: row.get(11)?,
            deactivated_at: inline::timestamp(row, 12)?,
            created_at: inline::required_timestamp(row, 13)?,
            updated_at: inline::required_timestamp(row, 14)?,
            unverified_email: row.get(15)?,
        })
    }
}

/// What a new account starts with.
#[derive(Clone, Debug, Default)]
pub struct NewUser<'a> {
    /// Normalised email.
    pub email: Option<&'a str>,
    /// Argon2id hash.
    pub hashed_password: Option<&'a str>,
    /// Display name.
    pub full_name: Option<&'a str>,
    /// Avatar URL.
    pub avatar_url: Option<&'a str>,
    /// Role name.
    pub role: &'a str,
    /// Whether the email is already confirmed (e.g. asserted by an identity provider).
    pub email_verified: bool,
    /// An address an external provider asserted without verifying it.
    pub unverified_email: Option<&'a str>,
}

pub(crate) const COLUMNS: &str = "id, email, hashed_password, full_name, avatar_url, role, is_active, email_verified, \
     subscription_plan, subscription_status, last_login_at, login_count, deactivated_at, created_at, updated_at, \
     unverified_email";

/// Inserts an account, alone or in the caller's transaction. A taken email is
/// [`crate::DbError::Conflict`].
pub async fn insert_user(conn: impl Into<Conn<'_>>, new: &NewUser<'_>) -> Result<User> {
    let conn = conn.into();
    let now = time::now();
    let sql = format!(
        "INSERT INTO users (id, email, hashed_password, full_name, avatar_url, role, email_verified, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
    );
    Ok(traced_conn!(conn, "INSERT", "users", &sql, |e| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(Uuid::now_v7())
        .bind(new.email)
        .bind(new.hashed_password)
        .bind(new.full_name)
        .bind(new.avatar_url)
        .bind(new.role)
        .bind(new.email_verified)
        .bind(now)
        .fetch_one(e)
        .await?))
}

/// The account with this id.
pub async fn find_user(db: &Db, id: Uuid) -> Result<Option<User>> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {COLUMNS} FROM users WHERE id = $1"));
    let sql: &'static str = &SQL;
    crate::observe::traced(db.engine(), "SELECT", "users", sql, async {
        // On the calling thread when it can be (SQLite), else on the pool.
        if let Some(found) = db.read_inline(sql, [id.as_bytes()], User::from_inline) {
            return Ok(found);
        }
        Ok(on_pool!(db, |pool| sqlx::query_as::<_, User>(sql).bind(id).fetch_optional(pool).await?))
    })
    .await
}

/// The account with this (normalised) email.
pub async fn find_user_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE email = $1");
    Ok(traced_pool!(db, "SELECT", "users", &sql, |pool| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(email)
        .fetch_optional(pool)
        .await?))
}

/// The account behind an access token, with whether its sign-in session is still live:
/// one read, no write.
pub async fn find_user_with_session(db: &Db, id: Uuid, session_id: Uuid) -> Result<Option<(User, bool)>> {
    // Built once: this runs on every authenticated request, and a `'static` statement is
    // neither formatted nor copied per call.
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "SELECT {COLUMNS}, (SELECT COUNT(*) FROM sessions s
                                WHERE s.id = $2 AND s.user_id = users.id AND s.revoked_at IS NULL) AS live_sessions
             FROM users WHERE id = $1"
        )
    });
    let sql: &'static str = &SQL;
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        user: User,
        live_sessions: i64,
    }
    let row = crate::observe::traced(db.engine(), "SELECT", "users", sql, async {
        // On the calling thread when it can be (SQLite), else on the pool.
        let inline = {
            let params: &[(&str, &dyn rusqlite::ToSql)] = &[("$1", &id.as_bytes()), ("$2", &session_id.as_bytes())];
            db.read_inline(sql, params, |row| Ok(Row { user: User::from_inline(row)?, live_sessions: row.get(16)? }))
        };
        if let Some(found) = inline {
            return Ok(found);
        }
        Ok(on_pool!(db, |pool| sqlx::query_as::<_, Row>(sql).bind(id).bind(session_id).fetch_optional(pool).await?))
    })
    .await?;
    Ok(row.map(|r| (r.user, r.live_sessions > 0)))
}

/// Profile fields to change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct ProfileChange<'a> {
    /// New display name.
    pub full_name: Option<Option<&'a str>>,
    /// New avatar URL.
    pub avatar_url: Option<Option<&'a str>>,
    /// New verified email (external providers re-sync it): `Some(Some(_))` also marks it
    /// verified and clears the unverified one.
    pub email: Option<Option<&'a str>>,
    /// New unverified email asserted by an external provider.
    pub unverified_email: Option<Option<&'a str>>,
}

/// Applies a profile change and returns the updated account.
pub async fn update_profile(db: &Db, id: Uuid, change: &ProfileChange<'_>) -> Result<Option<User>> {
    let sql = format!(
        "UPDATE users SET
            full_name = CASE WHEN $2 THEN $3 ELSE full_name END,
            avatar_url = CASE WHEN $4 THEN $5 ELSE avatar_url END,
            email = CASE WHEN $6 THEN $7 ELSE email END,
            email_verified = CASE WHEN $6 THEN $8 ELSE email_verified END,
            unverified_email = CASE WHEN $6 AND $8 THEN NULL WHEN $9 THEN $10 ELSE unverified_email END,
            updated_at = $11
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(traced_pool!(db, "UPDATE", "users", &sql, |pool| sqlx::query_as::<_, User>(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(id)
        .bind(change.full_name.is_some())
        .bind(change.full_name.flatten())
        .bind(change.avatar_url.is_some())
        .bind(change.avatar_url.flatten())
        .bind(change.email.is_some())
        .bind(change.email.flatten())
        .bind(change.email.flatten().is_some())
        .bind(change.unverified_email.is_some())
        .bind(change.unverified_email.flatten())
        .bind(time::now())
        .fetch_optional(pool)
        .await?))
}

/// Sets an account's role; false when there is no such account.
pub async fn set_role(db: &Db, id: Uuid, role: &str) -> Result<bool> {
    const SQL: &str = "UPDATE users SET role = $2, updated_at = $3 WHERE id = $1";
    let done = traced_pool!(db, "UPDATE", "users", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(role)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// Sets an account's billing plan and status (what a billing integration reports); false
/// when there is no such account.
pub async fn set_subscription(db: &Db, id: Uuid, plan: &str, status: &str) -> Result<bool> {
    const SQL: &str =
        "UPDATE users SET subscription_plan = $2, subscription_status = $3, updated_at = $4 WHERE id = $1";
    let done = traced_pool!(db, "UPDATE", "users", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(plan)
        .bind(status)
        .bind(time::now())
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done > 0)
}

/// Records a password sign-in, alone or in the caller's transaction.
pub async fn record_login(conn: impl Into<Conn<'_>>, id: Uuid, at: DateTime<Utc>) -> Result<()> {
    const SQL: &str = "UPDATE users SET last_login_at = $2, login_count = login_count + 1 WHERE id = $1";
    let conn = conn.into();
    traced_conn!(conn, "UPDATE", "users", SQL, |e| sqlx::query(SQL)
        .bind(id)
        .bind(at)
        .execute(e)
        .await?
        .rows_affected());
    Ok(())
}

/// Records activity seen at `at`; it counts as a new sign-in when the previous one is older
/// than `visit_starts_before`.
pub async fn record_activity(db: &Db, id: Uuid, at: DateTime<Utc>, visit_starts_before: DateTime<Utc>) -> Result<()> {
    const SQL: &str = "UPDATE users SET
            login_count = login_count + CASE WHEN last_login_at IS NULL OR last_login_at < $3 THEN 1 ELSE 0 END,
            last_login_at = $2
         WHERE id = $1 AND (last_login_at IS NULL OR last_login_at < $2)";
    traced_pool!(db, "UPDATE", "users", SQL, |pool| sqlx::query(SQL)
        .bind(id)
        .bind(at)
        .bind(visit_starts_before)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(())
}

/// Deactivates an account and erases its personal data, sessions and pending tokens, in one
/// transaction. Links to external identities stay (they hold no personal data), so the
/// provider's still-valid tokens keep landing on the deactivated account instead of
/// provisioning a new one.
pub async fn deactivate_and_erase(db: &Db, id: Uuid) -> Result<bool> {
    const DEACTIVATE: &str = "UPDATE users SET is_active = FALSE, email = NULL, hashed_password = NULL,
            full_name = NULL, avatar_url = NULL, email_verified = FALSE, unverified_email = NULL, deactivated_at = $2, updated_at = $2
         WHERE id = $1";
    const REVOKE: &str = "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
    const FORGET_TOKENS: &str = "DELETE FROM action_tokens WHERE user_id = $1";
    let now = time::now();
    let statements = [DEACTIVATE, REVOKE, FORGET_TOKENS].join(";\n");
    let done = traced_pool!(db, "UPDATE", "users", &statements, |pool| {
        let mut tx = pool.begin().await?;
        let done = sqlx::query(DEACTIVATE).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
        sqlx::query(REVOKE).bind(id).bind(now).execute(&mut *tx).await?;
        sqlx::query(FORGET_TOKENS).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        done
    });
    Ok(done > 0)
}

/// Account counts for metrics: `(active, deactivated)`.
pub async fn count_by_status(db: &Db) -> Result<(i64, i64)> {
    const SQL: &str = "SELECT COALESCE(SUM(CASE WHEN is_active THEN 1 ELSE 0 END), 0),
                              COALESCE(SUM(CASE WHEN is_active THEN 0 ELSE 1 END), 0)
                       FROM users";
    Ok(traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as::<_, (i64, i64)>(SQL).fetch_one(pool).await?))
}

/// Distinct active accounts signed in or seen since `since` (activity is written in batches,
/// so the figure trails by at most a minute).
pub async fn count_seen_since(db: &Db, since: DateTime<Utc>) -> Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE is_active AND last_login_at >= $1";
    Ok(traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as::<_, (i64,)>(SQL)
        .bind(since)
        .fetch_one(pool)
        .await?
        .0))
}

/// How many accounts were created since `since`.
pub async fn count_created_since(db: &Db, since: DateTime<Utc>) -> Result<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE created_at >= $1";
    let (count,): (i64,) =
        traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as(SQL).bind(since).fetch_one(pool).await?);
    Ok(count)
}

/// The emails of every active super admin that has one.
pub async fn list_super_admin_emails(db: &Db) -> Result<Vec<String>> {
    const SQL: &str =
        "SELECT email FROM users WHERE role = 'super_admin' AND is_active AND email IS NOT NULL ORDER BY created_at";
    let rows: Vec<(String,)> =
        traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows.into_iter().map(|(email,)| email).collect())
}

/// Account counts for the admin dashboard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct UserCounts {
    /// Every account.
    pub total: i64,
    /// Active accounts.
    pub active: i64,
    /// Deactivated accounts.
    pub inactive: i64,
    /// Accounts with the `admin` or `super_admin` role.
    pub admins: i64,
    /// Accounts created in the 7 days before `now`.
    pub new_7d: i64,
    /// Accounts created in the 30 days before `now`.
    pub new_30d: i64,
}

/// [`UserCounts`] as of `now`, in one pass over the table.
pub async fn count_for_dashboard(db: &Db, now: DateTime<Utc>) -> Result<UserCounts> {
    const SQL: &str = "SELECT COUNT(*) AS total,
            COALESCE(SUM(CASE WHEN is_active THEN 1 ELSE 0 END), 0) AS active,
            COALESCE(SUM(CASE WHEN is_active THEN 0 ELSE 1 END), 0) AS inactive,
            COALESCE(SUM(CASE WHEN role IN ('admin', 'super_admin') THEN 1 ELSE 0 END), 0) AS admins,
            COALESCE(SUM(CASE WHEN created_at >= $1 THEN 1 ELSE 0 END), 0) AS new_7d,
            COALESCE(SUM(CASE WHEN created_at >= $2 THEN 1 ELSE 0 END), 0) AS new_30d
         FROM users";
    Ok(traced_pool!(db, "SELECT", "users", SQL, |pool| sqlx::query_as::<_, UserCounts>(SQL)
        .bind(now - chrono::Duration::days(7))
        .bind(now - chrono::Duration::days(30))
        .fetch_one(pool)
        .await?))
}

/// The most distinct plans or statuses [`count_by_subscription`] reports (they come from
/// billing, a small set; the bound keeps the answer small whatever is stored).
pub const MAX_SUBSCRIPTION_GROUPS: i64 = 50;

/// Accounts per subscription plan and per subscription status: `(by_plan, by_status)`, each
/// at most [`MAX_SUBSCRIPTION_GROUPS`] of the largest groups.
pub async fn count_by_subscription(db: &Db) -> Result<(Vec<(String, i64)>, Vec<(String, i64)>)> {
    const BY_PLAN: &str = "SELECT subscription_plan, COUNT(*) AS n FROM users GROUP BY subscription_plan
         ORDER BY n DESC, subscription_plan LIMIT $1";
    const BY_STATUS: &str = "SELECT subscription_status, COUNT(*) AS n FROM users GROUP BY subscription_status
         ORDER BY n DESC, subscription_status LIMIT $1";
    let by_plan = traced_pool!(db, "SELECT", "users", BY_PLAN, |pool| sqlx::query_as::<_, (String, i64)>(BY_PLAN)
        .bind(MAX_SUBSCRIPTION_GROUPS)
        .fetch_all(pool)
        .await?);
    let by_status =
        traced_pool!(db, "SELECT", "users", BY_STATUS, |pool| sqlx::query_as::<_, (String, i64)>(BY_STATUS)
            .bind(MAX_SUBSCRIPTION_GROUPS)
            .fetch_all(pool)
            .await?);
    Ok((by_plan, by_status))
}
