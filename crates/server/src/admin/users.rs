//! Accounts as admins manage them: search, inspect, edit (name, role, activation),
//! deactivate and reactivate. The rules, checked against the caller here:
//!
//! - nobody changes their own role or deactivates themselves (403);
//! - only a super_admin grants or removes `admin`/`super_admin`, or edits an admin (403);
//! - the last active super_admin cannot be demoted or deactivated (409);
//! - an unknown role is 422; a request that would change nothing is refused, never ignored.
//!
//! Deactivation revokes every sign-in session (no refresh token works again); the guard loads
//! the account on every request, so its access tokens (own or external) are refused at once;
//! the revocation feed closes its sockets with 4003.

use omnistack_db::admin_users::{self, AdminChange, LinkedIdentity, UserFilter, UserSort};
use omnistack_db::users::User;
use omnistack_db::{Db, Tx, dialect};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditContext, AuditEntry};
use crate::accounts::MAX_NAME_LEN;
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};

/// The most accounts one page holds.
pub const MAX_PAGE: i64 = 100;
/// The longest search accepted, in characters.
pub const MAX_QUERY_LEN: usize = 100;
/// The sorts a listing accepts.
pub const SORTS: [&str; 6] = ["created_at", "-created_at", "email", "-email", "last_login_at", "-last_login_at"];

/// A listing's parameters, as sent.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Substring of email or name.
    pub q: Option<String>,
    /// Only this role.
    pub role: Option<String>,
    /// Only active or deactivated accounts.
    pub is_active: Option<bool>,
    /// One of [`SORTS`].
    pub sort: Option<String>,
}

/// One page of accounts.
#[derive(Debug)]
pub struct UserPage {
    /// The page.
    pub items: Vec<User>,
    /// Accounts matching, across pages.
    pub total: i64,
}

/// An account with what only its detail shows.
#[derive(Debug)]
pub struct UserDetail {
    /// The account.
    pub user: User,
    /// Its external identities.
    pub identities: Vec<LinkedIdentity>,
    /// Its live sign-in sessions.
    pub active_sessions: i64,
}

fn parse_sort(sort: &str) -> Option<UserSort> {
    Some(match sort {
        "created_at" => UserSort::CreatedAt,
        "-created_at" => UserSort::CreatedAtDesc,
        "email" => UserSort::Email,
        "-email" => UserSort::EmailDesc,
        "last_login_at" => UserSort::LastLoginAt,
        "-last_login_at" => UserSort::LastLoginAtDesc,
        _ => return None,
    })
}

fn role_error(field: &str) -> FieldError {
    FieldError::new(field, "must be one of user, admin, super_admin")
}

/// A page of accounts (admins).
pub async fn list_users(db: &Db, caller: &CurrentUser, query: UserQuery, skip: i64, limit: i64) -> Result<UserPage> {
    caller.require(Role::Admin)?;
    let mut problems = FieldError::page(skip, limit, MAX_PAGE);
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    problems.extend(q.and_then(|q| FieldError::too_long("q", q, MAX_QUERY_LEN)));
    let role = query.role.as_deref().filter(|r| !r.is_empty());
    if role.is_some_and(|r| r.parse::<Role>().is_err()) {
        problems.push(role_error("role"));
    }
    let sort = match query.sort.as_deref().filter(|s| !s.is_empty()) {
        Some(sort) => parse_sort(sort).unwrap_or_else(|| {
            problems.push(FieldError::new("sort", format!("must be one of {}", SORTS.join(", "))));
            UserSort::default()
        }),
        None => UserSort::default(),
    };
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let filter = UserFilter { q, role, is_active: query.is_active };
    let (items, total) = admin_users::list_users(db, &filter, sort, skip, limit).await?;
    Ok(UserPage { items, total })
}

