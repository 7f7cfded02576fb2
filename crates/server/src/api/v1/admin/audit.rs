//! `/admin/audit-logs`: read, export and verify the audit log (admins; verify: super admins).
//! There is no route that changes or deletes an entry.

use crate::api::Routes;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use omnistack_db::audit::AuditRow;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::{self, AuditQuery, export};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};

/// The audit-log routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_audit_logs))
        .routes(routes!(export_audit_logs))
        .routes(routes!(verify_audit_logs))
        .routes(routes!(get_audit_log))
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryResponse {
    /// Entry id.
    pub id: Uuid,
    /// Position in the chain.
    pub seq: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// Who acted (`null`: anonymous).
    pub actor_id: Option<Uuid>,
    /// Their email then.
    pub actor_email: Option<String>,
    /// Their role then.
    pub actor_role: Option<String>,
    /// The user an impersonating admin acted as.
    pub impersonated_user_id: Option<Uuid>,
    /// What happened (`user.updated`, `auth.login`, …).
    pub action: String,
    /// The kind of resource.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// What changed.
    #[schema(value_type = Object)]
    pub details: Value,
    /// Client IP.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

impl From<AuditRow> for AuditEntryResponse {
    fn from(row: AuditRow) -> Self {
        AuditEntryResponse {
            id: row.id,
            seq: row.seq,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            actor_email: row.actor_email,
            actor_role: row.actor_role,
            impersonated_user_id: row.impersonated_user_id,
            action: row.action,
            resource_type: row.resource_type,
            resource_id: row.resource_id,
            details: serde_json::from_str(&row.details).unwrap_or(Value::String(row.details)),
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

/// A page of entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    /// The page, newest first.
    pub items: Vec<AuditEntryResponse>,
    /// Entries matching, across pages.
    pub total: i64,
    /// Entries skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// The filters of the listing and the export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilterParams {
    /// Only this actor (a UUID).
    #[param(max_length = 36)]
    pub actor_id: Option<String>,
    /// Only this action.
    #[param(max_length = 100)]
    pub action: Option<String>,
    /// Only this resource type.
    #[param(max_length = 100)]
    pub resource_type: Option<String>,
    /// Only this resource id.
    #[param(max_length = 200)]
    pub resource_id: Option<String>,
    /// At or after this moment (RFC 3339).
    #[param(max_length = 40)]
    pub since: Option<String>,
    /// At or before this moment (RFC 3339).
    #[param(max_length = 40)]
    pub until: Option<String>,
}

/// A page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditPageParams {
    /// Entries to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

impl From<AuditFilterParams> for AuditQuery {
    fn from(p: AuditFilterParams) -> Self {
        AuditQuery {
            actor_id: p.actor_id,
            action: p.action,
            resource_type: p.resource_type,
            resource_id: p.resource_id,
            since: p.since,
            until: p.until,
        }
    }
}

/// The outcome of a verification.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerification {
    /// Whether every entry links to its predecessor and carries its own hash.
    pub valid: bool,
    /// Entries checked.
    pub checked: i64,
    /// The first entry that does not.
    pub first_invalid_id: Option<Uuid>,
}

/// Lists entries, newest first.
#[utoipa::path(get, path = "/admin/audit-logs", tag = "admin", params(AuditFilterParams, AuditPageParams),
    security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of entries", body = AuditList),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or an impersonation token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_audit_logs(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(filter): Query<AuditFilterParams>,
    Query(page): Query<AuditPageParams>,
) -> Result<Json<AuditList>> {
    let (skip, limit) = (page.skip.unwrap_or(0), page.limit.unwrap_or(20));
    let page = audit::list_entries(&db, &admin, filter.into(), skip, limit).await?;
    Ok(Json(AuditList { items: page.items.into_iter().map(Into::into).collect(), total: page.total, skip, limit }))
}

/// One entry.
#[utoipa::path(get, path = "/admin/audit-logs/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Entry id", max_length = 36)),
    responses(
        (status = OK, description = "The entry", body = AuditEntryResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or an impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No such entry", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_audit_log(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<AuditEntryResponse>> {
    Ok(Json(audit::find_entry(&db, &admin, &id).await?.into()))
}

/// Streams the matching entries as CSV, newest first.
#[utoipa::path(get, path = "/admin/audit-logs/export", tag = "admin", params(AuditFilterParams),
    security(("bearer" = [])),
    responses(
        (status = OK, description = "CSV, one entry per row (cells defused against formula injection)", content_type = "text/csv", body = String),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or an impersonation token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn export_audit_logs(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(filter): Query<AuditFilterParams>,
) -> Result<Response> {
    let query = export::start_export(&admin, filter.into())?;
    let body = Body::from_stream(export::export_csv(db, query));
    let headers =
        [(CONTENT_TYPE, "text/csv; charset=utf-8"), (CONTENT_DISPOSITION, "attachment; filename=\"audit-log.csv\"")];
    Ok((headers, body).into_response())
}

/// Walks the hash chain and reports the first entry edited, inserted or deleted behind the
/// API's back (super admins).
#[utoipa::path(get, path = "/admin/audit-logs/verify", tag = "admin", security(("bearer" = [])),
    responses(
        (status = OK, description = "The verdict", body = AuditVerification),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not a super_admin, or an impersonation token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn verify_audit_logs(State(db): State<Db>, AdminUser(admin): AdminUser) -> Result<Json<AuditVerification>> {
    let verdict = audit::verify(&db, &admin).await?;
    Ok(Json(AuditVerification {
        valid: verdict.valid,
        checked: verdict.checked,
        first_invalid_id: verdict.first_invalid_id,
    }))
}
