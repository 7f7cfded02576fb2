//! `/admin/users`: find, inspect, edit, deactivate and reactivate accounts (admins).

use crate::api::Routes;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use omnistack_db::users::User;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::admin::users::{self, UserPatch, UserQuery};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query, nullable};

/// The user-management routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, update_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(activate_user))
}

/// An account, as admins list it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserItem {
    /// Account id.
    pub id: Uuid,
    /// Email address, when known.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// `user`, `admin` or `super_admin`.
    pub role: String,
    /// False once deactivated.
    pub is_active: bool,
    /// Whether the email address is confirmed.
    pub email_verified: bool,
    /// Billing plan.
    pub subscription_plan: String,
    /// Billing status.
    pub subscription_status: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last sign-in or activity.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Sign-ins so far.
    pub login_count: i64,
}

impl From<User> for AdminUserItem {
    fn from(user: User) -> Self {
        AdminUserItem {
            id: user.id,
            email: user.shown_email().map(str::to_owned),
            email_verified: user.shown_email_verified(),
            full_name: user.full_name,
            role: user.role,
            is_active: user.is_active,
            subscription_plan: user.subscription_plan,
            subscription_status: user.subscription_status,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            login_count: user.login_count,
        }
    }
}

/// A linked external identity.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkedIdentityResponse {
    /// The provider (`supabase`, `clerk`, `oidc`, …).
    pub provider: String,
    /// The provider's subject.
    pub subject: String,
    /// When it was linked.
    pub linked_at: DateTime<Utc>,
}

/// An account with its identities and live sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserDetail {
    /// Everything a listing shows.
    #[serde(flatten)]
    pub user: AdminUserItem,
    /// When it was deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Linked external identities.
    pub identities: Vec<LinkedIdentityResponse>,
    /// Live sign-in sessions.
    pub active_sessions: i64,
}

/// A page of accounts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserList {
    /// The page.
    pub items: Vec<AdminUserItem>,
    /// Accounts matching, across pages.
    pub total: i64,
    /// Accounts skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Filters, order and page of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUserParams {
    /// Case-insensitive substring of the email or the name.
    #[param(max_length = 100)]
    pub q: Option<String>,
    /// Only this role (`user`, `admin`, `super_admin`).
    #[param(max_length = 20)]
    pub role: Option<String>,
    /// Only active (`true`) or deactivated (`false`) accounts.
    pub is_active: Option<bool>,
    /// `created_at`, `-created_at` (default), `email`, `-email`, `last_login_at`, `-last_login_at`.
    #[param(max_length = 20)]
    pub sort: Option<String>,
    /// Accounts to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// What an admin changes; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUserUpdate {
    /// New display name (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 255, value_type = Option<String>)]
    pub full_name: Option<Option<String>>,
    /// New role: `user`, `admin` or `super_admin`.
    #[schema(max_length = 20)]
    pub role: Option<String>,
    /// `false` deactivates, `true` reactivates.
    pub is_active: Option<bool>,
}

/// Lists accounts.
#[utoipa::path(get, path = "/admin/users", tag = "admin", params(AdminUserParams), security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of accounts", body = AdminUserList),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, an impersonation token, or a deactivated account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter, sort or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_users(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(params): Query<AdminUserParams>,
) -> Result<Json<AdminUserList>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let query = UserQuery { q: params.q, role: params.role, is_active: params.is_active, sort: params.sort };
    let page = users::list_users(&db, &admin, query, skip, limit).await?;
    Ok(Json(AdminUserList { items: page.items.into_iter().map(Into::into).collect(), total: page.total, skip, limit }))
}

/// One account, with its identities and live sessions.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id", max_length = 36)),
    responses(
        (status = OK, description = "The account", body = AdminUserDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, an impersonation token, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account (or a malformed id)", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_user(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<AdminUserDetail>> {
    let detail = users::find_user(&db, &admin, &id).await?;
    Ok(Json(detail_of(detail)))
}

fn detail_of(detail: users::UserDetail) -> AdminUserDetail {
    let (deactivated_at, updated_at) = (detail.user.deactivated_at, detail.user.updated_at);
    AdminUserDetail {
        user: detail.user.into(),
        deactivated_at,
        updated_at,
        identities: detail
            .identities
            .into_iter()
            .map(|i| LinkedIdentityResponse { provider: i.provider, subject: i.subject, linked_at: i.created_at })
            .collect(),
        active_sessions: detail.active_sessions,
    }
}

/// Changes an account's name, role or activation, under the rules in `docs/API.md`.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", request_body = AdminUserUpdate, security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id", max_length = 36)),
    responses(
        (status = OK, description = "The account, changed", body = AdminUserItem),
        (status = BAD_REQUEST, description = "The body is not JSON", body = ErrorBody),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Own role or deactivating oneself; an admin's role or account without being a super_admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = CONFLICT, description = "The last active super_admin would be demoted or deactivated", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not `application/json`", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown role, a bad name, or nothing to change", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn update_user(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
    Json(body): Json<AdminUserUpdate>,
) -> Result<Json<AdminUserItem>> {
    let patch = UserPatch { full_name: body.full_name, role: body.role, is_active: body.is_active };
    Ok(Json(users::update_user(&db, &admin, &context, &id, patch).await?.into()))
}

/// Deactivates an account at once: its sessions are revoked, its tokens refused, its sockets
/// closed (4003).
#[utoipa::path(post, path = "/admin/users/{id}/deactivate", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id", max_length = 36)),
    responses(
        (status = OK, description = "The account, deactivated", body = AdminUserItem),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Oneself, or an admin without being a super_admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = CONFLICT, description = "Already deactivated, or the last active super_admin", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn deactivate_user(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<AdminUserItem>> {
    Ok(Json(users::deactivate_user(&db, &admin, &context, &id).await?.into()))
}

/// Reactivates an account.
#[utoipa::path(post, path = "/admin/users/{id}/activate", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Account id", max_length = 36)),
    responses(
        (status = OK, description = "The account, active", body = AdminUserItem),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "An admin without being a super_admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = CONFLICT, description = "Already active", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn activate_user(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<AdminUserItem>> {
    Ok(Json(users::activate_user(&db, &admin, &context, &id).await?.into()))
}
