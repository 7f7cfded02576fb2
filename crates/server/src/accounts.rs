//! Own accounts: registration, sign-in, refresh-token rotation, sign-out, password reset and
//! email verification.

mod login_limit;

use chrono::Utc;
use omnistack_db::Tx;
use omnistack_db::action_tokens::{self, Purpose};
use omnistack_db::sessions::{self, Rotation, SessionOrigin};
use omnistack_db::users::{self, NewUser, User};
use uuid::Uuid;

use crate::admin::audit::{self, Actor, AuditContext, AuditEntry};
use crate::auth::{Role, password, tokens};
use crate::error::{Error, FieldError, Result};
use crate::jobs::kinds::enqueue_email;
use crate::mail::{MailMessage, PasswordReset, VerifyEmail, Welcome};
use crate::rate_limit::LimitClass;
use crate::state::AppState;
use login_limit::LoginAttempt;

/// How long a password-reset link stays valid.
const RESET_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(1);
/// How long an email-verification link stays valid.
const VERIFY_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(48);
/// The longest email address accepted (RFC 5321), in characters as sent.
pub const MAX_EMAIL_LEN: usize = 254;
/// The longest display name accepted, in characters as sent.
pub const MAX_NAME_LEN: usize = 255;
/// The longest opaque token accepted (refresh, reset, verification); issued ones have 43.
pub const MAX_TOKEN_LEN: usize = 512;

/// A signed-in session as handed to the client.
#[derive(Debug)]
pub struct SignedIn {
    /// The account.
    pub user: User,
    /// Short-lived JWT.
    pub access_token: String,
    /// Opaque, single-use refresh token.
    pub refresh_token: String,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
}

/// Registration input.
#[derive(Debug)]
pub struct Registration {
    /// Email (normalised here).
    pub email: String,
    /// Password, 8..=128 characters.
    pub password: String,
    /// Optional display name.
    pub full_name: Option<String>,
}

/// Creates an account, enqueues its verification and welcome emails and signs it in.
pub async fn register(state: &AppState, input: Registration, origin: &SessionOrigin<'_>) -> Result<SignedIn> {
    let mut problems = Vec::new();
    let email = normalize_email(&input.email).map_err(|m| problems.push(FieldError::new("email", m))).ok();
    if let Err(message) = check_password(&input.password) {
        problems.push(FieldError::new("password", message));
    }
    problems.extend(input.full_name.as_deref().and_then(|n| FieldError::too_long("full_name", n, MAX_NAME_LEN)));
    let full_name = input.full_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let (Some(email), true) = (email, problems.is_empty()) else { return Err(Error::Validation(problems)) };
    limit_by_email(state, &email).await?;
    // A taken email is refused before the (expensive) hash; the insert still settles races.
    if users::find_user_by_email(&state.db, &email).await?.is_some() {
        return Err(email_taken());
    }

    let hashed = password::hash(input.password).await?;
    let new = NewUser {
        email: Some(&email),
        hashed_password: Some(&hashed),
        full_name,
        role: Role::User.as_str(),
        ..NewUser::default()
    };
    // The account, its verification token and its emails commit together: no account without
    // its mail, no mail for an account that was rolled back.
    let mut tx = state.db.begin().await?;
    let user = users::insert_user(&mut tx, &new).await.map_err(|err| match err {
        omnistack_db::DbError::Conflict(_) => email_taken(),
        other => other.into(),
    })?;
    enqueue_verification(state, &mut tx, &user).await?;
    let welcome = Welcome { name: user.full_name.clone().unwrap_or_default() };
    enqueue_email(&state.jobs, &mut tx, &MailMessage::new(&email, &welcome), Some(format!("welcome:{}", user.id)))
        .await?;
    tx.commit().await?;
    state.jobs.wake();
    metrics::counter!("omnistack_signups_total", "provider" => "password").increment(1);
    start_session(state, user, origin).await
}

fn email_taken() -> Error {
    Error::Conflict("an account with this email already exists".into())
}

