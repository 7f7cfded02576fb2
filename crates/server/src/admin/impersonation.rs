//! Impersonation: an admin acts as a user (role `user`, active, not themselves) for 1 to 60
//! minutes, with a stated reason. The token carries the RFC 8693 `act` claim and is bound to
//! an `impersonation_sessions` row that the guard checks on every request, so stopping it
//! takes effect on every instance at once. An impersonated caller never gets more than the
//! `user` role ([`CurrentUser::require`]) and is refused what
//! [`CurrentUser::refuse_impersonation`] guards (another impersonation, the password or email,
//! erasing the account, sockets, billing). Every response to it names the admin
//! (`X-Impersonated-By`), and every write it makes is audited ([`record_request`]).

use std::time::Duration;

use axum::http::{Method, StatusCode};
use omnistack_db::Db;
use omnistack_db::impersonations::{self as db_imp, Impersonation, NewImpersonation};
use serde_json::json;
use uuid::Uuid;

use super::audit::{self, AuditContext, AuditEntry};
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};
use crate::state::AppState;

/// A reason's length bounds, in characters.
pub const REASON_LEN: std::ops::RangeInclusive<usize> = 10..=500;
/// A session's length bounds, in minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i64> = 1..=60;
/// The default length, in minutes.
pub const DEFAULT_MINUTES: i64 = 15;
/// The most sessions one page holds.
pub const MAX_PAGE: i64 = 100;

/// A request to impersonate.
#[derive(Clone, Debug)]
pub struct StartImpersonation {
    /// The user (a UUID).
    pub user_id: String,
    /// Why (10 to 500 characters).
    pub reason: String,
    /// How long (1 to 60 minutes; 15 when `None`).
    pub duration_minutes: Option<i64>,
}

/// A started impersonation and its token.
#[derive(Debug)]
pub struct Started {
    /// The session.
    pub session: Impersonation,
    /// The token acting as the user.
    pub access_token: String,
    /// Its lifetime in seconds.
    pub expires_in: u64,
}

/// Starts impersonating (admins, never with an impersonation token) and audits it
/// (`impersonation.started`) in the session's transaction.
pub async fn start(
    state: &AppState,
    caller: &CurrentUser,
    context: &AuditContext,
    request: StartImpersonation,
) -> Result<Started> {
    caller.refuse_impersonation()?;
    caller.require(Role::Admin)?;
    let mut problems = Vec::new();
    let user_id =
        Uuid::parse_str(&request.user_id).map_err(|_| problems.push(FieldError::new("user_id", "must be a UUID"))).ok();
    let reason = request.reason.trim();
    if !REASON_LEN.contains(&reason.chars().count()) {
        problems.push(FieldError::new("reason", "must be 10 to 500 characters"));
    } else if !reason.chars().all(|c| crate::contact::form::allowed(c, true)) {
        problems.push(FieldError::new("reason", "must not contain control or invisible formatting characters"));
    }
    let minutes = request.duration_minutes.unwrap_or(DEFAULT_MINUTES);
    if !DURATION_MINUTES.contains(&minutes) {
        problems.push(FieldError::new("duration_minutes", "must be from 1 to 60"));
    }
    let (Some(user_id), true) = (user_id, problems.is_empty()) else { return Err(Error::Validation(problems)) };
    if user_id == caller.user.id {
        return Err(Error::Authorization("you cannot impersonate yourself".into()));
    }
    let target = omnistack_db::users::find_user(&state.db, user_id)
        .await?
        .ok_or_else(|| Error::NotFound("user not found".into()))?;
    if target.role != Role::User.as_str() {
        return Err(Error::Authorization("only accounts with the user role can be impersonated".into()));
    }
    if !target.is_active {
        return Err(Error::Conflict("this account is deactivated".into()));
    }

    let mut tx = state.db.begin().await?;
    let new =
        NewImpersonation { admin_id: caller.user.id, user_id, reason, duration: chrono::Duration::minutes(minutes) };
    let (id, _) = db_imp::insert_impersonation(&mut tx, &new).await?;
    let details = json!({"user_id": user_id, "user_email": target.shown_email(), "reason": reason,
        "duration_minutes": minutes});
    audit::record(&mut tx, AuditEntry::by(caller, context, "impersonation.started", "impersonation", id, details))
        .await?;
    let session = db_imp::find_impersonation(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("session vanished"))?;
    tx.commit().await?;
    let ttl = Duration::from_secs(minutes as u64 * 60);
    let access_token = state.tokens.issue_impersonation(user_id, id, caller.user.id, ttl)?;
    tracing::info!(impersonation.id = %id, admin.id = %caller.user.id, user.id = %user_id, "impersonation started");
    Ok(Started { session, access_token, expires_in: ttl.as_secs() })
}

/// A page of sessions, newest first: all, live only (`Some(true)`) or ended only (admins).
pub async fn list(
    db: &Db,
    caller: &CurrentUser,
    active: Option<bool>,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Impersonation>, i64)> {
    caller.require(Role::Admin)?;
    let problems = FieldError::page(skip, limit, MAX_PAGE);
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(db_imp::list_impersonations(db, active, skip, limit).await?)
}

/// Stops a live session (admins): its token is refused from then on, on every instance.
/// Audited as `impersonation.stopped`; 409 when it already ended or expired.
pub async fn stop(db: &Db, caller: &CurrentUser, context: &AuditContext, id: &str) -> Result<Impersonation> {
    caller.require(Role::Admin)?;
    let not_found = || Error::NotFound("impersonation session not found".into());
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    let mut tx = db.begin().await?;
    if !db_imp::end_impersonation(&mut tx, id, caller.user.id).await? {
        return match db_imp::find_impersonation(&mut tx, id).await? {
            Some(_) => Err(Error::Conflict("this impersonation session has already ended".into())),
            None => Err(not_found()),
        };
    }
    let session = db_imp::find_impersonation(&mut tx, id).await?.ok_or_else(not_found)?;
    let details = json!({"user_id": session.user_id, "admin_id": session.admin_id});
    audit::record(&mut tx, AuditEntry::by(caller, context, "impersonation.stopped", "impersonation", id, details))
        .await?;
    tx.commit().await?;
    Ok(session)
}

/// Audits a write made with an impersonation token (`impersonation.request`: method, route
/// template, status), after it was answered, in a transaction of its own: the services it
/// reached know nothing of impersonation. A failure is logged and counted, never hidden.
pub async fn record_request(
    state: &AppState,
    caller: &CurrentUser,
    context: &AuditContext,
    method: &Method,
    route: Option<String>,
    status: StatusCode,
) {
    let Some(by) = &caller.impersonation else { return };
    let details = json!({"method": method.as_str(), "route": route, "status": status.as_u16(),
        "impersonation_id": by.session_id});
    let entry = AuditEntry::by(caller, context, "impersonation.request", "user", caller.user.id, details);
    if let Err(err) = audit::record_alone(&state.db, entry).await {
        metrics::counter!("omnistack_audit_failures_total", "action" => "impersonation.request").increment(1);
        tracing::error!(error = %err, impersonation.id = %by.session_id, "could not audit an impersonated request");
    }
}
