//! `/admin/impersonations`: act as a user for a bounded time, list and stop such sessions
//! (admins).

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::impersonations::Impersonation;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::admin::impersonation::{self, StartImpersonation};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::state::AppState;

/// The impersonation routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(list_impersonations, start_impersonation)).routes(routes!(stop_impersonation))
}

/// A request to act as a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpersonationRequest {
    /// The user to act as (role `user`, active, not oneself).
    #[schema(max_length = 36)]
    pub user_id: String,
    /// Why: 10 to 500 characters, kept in the audit log.
    #[schema(min_length = 10, max_length = 500)]
    pub reason: String,
    /// How long the token works: 1 to 60 minutes (default 15).
    #[schema(minimum = 1, maximum = 60)]
    pub duration_minutes: Option<i64>,
}

/// The impersonated user.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonatedUser {
    /// Account id.
    pub id: Uuid,
    /// Email address, when known.
    pub email: Option<String>,
}

/// A started impersonation and its token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationStarted {
    /// The impersonation session.
    pub id: Uuid,
    /// A token acting as the user, with `act: {sub: <admin id>}`.
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds the token works (unless stopped first).
    pub expires_in: u64,
    /// Who it acts as.
    pub user: ImpersonatedUser,
    /// The admin.
    pub impersonator_id: Uuid,
}

/// An impersonation session.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationSession {
    /// Session id.
    pub id: Uuid,
    /// The admin.
    pub admin_id: Uuid,
    /// The admin's email.
    pub admin_email: Option<String>,
    /// The user.
    pub user_id: Uuid,
    /// The user's email.
    pub user_email: Option<String>,
    /// Why.
    pub reason: String,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// When its token stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was stopped.
    pub ended_at: Option<DateTime<Utc>>,
    /// Who stopped it.
    pub ended_by: Option<Uuid>,
    /// Neither stopped nor expired.
    pub active: bool,
}

impl From<Impersonation> for ImpersonationSession {
    fn from(s: Impersonation) -> Self {
        let active = s.is_live(Utc::now());
        ImpersonationSession {
            id: s.id,
            admin_id: s.admin_id,
            admin_email: s.admin_email,
            user_id: s.user_id,
            user_email: s.user_email,
            reason: s.reason,
            started_at: s.started_at,
            expires_at: s.expires_at,
            ended_at: s.ended_at,
            ended_by: s.ended_by,
            active,
        }
    }
}

/// A page of sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImpersonationList {
    /// The page, newest first.
    pub items: Vec<ImpersonationSession>,
    /// Sessions matching, across pages.
    pub total: i64,
    /// Sessions skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Filter and page of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImpersonationParams {
    /// Only live (`true`) or only ended and expired (`false`) sessions.
    pub active: Option<bool>,
    /// Sessions to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Starts acting as a user.
#[utoipa::path(post, path = "/admin/impersonations", tag = "admin", request_body = ImpersonationRequest,
    security(("bearer" = [])),
    responses(
        (status = CREATED, description = "The session and its token", body = ImpersonationStarted),
        (status = BAD_REQUEST, description = "The body is not JSON", body = ErrorBody),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin; an impersonation token; the target is an admin or oneself", body = ErrorBody),
        (status = NOT_FOUND, description = "No such user", body = ErrorBody),
        (status = CONFLICT, description = "The user is deactivated", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad user id, reason or duration", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn start_impersonation(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Json(body): Json<ImpersonationRequest>,
) -> Result<(StatusCode, Json<ImpersonationStarted>)> {
    let request =
        StartImpersonation { user_id: body.user_id, reason: body.reason, duration_minutes: body.duration_minutes };
    let started = impersonation::start(&state, &admin, &context, request).await?;
    let session = started.session;
    Ok((
        StatusCode::CREATED,
        Json(ImpersonationStarted {
            id: session.id,
            access_token: started.access_token,
            token_type: "bearer",
            expires_in: started.expires_in,
            user: ImpersonatedUser { id: session.user_id, email: session.user_email },
            impersonator_id: session.admin_id,
        }),
    ))
}

/// Lists impersonation sessions, newest first.
#[utoipa::path(get, path = "/admin/impersonations", tag = "admin", params(ImpersonationParams),
    security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of sessions", body = ImpersonationList),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or an impersonation token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_impersonations(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(params): Query<ImpersonationParams>,
) -> Result<Json<ImpersonationList>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let (items, total) = impersonation::list(&state.db, &admin, params.active, skip, limit).await?;
    Ok(Json(ImpersonationList { items: items.into_iter().map(Into::into).collect(), total, skip, limit }))
}

/// Stops a session: its token is refused from then on, on every instance.
#[utoipa::path(post, path = "/admin/impersonations/{id}/stop", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id", max_length = 36)),
    responses(
        (status = OK, description = "The session, ended", body = ImpersonationSession),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or an impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No such session", body = ErrorBody),
        (status = CONFLICT, description = "Already stopped or expired", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn stop_impersonation(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<ImpersonationSession>> {
    Ok(Json(impersonation::stop(&state.db, &admin, &context, &id).await?.into()))
}
