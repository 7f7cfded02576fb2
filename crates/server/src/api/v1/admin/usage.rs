//! `/admin/usage/…`: any account's usage reports, and the busiest accounts of a metric (admins).

use crate::api::Routes;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::api::v1::usage::{BreakdownParams, DaysParams, MetricParams, RangeParams, today};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::state::AppState;
use crate::usage::reports::{self, Breakdown, CurrentPeriod, Daily, Summary, TopUsers, Trends};

/// The admin usage routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(user_current_period))
        .routes(routes!(user_summary))
        .routes(routes!(user_daily))
        .routes(routes!(user_breakdown))
        .routes(routes!(user_trends))
        .routes(routes!(top_users))
}

/// The busiest accounts.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TopUsersParams {
    /// A metric of `/usage/metrics`.
    #[param(required = true, max_length = 64, example = "api_requests")]
    pub metric: Option<String>,
    /// `YYYY-MM` (UTC); default: the current period.
    #[param(max_length = 7, example = "2026-11")]
    pub period: Option<String>,
    /// How many (1 to 100, default 10).
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<i64>,
}

/// An account's current period (see `/app/usage/current-period`).
#[utoipa::path(get, path = "/admin/usage/users/{user_id}/current-period", tag = "usage", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Account id", max_length = 36)),
    responses(
        (status = OK, description = "The current period", body = CurrentPeriod),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn user_current_period(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<String>,
) -> Result<Json<CurrentPeriod>> {
    let user = reports::for_admin(&state.db, &admin, &user_id).await?;
    Ok(Json(reports::current_period(&state.db, &state.config.usage, &user, today()).await?))
}

/// An account's usage over a range of days (see `/app/usage/summary`).
#[utoipa::path(get, path = "/admin/usage/users/{user_id}/summary", tag = "usage", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Account id", max_length = 36), RangeParams),
    responses(
        (status = OK, description = "The range's totals", body = Summary),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad date or range", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn user_summary(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Json<Summary>> {
    let user = reports::for_admin(&state.db, &admin, &user_id).await?;
    let (from, to) = reports::range(params.from.as_deref(), params.to.as_deref(), today())?;
    Ok(Json(reports::summary(&state.db, &state.config.usage, &user, from, to).await?))
}

/// An account's metric day by day (see `/app/usage/daily`).
#[utoipa::path(get, path = "/admin/usage/users/{user_id}/daily", tag = "usage", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Account id", max_length = 36), DaysParams),
    responses(
        (status = OK, description = "The days", body = Daily),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric or a bad number of days", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn user_daily(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<String>,
    Query(params): Query<DaysParams>,
) -> Result<Json<Daily>> {
    let user = reports::for_admin(&state.db, &admin, &user_id).await?;
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    let (from, to) = reports::last_days(params.days, today())?;
    Ok(Json(reports::daily(&state.db, &user, &metric, from, to).await?))
}

/// An account's metric split by a dimension (see `/app/usage/breakdown`).
#[utoipa::path(get, path = "/admin/usage/users/{user_id}/breakdown", tag = "usage", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Account id", max_length = 36), BreakdownParams),
    responses(
        (status = OK, description = "The breakdown", body = Breakdown),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric, a bad number of days or dimension", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn user_breakdown(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<String>,
    Query(params): Query<BreakdownParams>,
) -> Result<Json<Breakdown>> {
    let user = reports::for_admin(&state.db, &admin, &user_id).await?;
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    let (from, to) = reports::last_days(params.days, today())?;
    Ok(Json(reports::breakdown(&state.db, &user, &metric, params.dimension.as_deref(), from, to).await?))
}

/// An account's metric this period against the last (see `/app/usage/trends`).
#[utoipa::path(get, path = "/admin/usage/users/{user_id}/trends", tag = "usage", security(("bearer" = [])),
    params(("user_id" = String, Path, description = "Account id", max_length = 36), MetricParams),
    responses(
        (status = OK, description = "The trend", body = Trends),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = NOT_FOUND, description = "No such account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn user_trends(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(user_id): Path<String>,
    Query(params): Query<MetricParams>,
) -> Result<Json<Trends>> {
    let user = reports::for_admin(&state.db, &admin, &user_id).await?;
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    Ok(Json(reports::trends(&state.db, &user, &metric, today()).await?))
}

/// The accounts that used the most of a metric in a period, largest first.
#[utoipa::path(get, path = "/admin/usage/top-users", tag = "usage", security(("bearer" = [])), params(TopUsersParams),
    responses(
        (status = OK, description = "The busiest accounts", body = TopUsers),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric, a bad period or limit", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn top_users(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Query(params): Query<TopUsersParams>,
) -> Result<Json<TopUsers>> {
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    let period = reports::period(params.period.as_deref(), today())?;
    Ok(Json(reports::top_users(&state.db, &admin, &metric, period, params.limit).await?))
}
