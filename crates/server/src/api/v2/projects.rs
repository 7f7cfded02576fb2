//! `/app/projects` in v2: enveloped bodies (the project inside is v1's shape) and keyset
//! pagination with an opaque cursor instead of `skip`/`total`.

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::cursor;
use super::envelope::{Envelope, Page, enveloped, page};
use crate::api::v1;
use crate::api::v1::projects::{CreateProjectRequest, ProjectResponse, UpdateProjectRequest};
use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::projects;
use crate::state::AppState;

/// The project routes; `DELETE` is v1's (no body).
pub fn routes() -> Routes {
    Routes::new().routes(routes!(list_projects, create_project)).routes(routes!(
        get_project,
        update_project,
        v1::projects::delete_project
    ))
}

/// Paging and search.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `meta.next_cursor` of the previous page; omitted or empty for the first page.
    #[param(max_length = 128)]
    pub cursor: Option<String>,
    /// Page size (1..=100).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// Case-insensitive substring of name or description.
    #[param(max_length = 255)]
    pub search: Option<String>,
}

/// The caller's projects, newest first, a page at a time.
#[utoipa::path(get, path = "/app/projects", tag = "projects", security(("bearer" = [])), params(ListParams),
    responses(
        (status = OK, body = Page<ProjectResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad limit or a cursor this API did not return", body = ErrorBody),
    ))]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<ProjectResponse>>> {
    let after = cursor::position(params.cursor.as_deref())?;
    let slice =
        projects::list_after(&state, &caller, params.search.as_deref(), after, params.limit.unwrap_or(20)).await?;
    Ok(page(slice.items.into_iter().map(Into::into).collect(), cursor::next(slice.next)))
}

/// Creates a project.
#[utoipa::path(post, path = "/app/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProjectRequest,
    responses(
        (status = CREATED, body = Envelope<ProjectResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<CreateProjectRequest>,
) -> Result<(StatusCode, Json<Envelope<ProjectResponse>>)> {
    let project = projects::create(&state, &caller, &body.name, body.description.as_deref()).await?;
    Ok((StatusCode::CREATED, enveloped(project.into())))
}

/// One of the caller's projects.
#[utoipa::path(get, path = "/app/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id; any other text is 404")),
    responses(
        (status = OK, body = Envelope<ProjectResponse>),
        (status = NOT_FOUND, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
    ))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Envelope<ProjectResponse>>> {
    Ok(enveloped(projects::get(&state, &caller, &id).await?.into()))
}

/// Changes one of the caller's projects.
#[utoipa::path(patch, path = "/app/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id; any other text is 404")), request_body = UpdateProjectRequest,
    responses(
        (status = OK, body = Envelope<ProjectResponse>),
        (status = NOT_FOUND, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn update_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateProjectRequest>,
) -> Result<Json<Envelope<ProjectResponse>>> {
    let description = body.description.as_ref().map(|d| d.as_deref());
    Ok(enveloped(projects::update(&state, &caller, &id, body.name.as_deref(), description).await?.into()))
}
