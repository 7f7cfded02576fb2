//! `/admin/dashboard/stats`: the admin dashboard in one reading.

use crate::api::Routes;
use axum::extract::State;
use utoipa_axum::routes;

use crate::admin::dashboard::{DashboardStats, Sources};
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::state::AppState;

/// The dashboard route.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(dashboard_stats))
}

/// Accounts, subscriptions, jobs, requests, realtime and system health (a reading taken at
/// most 5 s before, or up to 15 s before while a new one is being taken). Subscribers of the
/// realtime channel `admin:dashboard` receive the same body every 5 s as a `dashboard.stats`
/// message.
#[utoipa::path(get, path = "/admin/dashboard/stats", tag = "dashboard", security(("bearer" = [])),
    responses(
        (status = OK, description = "The dashboard", body = DashboardStats),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn dashboard_stats(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
) -> Result<Json<DashboardStats>> {
    let sources = Sources { db: state.db.clone(), redis: state.redis.clone(), hub: state.realtime.clone() };
    Ok(Json(DashboardStats::clone(&*state.dashboard.stats(&admin, &sources).await?)))
}