/// One account with its identities and live session count (admins); unknown is 404.
pub async fn find_user(db: &Db, caller: &CurrentUser, id: &str) -> Result<UserDetail> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let user = omnistack_db::users::find_user(db, id).await?.ok_or_else(not_found)?;
    let identities = admin_users::list_identities(db, id).await?;
    let active_sessions = admin_users::count_live_sessions(db, id).await?;
    Ok(UserDetail { user, identities, active_sessions })
}

/// What an admin asks to change; `None` leaves a field alone.
#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    /// New display name (`Some(None)` clears it).
    pub full_name: Option<Option<String>>,
    /// New role.
    pub role: Option<String>,
    /// Deactivate (`false`) or reactivate (`true`).
    pub is_active: Option<bool>,
}

/// Applies `patch` to account `id` under the rules above, and audits each change
/// (`user.updated`, `user.role_changed`, `user.deactivated`, `user.activated`) in its
/// transaction.
pub async fn update_user(
    db: &Db,
    caller: &CurrentUser,
    context: &AuditContext,
    id: &str,
    patch: UserPatch,
) -> Result<User> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let mut problems = Vec::new();
    let full_name = patch.full_name.map(|name| name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()));
    if let Some(Some(name)) = &full_name {
        problems.extend(FieldError::too_long("full_name", name, MAX_NAME_LEN));
        if !name.chars().all(|c| crate::contact::form::allowed(c, false)) {
            problems.push(FieldError::new("full_name", "must not contain control or invisible formatting characters"));
        }
    }
    let role = match patch.role.as_deref() {
        Some(name) => name.parse::<Role>().map_err(|_| problems.push(role_error("role"))).ok(),
        None => None,
    };
    if full_name.is_none() && patch.role.is_none() && patch.is_active.is_none() {
        problems.push(FieldError::new("body", "send at least one of full_name, role, is_active"));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }

    let mut tx = db.begin().await?;
    let target = admin_users::find_user_in(&mut tx, id).await?.ok_or_else(not_found)?;
    let current = target.role.parse::<Role>().map_err(|err| Error::Internal(anyhow::anyhow!(err)))?;
    check_may_edit(caller, current)?;
    let mut user = target.clone();
    if let Some(new_role) = role.filter(|r| *r != current) {
        if id == caller.user.id {
            return Err(Error::Authorization("you cannot change your own role".into()));
        }
        if (new_role >= Role::Admin || current >= Role::Admin) && caller.role < Role::SuperAdmin {
            return Err(Error::Authorization("only a super_admin grants or removes admin roles".into()));
        }
        if current == Role::SuperAdmin && target.is_active {
            refuse_last_super_admin(&mut tx, id, "demoted").await?;
        }
    }
    let change = AdminChange {
        full_name: full_name.as_ref().filter(|n| **n != target.full_name).map(|n| n.as_deref()),
        role: role.filter(|r| *r != current).map(Role::as_str),
    };
    if change.full_name.is_some() || change.role.is_some() {
        user = admin_users::update_user(&mut tx, id, &change).await?.ok_or_else(not_found)?;
        if let Some(name) = change.full_name {
            let details = json!({"full_name": {"from": target.full_name, "to": name}});
            audit::record(&mut tx, AuditEntry::by(caller, context, "user.updated", "user", id, details)).await?;
        }
        if let Some(new_role) = change.role {
            let details = json!({"from": current.as_str(), "to": new_role});
            audit::record(&mut tx, AuditEntry::by(caller, context, "user.role_changed", "user", id, details)).await?;
        }
    }
    if let Some(active) = patch.is_active.filter(|a| *a != target.is_active) {
        user = set_active_in(&mut tx, caller, context, &user, active).await?;
    }
    tx.commit().await?;
    Ok(user)
}

/// Deactivates account `id` at once (admins); 409 when it already is.
pub async fn deactivate_user(db: &Db, caller: &CurrentUser, context: &AuditContext, id: &str) -> Result<User> {
    change_activation(db, caller, context, id, false).await
}

