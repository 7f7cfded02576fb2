//! `/app/usage/…`: the caller's own usage, from the per-day aggregates (v1, like billing).

use crate::api::Routes;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::state::AppState;
use crate::usage::reports::{self, Breakdown, CurrentPeriod, Daily, MetricInfo, Summary, Trends};

/// The caller's usage routes.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(list_metrics))
        .routes(routes!(current_period))
        .routes(routes!(summary))
        .routes(routes!(daily))
        .routes(routes!(breakdown))
        .routes(routes!(trends))
}

/// The metrics metered.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricList {
    /// Built-in metrics, then custom ones.
    pub metrics: Vec<MetricInfo>,
}

/// A range of days.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeParams {
    /// First day, `YYYY-MM-DD` (UTC); default: the first day of the current period.
    #[param(max_length = 10, example = "2026-11-01")]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD` (UTC), at most 366 days after `from`; default: today.
    #[param(max_length = 10, example = "2026-11-30")]
    pub to: Option<String>,
}

/// A metric over the last days.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DaysParams {
    /// A metric of `/usage/metrics`.
    #[param(required = true, max_length = 64, example = "api_requests")]
    pub metric: Option<String>,
    /// Days up to today (1 to 366, default 30).
    #[param(minimum = 1, maximum = 366, default = 30)]
    pub days: Option<i64>,
}

/// A metric's breakdown over the last days.
#[derive(Debug, Deserialize, IntoParams)]
pub struct BreakdownParams {
    /// A metric of `/usage/metrics`.
    #[param(required = true, max_length = 64, example = "api_requests")]
    pub metric: Option<String>,
    /// Days up to today (1 to 366, default 30).
    #[param(minimum = 1, maximum = 366, default = 30)]
    pub days: Option<i64>,
    /// The dimension (`endpoint`, `model`, `provider`, …); default: the first of those recorded.
    #[param(max_length = 64, example = "endpoint")]
    pub dimension: Option<String>,
}

/// A metric.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MetricParams {
    /// A metric of `/usage/metrics`.
    #[param(required = true, max_length = 64, example = "api_requests")]
    pub metric: Option<String>,
}

/// The day reports count in (UTC).
pub fn today() -> chrono::NaiveDate {
    omnistack_db::time::now().date_naive()
}

/// The metrics metered: names, descriptions, units, whether their limit refuses (`hard`) or
/// only alerts (`soft`), and whether they add up (`sum`) or are a level (`level`).
#[utoipa::path(get, path = "/app/usage/metrics", tag = "usage", security(("bearer" = [])),
    responses(
        (status = OK, description = "The metrics", body = MetricList),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_metrics(State(state): State<AppState>, _caller: CurrentUser) -> Result<Json<MetricList>> {
    Ok(Json(MetricList { metrics: reports::catalogue(&state.config.usage) }))
}

/// The current period (calendar month, UTC): each metric's total, the plan's limit, the
/// percentage used and the days remaining.
#[utoipa::path(get, path = "/app/usage/current-period", tag = "usage", security(("bearer" = [])),
    responses(
        (status = OK, description = "The current period", body = CurrentPeriod),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn current_period(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<CurrentPeriod>> {
    let user = reports::own(&caller);
    Ok(Json(reports::current_period(&state.db, &state.config.usage, user, today()).await?))
}

/// Every metric over a range of days (at most 366), exact.
#[utoipa::path(get, path = "/app/usage/summary", tag = "usage", security(("bearer" = [])), params(RangeParams),
    responses(
        (status = OK, description = "The range's totals", body = Summary),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad date or range", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<RangeParams>,
) -> Result<Json<Summary>> {
    let (from, to) = reports::range(params.from.as_deref(), params.to.as_deref(), today())?;
    Ok(Json(reports::summary(&state.db, &state.config.usage, reports::own(&caller), from, to).await?))
}

/// A metric on each of the last days, oldest first, days without usage as 0.
#[utoipa::path(get, path = "/app/usage/daily", tag = "usage", security(("bearer" = [])), params(DaysParams),
    responses(
        (status = OK, description = "The days", body = Daily),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric or a bad number of days", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn daily(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<DaysParams>,
) -> Result<Json<Daily>> {
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    let (from, to) = reports::last_days(params.days, today())?;
    Ok(Json(reports::daily(&state.db, reports::own(&caller), &metric, from, to).await?))
}

/// A metric over the last days split by one dimension: the 20 largest values and `other`.
#[utoipa::path(get, path = "/app/usage/breakdown", tag = "usage", security(("bearer" = [])), params(BreakdownParams),
    responses(
        (status = OK, description = "The breakdown", body = Breakdown),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric, a bad number of days or dimension", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn breakdown(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<BreakdownParams>,
) -> Result<Json<Breakdown>> {
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    let (from, to) = reports::last_days(params.days, today())?;
    let user = reports::own(&caller);
    Ok(Json(reports::breakdown(&state.db, user, &metric, params.dimension.as_deref(), from, to).await?))
}

/// A metric this period against the last: totals, growth, daily average, peak day.
#[utoipa::path(get, path = "/app/usage/trends", tag = "usage", security(("bearer" = [])), params(MetricParams),
    responses(
        (status = OK, description = "The trend", body = Trends),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "An unknown metric", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn trends(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<MetricParams>,
) -> Result<Json<Trends>> {
    let metric = reports::known_metric(&state.config.usage, "metric", params.metric.as_deref())?;
    Ok(Json(reports::trends(&state.db, reports::own(&caller), &metric, today()).await?))
}