/// Signs in with email and password. A wrong email and a wrong password answer alike, in the
/// same time. Failures are limited per (email, client IP) and, higher, per email
/// (`login_limit`), which also bounds the `auth.login_failed` audit entries they leave.
pub async fn login(state: &AppState, email: &str, password: String, origin: &SessionOrigin<'_>) -> Result<SignedIn> {
    check_lengths(&[("email", email, MAX_EMAIL_LEN), ("password", &password, *password::LENGTH.end())])?;
    let email = email.trim().to_lowercase();
    let attempt = LoginAttempt::start(&state.limiter, &email, origin.ip_address.unwrap_or_default()).await?;
    let user = users::find_user_by_email(&state.db, &email).await?;
    let stored = user.as_ref().and_then(|u| u.hashed_password.clone());
    let context = AuditContext::new(origin.ip_address, origin.user_agent);
    if !password::verify(password, stored).await {
        metrics::counter!("omnistack_auth_failures_total", "reason" => "invalid_credentials", "provider" => "password")
            .increment(1);
        record_login_failure(state, &context, &email, user.as_ref(), "invalid_credentials").await?;
        return Err(Error::Authentication("incorrect email or password".into()));
    }
    attempt.succeeded().await;
    let Some(user) = user else { return Err(Error::Authentication("incorrect email or password".into())) };
    if !user.is_active {
        record_login_failure(state, &context, &email, Some(&user), "deactivated").await?;
        return Err(Error::Authorization("this account is deactivated".into()));
    }
    let mut tx = state.db.begin().await?;
    users::record_login(&mut tx, user.id, omnistack_db::time::now()).await?;
    let entry = AuditEntry::new(
        Actor::user(&user),
        &context,
        "auth.login",
        "user",
        Some(user.id.to_string()),
        serde_json::json!({"provider": "password"}),
    );
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    metrics::counter!("omnistack_logins_total", "provider" => "password").increment(1);
    start_session(state, user, origin).await
}

/// `auth.login_failed`: nothing else changes, so it has a transaction of its own. The
/// attempt was already counted by the login-failure limits, which bound how many entries a
/// client can cause.
async fn record_login_failure(
    state: &AppState,
    context: &AuditContext,
    email: &str,
    user: Option<&User>,
    reason: &str,
) -> Result<()> {
    let details = serde_json::json!({"email": email, "reason": reason});
    let entry = AuditEntry::new(
        Actor::anonymous(),
        context,
        "auth.login_failed",
        "user",
        user.map(|u| u.id.to_string()),
        details,
    );
    audit::record_alone(&state.db, entry).await
}

/// Exchanges a refresh token for a new pair. Presenting a used token revokes its session and
/// is audited (`auth.refresh_reuse_detected`) in the revocation's transaction.
pub async fn refresh(state: &AppState, refresh_token: &str, context: &AuditContext) -> Result<SignedIn> {
    check_lengths(&[("refresh_token", refresh_token, MAX_TOKEN_LEN)])?;
    let (next_token, next_hash) = tokens::new_opaque_token()?;
    let presented = tokens::hash_opaque_token(refresh_token);
    let mut tx = state.db.begin().await?;
    let rotation = sessions::rotate_refresh_token(&mut tx, &presented, &next_hash).await?;
    match &rotation {
        Rotation::Rotated { .. } => tx.commit().await?,
        Rotation::Reused => {
            let entry = AuditEntry::new(
                Actor::anonymous(),
                context,
                "auth.refresh_reuse_detected",
                "session",
                None,
                serde_json::json!({"outcome": "session_revoked"}),
            );
            audit::record(&mut tx, entry).await?;
            tx.commit().await?;
        }
        Rotation::Invalid => drop(tx),
    }
    match rotation {
        Rotation::Rotated { user_id, session_id } => {
            let user = users::find_user(&state.db, user_id)
                .await?
                .filter(|u| u.is_active)
                .ok_or_else(|| Error::InvalidToken("refresh token is invalid".into()))?;
            let access_token = state.tokens.issue(user.id, session_id)?;
            Ok(SignedIn { user, access_token, refresh_token: next_token, expires_in: state.tokens.ttl_seconds() })
        }
        Rotation::Reused => {
            tracing::warn!("refresh token reused: session revoked");
            Err(Error::InvalidToken("refresh token was already used; the session has been revoked".into()))
        }
        Rotation::Invalid => Err(Error::InvalidToken("refresh token is invalid or expired".into())),
    }
}

