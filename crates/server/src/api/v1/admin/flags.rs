//! `/admin/feature-flags`: admins create, change, delete and try out feature flags.

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::feature_flags::FeatureFlag;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::admin::flags::{self, Editor, FlagChange, NewFlag};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query, nullable};
use crate::state::AppState;

/// The feature flag routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_flags, create_flag))
        .routes(routes!(get_flag, update_flag, delete_flag))
        .routes(routes!(evaluate_flag))
}

/// A plan a `plans` rule may name.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PlanName {
    /// Free (also any account whose subscription is not `active` or `trialing`).
    Free,
    /// Pro.
    Pro,
    /// Enterprise.
    Enterprise,
}

/// A feature flag.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagResponse {
    /// Unique key.
    pub key: String,
    /// What it is for.
    pub description: Option<String>,
    /// Off when false, whatever else is set.
    pub enabled: bool,
    /// The share of users (0–100) it is on for; `null` for no rollout rule.
    pub rollout_percentage: Option<i32>,
    /// The rollout's stickiness group (the key unless set).
    pub group_id: String,
    /// Accounts it is always on for.
    pub user_ids: Vec<Uuid>,
    /// The only plans it is on for (empty: any plan).
    #[schema(value_type = Vec<PlanName>)]
    pub plans: Vec<String>,
    /// When it turns off by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<FeatureFlag> for FlagResponse {
    fn from(flag: FeatureFlag) -> Self {
        FlagResponse {
            group_id: flag.group_id.unwrap_or_else(|| flag.key.clone()),
            key: flag.key,
            description: flag.description,
            enabled: flag.enabled,
            rollout_percentage: flag.rollout_percentage,
            user_ids: flag.user_ids.0,
            plans: flag.plans.0,
            expires_at: flag.expires_at,
            created_at: flag.created_at,
            updated_at: flag.updated_at,
        }
    }
}

/// Every flag.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlagListResponse {
    /// By key (at most 1,000).
    pub items: Vec<FlagResponse>,
    /// How many there are.
    pub total: usize,
}

/// A new flag.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFlagRequest {
    /// Unique key.
    #[schema(max_length = 100, pattern = "^[a-z0-9][a-z0-9_.-]{0,99}$", example = "new-editor")]
    pub key: String,
    /// What it is for; no control or invisible characters but line breaks and tabs.
    #[schema(
        max_length = 1000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufdd0-\ufdef\ufff9-\ufffb\ufffe\uffff]*$"
    )]
    pub description: Option<String>,
    /// On at all (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The share of users (0–100) it is on for.
    #[schema(minimum = 0, maximum = 100)]
    pub rollout_percentage: Option<i32>,
    /// The rollout's stickiness group (default: the key); same pattern as keys.
    #[schema(max_length = 100, pattern = "^[a-z0-9][a-z0-9_.-]{0,99}$")]
    pub group_id: Option<String>,
    /// Accounts it is always on for (at most 10,000 UUIDs).
    #[serde(default)]
    #[schema(value_type = Vec<Uuid>, max_items = 10000)]
    pub user_ids: Vec<String>,
    /// The only plans it is on for (empty: any plan).
    #[serde(default)]
    #[schema(value_type = Vec<PlanName>, max_items = 3)]
    pub plans: Vec<String>,
    /// When it turns off by itself (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub expires_at: Option<String>,
}

/// Fields to change; omitted fields stay, `null` clears (the group then follows the key).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFlagRequest {
    /// What it is for.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 1000, pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff\ufdd0-\ufdef\ufff9-\ufffb\ufffe\uffff]*$")]
    pub description: Option<Option<String>>,
    /// On or off.
    pub enabled: Option<bool>,
    /// The share of users (0–100) it is on for; `null` removes the rollout rule.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 100)]
    pub rollout_percentage: Option<Option<i32>>,
    /// The rollout's stickiness group; `null` for the key.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100, pattern = "^[a-z0-9][a-z0-9_.-]{0,99}$")]
    pub group_id: Option<Option<String>>,
    /// Accounts it is always on for (replaces the list).
    #[schema(value_type = Option<Vec<Uuid>>, max_items = 10000)]
    pub user_ids: Option<Vec<String>>,
    /// The only plans it is on for (replaces the list; empty: any plan).
    #[schema(value_type = Option<Vec<PlanName>>, max_items = 3)]
    pub plans: Option<Vec<String>>,
    /// When it turns off by itself; `null` for never.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub expires_at: Option<Option<String>>,
}

/// Whom to evaluate a flag for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EvaluateParams {
    /// An account id (its plan then applies) or any other targeting key.
    #[param(max_length = 255)]
    pub user_id: String,
}

