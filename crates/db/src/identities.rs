//! Accounts at external identity providers, keyed by provider + subject.

use uuid::Uuid;

use crate::users::{self, NewUser, User};
use crate::{Db, DbError, Result, time, traced_pool};

/// The account linked to `provider` + `subject`: one read.
pub async fn find_user_by_identity(db: &Db, provider: &str, subject: &str) -> Result<Option<User>> {
    const SQL: &str = "SELECT u.* FROM users u JOIN user_identities i ON i.user_id = u.id
         WHERE i.provider = $1 AND i.subject = $2";
    let user = traced_pool!(db, "SELECT", "user_identities", SQL, |pool| sqlx::query_as::<_, User>(SQL)
        .bind(provider)
        .bind(subject)
        .fetch_optional(pool)
        .await?);
    Ok(user)
}

/// Creates the account for a first-seen external identity, race-free: when two requests
/// provision the same identity at once, both get the one account that won.
///
/// An email already used by another account is not attached (accounts are never linked by
/// email alone): the account keeps it only as its unverified email. `signed_in`: the account
/// is created by a sign-in (its first login is recorded), not by the provider's directory (a
/// webhook).
pub async fn provision_user(
    db: &Db,
    provider: &str,
    subject: &str,
    new: &NewUser<'_>,
    signed_in: bool,
) -> Result<User> {
    if let Some(user) = find_user_by_identity(db, provider, subject).await? {
        return Ok(user);
    }
    let email_taken = match new.email {
        Some(email) => users::find_user_by_email(db, email).await?.is_some(),
        None => false,
    };
    let new = if email_taken { without_email(new) } else { new.clone() };
    match try_provision(db, provider, subject, &new, signed_in).await {
        Ok(Some(user)) => Ok(user),
        // Lost the race for this identity: the winner's account is committed by now.
        Ok(None) => {
            find_user_by_identity(db, provider, subject).await?.ok_or_else(|| DbError::Other(sqlx::Error::RowNotFound))
        }
        // Lost a race for the email: create the account without it.
        Err(DbError::Conflict(_)) if new.email.is_some() => {
            Box::pin(provision_user(db, provider, subject, &without_email(&new), signed_in)).await
        }
        Err(err) => Err(err),
    }
}

/// `new` with its email demoted to the unverified one.
fn without_email<'a>(new: &NewUser<'a>) -> NewUser<'a> {
    NewUser { email: None, email_verified: false, unverified_email: new.email.or(new.unverified_email), ..new.clone() }
}

async fn try_provision(
    db: &Db,
    provider: &str,
    subject: &str,
    new: &NewUser<'_>,
    signed_in: bool,
) -> Result<Option<User>> {
    const USER: &str = "INSERT INTO users (id, email, full_name, avatar_url, role, email_verified, unverified_email,
                            created_at, updated_at, last_login_at, login_count)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)
         RETURNING *";
    const LINK: &str = "INSERT INTO user_identities (provider, subject, user_id, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (provider, subject) DO NOTHING";
    let now = time::now();
    let id = Uuid::now_v7();
    let statements = [USER, LINK].join(";\n");
    let user = traced_pool!(db, "INSERT", "user_identities", &statements, |pool| {
        let mut tx = pool.begin().await?;
        let user = sqlx::query_as::<_, User>(USER)
            .bind(id)
            .bind(new.email)
            .bind(new.full_name)
            .bind(new.avatar_url)
            .bind(new.role)
            .bind(new.email_verified)
            .bind(new.unverified_email)
            .bind(now)
            .bind(signed_in.then_some(now))
            .bind(i64::from(signed_in))
            .fetch_one(&mut *tx)
            .await?;
        let linked =
            sqlx::query(LINK).bind(provider).bind(subject).bind(id).bind(now).execute(&mut *tx).await?.rows_affected();
        if linked == 1 {
            tx.commit().await?;
            Some(user)
        } else {
            tx.rollback().await?;
            None
        }
    });
    Ok(user)
}
