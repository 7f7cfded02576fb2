//! `/app/users/me/export`: the caller's account and projects as JSON, built by a job.

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::exports::{self, ExportStatus};
use crate::http::extract::Json;
use crate::state::AppState;

/// The export routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(request_export)).routes(routes!(get_export))
}

/// An export being built.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExportAccepted {
    /// Poll `GET /app/users/me/export/{job_id}` (or wait for `export.ready` on `user:<id>`).
    pub job_id: Uuid,
}

/// Starts an export of the caller's account and projects (one per hour; asking again within
/// the hour returns the same job).
#[utoipa::path(post, path = "/app/users/me/export", tag = "users", security(("bearer" = [])),
    responses(
        (status = ACCEPTED, description = "The export is being built", body = ExportAccepted),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "A deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn request_export(
    State(state): State<AppState>,
    caller: CurrentUser,
) -> Result<(StatusCode, Json<ExportAccepted>)> {
    let job_id = exports::request_export(&state.db, &state.jobs, &caller).await?;
    Ok((StatusCode::ACCEPTED, Json(ExportAccepted { job_id })))
}

/// The export: 202 while it is being built, 200 with the document once ready (kept 24 h).
#[utoipa::path(get, path = "/app/users/me/export/{job_id}", tag = "users", security(("bearer" = [])),
    params(("job_id" = String, Path, description = "The export's job id", max_length = 36)),
    responses(
        (status = OK, description = "The export document", body = Object),
        (status = ACCEPTED, description = "Still being built", body = ExportAccepted),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "A deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such export of the caller's, expired or failed", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_export(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(job_id): Path<String>,
) -> Result<Response> {
    Ok(match exports::export_status(&state.db, &caller, &job_id).await? {
        ExportStatus::Pending(job_id) => (StatusCode::ACCEPTED, Json(ExportAccepted { job_id })).into_response(),
        ExportStatus::Ready(document) => Json::<Value>(document).into_response(),
    })
}