/// A flag's value for one user.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvaluationResponse {
    /// The flag.
    pub key: String,
    /// On or off.
    pub value: bool,
    /// `DISABLED`, `TARGETING_MATCH`, `SPLIT` or `STATIC`.
    #[schema(example = "SPLIT")]
    pub reason: &'static str,
}

/// Lists every flag.
#[utoipa::path(get, path = "/admin/feature-flags", tag = "feature-flags", security(("bearer" = [])),
    responses(
        (status = OK, description = "Every flag, by key", body = FlagListResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_flags(State(state): State<AppState>, AdminUser(admin): AdminUser) -> Result<Json<FlagListResponse>> {
    let items: Vec<FlagResponse> = flags::list_flags(&state.db, &admin).await?.into_iter().map(Into::into).collect();
    Ok(Json(FlagListResponse { total: items.len(), items }))
}

/// Creates a flag (audited).
#[utoipa::path(post, path = "/admin/feature-flags", tag = "feature-flags", security(("bearer" = [])),
    request_body = CreateFlagRequest,
    responses(
        (status = CREATED, description = "The flag", body = FlagResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = CONFLICT, description = "The key is taken, or the deployment holds 1,000 flags", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad key, rule or bound", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn create_flag(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Json(body): Json<CreateFlagRequest>,
) -> Result<(StatusCode, Json<FlagResponse>)> {
    let editor = Editor { caller: &admin, context };
    let new = NewFlag {
        key: body.key,
        description: body.description,
        enabled: body.enabled,
        rollout_percentage: body.rollout_percentage,
        group_id: body.group_id,
        user_ids: body.user_ids,
        plans: body.plans,
        expires_at: body.expires_at,
    };
    let flag = flags::create_flag(&state.db, &state.flags, &editor, new).await?;
    Ok((StatusCode::CREATED, Json(flag.into())))
}

/// One flag.
#[utoipa::path(get, path = "/admin/feature-flags/{key}", tag = "feature-flags", security(("bearer" = [])),
    params(("key" = String, Path, description = "Flag key", max_length = 100)),
    responses(
        (status = OK, description = "The flag", body = FlagResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such flag", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_flag(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(key): Path<String>,
) -> Result<Json<FlagResponse>> {
    Ok(Json(flags::find_flag(&state.db, &admin, &key).await?.into()))
}

/// Changes a flag (audited, with what it was).
#[utoipa::path(patch, path = "/admin/feature-flags/{key}", tag = "feature-flags", security(("bearer" = [])),
    params(("key" = String, Path, description = "Flag key", max_length = 100)),
    request_body = UpdateFlagRequest,
    responses(
        (status = OK, description = "The flag, changed", body = FlagResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such flag", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad rule or bound", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn update_flag(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(key): Path<String>,
    Json(body): Json<UpdateFlagRequest>,
) -> Result<Json<FlagResponse>> {
    let editor = Editor { caller: &admin, context };
    let change = FlagChange {
        description: body.description,
        enabled: body.enabled,
        rollout_percentage: body.rollout_percentage,
        group_id: body.group_id,
        user_ids: body.user_ids,
        plans: body.plans,
        expires_at: body.expires_at,
    };
    Ok(Json(flags::update_flag(&state.db, &state.flags, &editor, &key, change).await?.into()))
}

/// Deletes a flag (audited, with what it was).
#[utoipa::path(delete, path = "/admin/feature-flags/{key}", tag = "feature-flags", security(("bearer" = [])),
    params(("key" = String, Path, description = "Flag key", max_length = 100)),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such flag", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn delete_flag(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(key): Path<String>,
) -> Result<StatusCode> {
    let editor = Editor { caller: &admin, context };
    flags::delete_flag(&state.db, &state.flags, &editor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Evaluates a flag for one user, as the app and OFREP would.
#[utoipa::path(get, path = "/admin/feature-flags/{key}/evaluate", tag = "feature-flags", security(("bearer" = [])),
    params(("key" = String, Path, description = "Flag key", max_length = 100), EvaluateParams),
    responses(
        (status = OK, description = "The flag's value for the user", body = EvaluationResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such flag", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A missing or bad user id", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn evaluate_flag(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(key): Path<String>,
    Query(params): Query<EvaluateParams>,
) -> Result<Json<EvaluationResponse>> {
    let evaluation = flags::evaluate_for(&state.db, &state.flags, &admin, &key, &params.user_id).await?;
    Ok(Json(EvaluationResponse { key, value: evaluation.value, reason: evaluation.reason.as_str() }))
}
