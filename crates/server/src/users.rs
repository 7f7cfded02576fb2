//! Accounts seen from the outside: the caller's own profile, external-provider accounts, and
//! role management.

use chrono::{DateTime, Utc};
use omnistack_db::identities;
use omnistack_db::users::{self, NewUser, ProfileChange, User};
use omnistack_db::{Db, DbError};

use crate::accounts::MAX_NAME_LEN;
use crate::auth::external::ExternalIdentity;
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};
use crate::state::AppState;

/// The longest avatar URL accepted, in characters as sent.
pub const MAX_AVATAR_URL_LEN: usize = 2048;

/// A change to the caller's own profile; `Some(None)` clears a field.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    /// New display name.
    pub full_name: Option<Option<String>>,
    /// New avatar URL (http or https).
    pub avatar_url: Option<Option<String>>,
}

/// Applies a profile change to the caller.
pub async fn update_profile(state: &AppState, caller: &CurrentUser, update: ProfileUpdate) -> Result<User> {
    let mut problems = Vec::new();
    problems
        .extend(update.full_name.as_ref().and_then(|n| FieldError::too_long("full_name", n.as_deref()?, MAX_NAME_LEN)));
    let full_name = update.full_name.map(|name| name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
    let avatar_too_long =
        update.avatar_url.as_ref().and_then(|u| FieldError::too_long("avatar_url", u.as_deref()?, MAX_AVATAR_URL_LEN));
    let avatar_url = update.avatar_url.map(|url| url.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()));
    if let Some(problem) = avatar_too_long {
        problems.push(problem);
    } else if let Some(Some(url)) = &avatar_url
        && let Err(message) = check_avatar_url(url)
    {
        problems.push(FieldError::new("avatar_url", message));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let change = ProfileChange {
        full_name: full_name.as_ref().map(|n| n.as_deref()),
        avatar_url: avatar_url.as_ref().map(|u| u.as_deref()),
        ..ProfileChange::default()
    };
    users::update_profile(&state.db, caller.user.id, &change)
        .await?
        .ok_or_else(|| Error::NotFound("account not found".into()))
}

/// Plans that are not paid for.
const FREE_PLAN: &str = "free";
/// Subscription statuses that grant the plan.
const ACTIVE_STATUSES: [&str; 2] = ["active", "trialing"];

/// Whether the account has an active (or trial) subscription to a paid plan.
pub fn is_premium(user: &User) -> bool {
    user.subscription_plan != FREE_PLAN && ACTIVE_STATUSES.contains(&user.subscription_status.as_str())
}

/// Whole days from the account's creation to `now` (0 on the first day, never negative).
pub fn days_since_joined(user: &User, now: DateTime<Utc>) -> i64 {
    (now - user.created_at).num_days().max(0)
}

/// Deactivates the caller's account, erases its personal data and revokes its sessions.
pub async fn delete_account(state: &AppState, caller: &CurrentUser) -> Result<()> {
    // Erasing the account (its email and password with it) is the user's own decision.
    caller.refuse_impersonation()?;
    users::deactivate_and_erase(&state.db, caller.user.id).await?;
    tracing::info!(user.id = %caller.user.id, "account deactivated and erased");
    Ok(())
}

/// The account of a token from an external identity provider: provisioned on first sight
/// (race-free), its profile re-synced from the claims when they change. A request whose
/// claims match the stored account writes nothing.
///
/// Only an email the provider vouches for becomes the account's (unique) email; any other is
/// kept as its unverified email, shown but never used to sign in, recover or link accounts
/// (docs/API.md, "External identity providers").
pub async fn authenticate_external(state: &AppState, token: &str, issuer: &str) -> Result<User> {
    if !state.external.handles(issuer) {
        return Err(Error::InvalidToken("token issuer is not accepted".into()));
    }
    let identity = state.external.verify(token).await?;
    let provider = identity.provider;
    let (user, provisioned) = sync_external_identity(&state.db, identity, true).await?;
    if provisioned {
        metrics::counter!("omnistack_logins_total", "provider" => provider).increment(1);
    }
    Ok(user)
}

/// The account of an identity the provider vouches for (a verified token, or a verified
/// webhook of the provider's user directory): provisioned on first sight (race-free), its
/// profile re-synced when the identity differs from it. A deactivated account is returned as
/// it is. `signed_in`: this is a sign-in (a created account records its first login). The
/// flag returned says whether the account was created now.
pub async fn sync_external_identity(db: &Db, mut identity: ExternalIdentity, signed_in: bool) -> Result<(User, bool)> {
    identity.email = identity.email.map(|email| email.to_lowercase());
    let stored = identities::find_user_by_identity(db, identity.provider, &identity.subject).await?;
    let user = match stored {
        Some(user) => user,
        None => {
            let (verified, unverified) = split_email(&identity);
            let new = NewUser {
                email: verified,
                unverified_email: unverified,
                full_name: identity.full_name.as_deref(),
                avatar_url: identity.avatar_url.as_deref(),
                role: identity.role.as_deref().unwrap_or(Role::User.as_str()),
                email_verified: verified.is_some(),
                hashed_password: None,
            };
            let user = identities::provision_user(db, identity.provider, &identity.subject, &new, signed_in).await?;
            tracing::info!(user.id = %user.id, auth.provider = identity.provider, "external account provisioned");
            metrics::counter!("omnistack_signups_total", "provider" => identity.provider).increment(1);
            return Ok((user, true));
        }
    };
    if !user.is_active {
        return Ok((user, false));
    }
    Ok((sync_external_profile(db, user, &identity).await?, false))
}

/// The identity's email as `(verified, unverified)`: at most one is set.
fn split_email(identity: &ExternalIdentity) -> (Option<&str>, Option<&str>) {
    let email = identity.email.as_deref();
    if identity.email_verified { (email, None) } else { (None, email) }
}

/// Applies claim values that differ from the stored account (a claim that is absent never
/// clears a stored value). A verified email replaces the account's email unless another
/// account holds it, in which case it is kept as the unverified one; an unverified email only
/// ever becomes the unverified one.
async fn sync_external_profile(db: &Db, user: User, identity: &ExternalIdentity) -> Result<User> {
    let changed = |claim: &Option<String>, stored: &Option<String>| claim.is_some() && claim != stored;
    let mut change = ProfileChange::default();
    if changed(&identity.full_name, &user.full_name) {
        change.full_name = Some(identity.full_name.as_deref());
    }
    if changed(&identity.avatar_url, &user.avatar_url) {
        change.avatar_url = Some(identity.avatar_url.as_deref());
    }
    let (verified, unverified) = split_email(identity);
    if verified.is_some() && (verified != user.email.as_deref() || !user.email_verified) {
        change.email = Some(verified);
    } else if unverified.is_some()
        && unverified != user.email.as_deref()
        && unverified != user.unverified_email.as_deref()
    {
        change.unverified_email = Some(unverified);
    }
    let mut user = user;
    if change.full_name.is_some()
        || change.avatar_url.is_some()
        || change.email.is_some()
        || change.unverified_email.is_some()
    {
        let updated = match users::update_profile(db, user.id, &change).await {
            Err(DbError::Conflict(_)) => {
                let unverified_email =
                    verified.filter(|email| Some(*email) != user.unverified_email.as_deref()).map(Some);
                let demoted = ProfileChange { email: None, unverified_email, ..change };
                let nothing_left =
                    demoted.full_name.is_none() && demoted.avatar_url.is_none() && demoted.unverified_email.is_none();
                if nothing_left { None } else { users::update_profile(db, user.id, &demoted).await? }
            }
            other => other?,
        };
        user = updated.unwrap_or(user);
    }
    if let Some(role) = identity.role.as_deref().filter(|role| *role != user.role) {
        users::set_role(db, user.id, role).await?;
        tracing::info!(user.id = %user.id, role, "role synced from AUTH_ROLE_CLAIM");
        user.role = role.to_owned();
    }
    Ok(user)
}

/// Sets the role of the account with this email (command line).
pub async fn set_role_by_email(db: &omnistack_db::Db, email: &str, role: Role) -> Result<User> {
    let email = email.trim().to_lowercase();
    let user = users::find_user_by_email(db, &email)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no account with email {email}")))?;
    users::set_role(db, user.id, role.as_str()).await?;
    Ok(User { role: role.as_str().to_owned(), ..user })
}

/// An avatar must be an absolute http(s) URL of sane length.
pub fn check_avatar_url(url: &str) -> Result<(), String> {
    let valid_shape = url.split_once("://").is_some_and(|(scheme, rest)| {
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            && !rest.is_empty()
            && !rest.starts_with('/')
            && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if url.chars().count() > MAX_AVATAR_URL_LEN {
        Err(format!("must be at most {MAX_AVATAR_URL_LEN} characters"))
    } else if !valid_shape {
        Err("must be an http or https URL".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avatar_urls_must_be_http_or_https() {
        assert!(check_avatar_url("https://cdn.example.com/a.png").is_ok());
        assert!(check_avatar_url("http://example.com").is_ok());
        for bad in [
            "javascript:alert(1)",
            "ftp://x/y",
            "https://",
            "//example.com/a.png",
            "https:///x",
            "data:image/png;base64,AA",
        ] {
            assert!(check_avatar_url(bad).is_err(), "{bad}");
        }
        assert!(check_avatar_url(&format!("https://e.com/{}", "a".repeat(2048))).is_err());
    }

    fn account(plan: &str, status: &str, created_at: DateTime<Utc>) -> User {
        User {
            id: uuid::Uuid::now_v7(),
            email: None,
            hashed_password: None,
            full_name: None,
            avatar_url: None,
            role: "user".into(),
            is_active: true,
            email_verified: false,
            subscription_plan: plan.into(),
            subscription_status: status.into(),
            last_login_at: None,
            login_count: 0,
            deactivated_at: None,
            created_at,
            updated_at: created_at,
            unverified_email: None,
        }
    }

    #[test]
    fn premium_is_an_active_or_trial_subscription_to_a_paid_plan() {
        let now = Utc::now();
        for (plan, status, premium) in [
            ("pro", "active", true),
            ("team", "trialing", true),
            ("pro", "canceled", false),
            ("pro", "past_due", false),
            ("pro", "inactive", false),
            ("free", "active", false),
            ("free", "inactive", false),
        ] {
            assert_eq!(is_premium(&account(plan, status, now)), premium, "{plan}/{status}");
        }
    }

    #[test]
    fn days_since_joined_counts_whole_days() {
        let now = Utc::now();
        let days = |ago: chrono::Duration| days_since_joined(&account("free", "inactive", now - ago), now);
        assert_eq!(days(chrono::Duration::zero()), 0);
        assert_eq!(days(chrono::Duration::hours(23)), 0);
        assert_eq!(days(chrono::Duration::hours(24)), 1);
        assert_eq!(days(chrono::Duration::days(400) + chrono::Duration::hours(5)), 400);
        assert_eq!(days(-chrono::Duration::hours(1)), 0, "clock skew never goes negative");
    }
}