/// Revokes the session of a refresh token. Unknown tokens are ignored (sign-out is idempotent).
pub async fn logout(state: &AppState, refresh_token: &str) -> Result<()> {
    check_lengths(&[("refresh_token", refresh_token, MAX_TOKEN_LEN)])?;
    sessions::revoke_session_by_token(&state.db, &tokens::hash_opaque_token(refresh_token)).await?;
    Ok(())
}

/// Sends a password-reset link when an active account signs in with this email and a
/// password; answers the same either way. An account without a password (provisioned by an
/// external provider) gets no link, and an unverified email an external provider asserted is
/// never looked up here (it is not the account's `email`).
pub async fn forgot_password(state: &AppState, email: &str) -> Result<()> {
    check_lengths(&[("email", email, MAX_EMAIL_LEN)])?;
    let email = email.trim().to_lowercase();
    limit_by_email(state, &email).await?;
    let account = users::find_user_by_email(&state.db, &email).await?;
    let Some(user) = account.filter(|u| u.is_active && u.hashed_password.is_some()) else {
        return Ok(());
    };
    let (token, hash) = tokens::new_opaque_token()?;
    let mut tx = state.db.begin().await?;
    action_tokens::create_action_token(&mut tx, user.id, Purpose::ResetPassword, &hash, Utc::now() + RESET_TOKEN_TTL)
        .await?;
    let link = format!("{}/reset-password?token={token}", state.config.accounts.frontend_url);
    let reset = PasswordReset { link, valid_for: Some(in_words(RESET_TOKEN_TTL)) };
    enqueue_email(&state.jobs, &mut tx, &MailMessage::new(email, &reset), None).await?;
    tx.commit().await?;
    state.jobs.wake();
    Ok(())
}

/// Sets a new password from a reset token and revokes every session and every other reset
/// token of the account, audited (`auth.password_reset`) in the same transaction. The token is
/// looked up before the (expensive) hash, so a bogus one costs one indexed read; it is used up
/// atomically with the change, so two requests with one token cannot both succeed.
pub async fn reset_password(state: &AppState, token: &str, new_password: String, context: &AuditContext) -> Result<()> {
    check_lengths(&[("token", token, MAX_TOKEN_LEN)])?;
    let invalid = || Error::BadRequest("reset token is invalid, used or expired".into());
    check_password(&new_password).map_err(|m| Error::Validation(vec![FieldError::new("new_password", m)]))?;
    let token_hash = tokens::hash_opaque_token(token);
    action_tokens::find_live_token(&state.db, Purpose::ResetPassword, &token_hash).await?.ok_or_else(invalid)?;
    let hashed = password::hash(new_password).await?;
    let mut tx = state.db.begin().await?;
    let user_id = action_tokens::reset_password(&mut tx, &token_hash, &hashed).await?.ok_or_else(invalid)?;
    let user = users::find_user(&state.db, user_id).await?;
    let actor = user.as_ref().map_or_else(|| Actor { id: Some(user_id), ..Actor::default() }, Actor::user);
    let entry = AuditEntry::new(
        actor,
        context,
        "auth.password_reset",
        "user",
        Some(user_id.to_string()),
        serde_json::json!({}),
    );
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// Confirms an email address from a verification token.
pub async fn verify_email(state: &AppState, token: &str) -> Result<()> {
    check_lengths(&[("token", token, MAX_TOKEN_LEN)])?;
    action_tokens::verify_email(&state.db, &tokens::hash_opaque_token(token))
        .await?
        .ok_or_else(|| Error::BadRequest("verification token is invalid, used or expired".into()))?;
    Ok(())
}

/// A 422 naming every `(field, value, max)` whose value is longer than its maximum.
fn check_lengths(inputs: &[(&str, &str, usize)]) -> Result<()> {
    let problems: Vec<FieldError> =
        inputs.iter().filter_map(|(field, value, max)| FieldError::too_long(field, value, *max)).collect();
    if problems.is_empty() { Ok(()) } else { Err(Error::Validation(problems)) }
}

/// The `auth` class per email: guessing one account's password from many addresses is as
/// limited as guessing from one.
async fn limit_by_email(state: &AppState, email: &str) -> Result<()> {
    let decision = state.limiter.check(LimitClass::Auth, &format!("email:{email}")).await;
    if decision.allowed { Ok(()) } else { Err(Error::RateLimited(decision)) }
}

async fn start_session(state: &AppState, user: User, origin: &SessionOrigin<'_>) -> Result<SignedIn> {
    let (refresh_token, refresh_hash) = tokens::new_opaque_token()?;
    let expires_at = Utc::now() + state.config.accounts.refresh_token_ttl;
    let session_id = sessions::create_session(&state.db, user.id, &refresh_hash, expires_at, origin).await?;
    let access_token = state.tokens.issue(user.id, session_id)?;
    Ok(SignedIn { user, access_token, refresh_token, expires_in: state.tokens.ttl_seconds() })
}

/// Creates a verification token and enqueues its email in the caller's transaction.
async fn enqueue_verification(state: &AppState, tx: &mut Tx, user: &User) -> Result<()> {
    let Some(email) = user.email.clone() else { return Ok(()) };
    let (token, hash) = tokens::new_opaque_token()?;
    action_tokens::create_action_token(&mut *tx, user.id, Purpose::VerifyEmail, &hash, Utc::now() + VERIFY_TOKEN_TTL)
        .await?;
    let link = format!("{}/verify-email?token={token}", state.config.accounts.frontend_url);
    let verify = VerifyEmail { link, valid_for: Some(in_words(VERIFY_TOKEN_TTL)) };
    enqueue_email(&state.jobs, tx, &MailMessage::new(email, &verify), None).await
}

/// A token lifetime as an email states it ("1 hour", "48 hours").
fn in_words(ttl: chrono::Duration) -> String {
    match ttl.num_hours() {
        1 => "1 hour".to_owned(),
        hours => format!("{hours} hours"),
    }
}

/// Trims and lowercases an email address and checks its shape (the `pattern` of the `email`
/// fields in `api::v1::auth` says the same).
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let valid = raw.chars().count() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid { Ok(email) } else { Err("must be a valid email address".into()) }
}

