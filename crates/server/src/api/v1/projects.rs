//! `/app/projects`: the example resource (owned, paginated, soft-deleted).

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::projects::Project;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query, nullable};
use crate::projects;
use crate::state::AppState;

/// The project routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(list_projects, create_project)).routes(routes!(
        get_project,
        update_project,
        delete_project
    ))
}

/// A project.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectResponse {
    /// Project id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// The owning account.
    pub owner_id: Uuid,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectResponse {
    fn from(p: Project) -> Self {
        ProjectResponse {
            id: p.id,
            name: p.name,
            description: p.description,
            owner_id: p.owner_id,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A page of projects.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectListResponse {
    /// This page, newest first.
    pub items: Vec<ProjectResponse>,
    /// Matching projects across all pages.
    pub total: i64,
    /// Offset of this page.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Paging and search.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Projects to skip (≥ 0).
    #[param(minimum = 0, default = 0)]
    pub skip: Option<i64>,
    /// Page size (1..=100).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// Case-insensitive substring of name or description.
    #[param(max_length = 255)]
    pub search: Option<String>,
}

/// A new project.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProjectRequest {
    /// 1 to 255 characters, not all whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*[^\x00\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: String,
    /// At most 2000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Fields to change; omitted fields stay, a `null` description clears it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProjectRequest {
    /// 1 to 255 characters, not all whitespace (stored trimmed).
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00]*[^\x00\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00]*$"
    )]
    pub name: Option<String>,
    /// At most 2000 characters.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
}

/// The caller's projects, newest first.
#[utoipa::path(get, path = "/app/projects", tag = "projects", security(("bearer" = [])), params(ListParams),
    responses(
        (status = OK, body = ProjectListResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn list_projects(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<Json<ProjectListResponse>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let page = projects::list(&state, &caller, params.search.as_deref(), skip, limit).await?;
    let items = page.items.into_iter().map(Into::into).collect();
    Ok(Json(ProjectListResponse { items, total: page.total, skip, limit }))
}

/// Creates a project.
#[utoipa::path(post, path = "/app/projects", tag = "projects", security(("bearer" = [])),
    request_body = CreateProjectRequest,
    responses(
        (status = CREATED, body = ProjectResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn create_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<CreateProjectRequest>,
) -> Result<(StatusCode, Json<ProjectResponse>)> {
    let project = projects::create(&state, &caller, &body.name, body.description.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(project.into())))
}

/// One of the caller's projects.
#[utoipa::path(get, path = "/app/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id; any other text is 404")),
    responses((status = OK, body = ProjectResponse), (status = NOT_FOUND, body = ErrorBody), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn get_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ProjectResponse>> {
    Ok(Json(projects::get(&state, &caller, &id).await?.into()))
}

/// Changes one of the caller's projects.
#[utoipa::path(patch, path = "/app/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id; any other text is 404")), request_body = UpdateProjectRequest,
    responses(
        (status = OK, body = ProjectResponse),
        (status = NOT_FOUND, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn update_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
    Json(body): Json<UpdateProjectRequest>,
) -> Result<Json<ProjectResponse>> {
    let description = body.description.as_ref().map(|d| d.as_deref());
    Ok(Json(projects::update(&state, &caller, &id, body.name.as_deref(), description).await?.into()))
}

/// Deletes one of the caller's projects (soft delete).
#[utoipa::path(delete, path = "/app/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Project id; any other text is 404")),
    responses((status = NO_CONTENT, description = "Deleted"), (status = NOT_FOUND, body = ErrorBody), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn delete_project(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    projects::delete(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