/// Reactivates account `id` (admins); 409 when it is active.
pub async fn activate_user(db: &Db, caller: &CurrentUser, context: &AuditContext, id: &str) -> Result<User> {
    change_activation(db, caller, context, id, true).await
}

async fn change_activation(
    db: &Db,
    caller: &CurrentUser,
    context: &AuditContext,
    id: &str,
    active: bool,
) -> Result<User> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let mut tx = db.begin().await?;
    let target = admin_users::find_user_in(&mut tx, id).await?.ok_or_else(not_found)?;
    let current = target.role.parse::<Role>().map_err(|err| Error::Internal(anyhow::anyhow!(err)))?;
    check_may_edit(caller, current)?;
    if target.is_active == active {
        let state = if active { "active" } else { "deactivated" };
        return Err(Error::Conflict(format!("this account is already {state}")));
    }
    let user = set_active_in(&mut tx, caller, context, &target, active).await?;
    tx.commit().await?;
    Ok(user)
}

/// Deactivates the account linked to `provider` + `subject` because the identity provider
/// deleted that user (a verified webhook): as an admin's deactivation does, every session is
/// revoked and the revocation feed closes its sockets. Audited `user.deactivated` with no
/// actor and `{"by": provider}`, in the change's transaction. `None` when no account is
/// linked; an account already deactivated is returned unchanged.
pub async fn deactivate_external(db: &Db, provider: &str, subject: &str) -> Result<Option<User>> {
    let Some(linked) = omnistack_db::identities::find_user_by_identity(db, provider, subject).await? else {
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    let Some(target) = admin_users::find_user_in(&mut tx, linked.id).await? else { return Ok(None) };
    if !target.is_active {
        return Ok(Some(target));
    }
    let user = admin_users::set_active(&mut tx, target.id, false).await?.ok_or_else(not_found)?;
    let details = json!({"email": target.shown_email(), "by": provider});
    let entry = AuditEntry::new(
        audit::Actor::anonymous(),
        &AuditContext::default(),
        "user.deactivated",
        "user",
        Some(target.id.to_string()),
        details,
    );
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    tracing::info!(user.id = %target.id, auth.provider = provider, "account deactivated: deleted at its identity provider");
    Ok(Some(user))
}

/// Only a super_admin edits an admin or a super_admin.
fn check_may_edit(caller: &CurrentUser, target: Role) -> Result<()> {
    if target >= Role::Admin && caller.role < Role::SuperAdmin {
        return Err(Error::Authorization("only a super_admin edits an admin".into()));
    }
    Ok(())
}

async fn set_active_in(
    tx: &mut Tx,
    caller: &CurrentUser,
    context: &AuditContext,
    target: &User,
    active: bool,
) -> Result<User> {
    if !active {
        if target.id == caller.user.id {
            return Err(Error::Authorization("you cannot deactivate yourself".into()));
        }
        if target.role == Role::SuperAdmin.as_str() {
            refuse_last_super_admin(tx, target.id, "deactivated").await?;
        }
    }
    let user = admin_users::set_active(tx, target.id, active).await?.ok_or_else(not_found)?;
    let action = if active { "user.activated" } else { "user.deactivated" };
    let details = json!({"email": target.shown_email()});
    audit::record(tx, AuditEntry::by(caller, context, action, "user", target.id, details)).await?;
    if !active {
        tracing::info!(user.id = %target.id, admin.id = %caller.user.id, "account deactivated by an admin");
    }
    Ok(user)
}

/// 409 when `id` is the only active super_admin left (their rows are locked for the rest of
/// the transaction, so two concurrent demotions cannot both pass).
async fn refuse_last_super_admin(tx: &mut Tx, id: Uuid, what: &str) -> Result<()> {
    let super_admins = dialect::lock_active_super_admins(tx).await?;
    if super_admins.iter().all(|other| *other == id) {
        return Err(Error::Conflict(format!("the last active super_admin cannot be {what}")));
    }
    Ok(())
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Error {
    Error::NotFound("user not found".into())
}