fn check_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if password::LENGTH.contains(&length) {
        Ok(())
    } else {
        Err(format!("must be {} to {} characters", password::LENGTH.start(), password::LENGTH.end()))
    }
}

/// Creates an account from the command line or bootstrap settings (email already verified).
pub async fn create_account(db: &omnistack_db::Db, email: &str, password: &str, role: Role) -> Result<User> {
    let email = normalize_email(email).map_err(|m| Error::Validation(vec![FieldError::new("email", m)]))?;
    check_password(password).map_err(|m| Error::Validation(vec![FieldError::new("password", m)]))?;
    let hashed = password::hash(password.to_owned()).await?;
    let new = NewUser {
        email: Some(&email),
        hashed_password: Some(&hashed),
        role: role.as_str(),
        email_verified: true,
        ..NewUser::default()
    };
    users::insert_user(db, &new).await.map_err(|err| match err {
        omnistack_db::DbError::Conflict(_) => Error::Conflict(format!("an account with email {email} already exists")),
        other => other.into(),
    })
}

/// Creates the `ADMIN_EMAIL` super admin at start when it does not exist yet.
pub async fn ensure_bootstrap_admin(
    db: &omnistack_db::Db,
    email: &str,
    password: &str,
) -> anyhow::Result<Option<Uuid>> {
    if users::find_user_by_email(db, &email.trim().to_lowercase()).await?.is_some() {
        return Ok(None);
    }
    match create_account(db, email, password, Role::SuperAdmin).await {
        Ok(user) => Ok(Some(user.id)),
        Err(Error::Conflict(_)) => Ok(None),
        Err(err) => Err(anyhow::anyhow!("ADMIN_EMAIL/ADMIN_PASSWORD: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lowercased_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.COM "), Ok("ada@example.com".into()));
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a da@example.com", "a@b@c.com", "ada@.com"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn passwords_must_be_8_to_128_characters() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password(&"x".repeat(128)).is_ok());
        assert!(check_password(&"x".repeat(129)).is_err());
    }
}
