//! The example resource. Copy this module (with `omnistack_db::projects` and
//! `api/v1/projects.rs`) to add your own owned, paginated, soft-deleted resource.

use omnistack_db::projects::{self, Project, ProjectChange, ProjectCursor, ProjectPage};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{Error, FieldError, Result};
use crate::state::AppState;

/// Longest name, in characters as sent; it must hold a character that is not whitespace.
pub const MAX_NAME_LEN: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2000;
/// Longest search string, in characters as sent (longer ones could match no name anyway).
pub const MAX_SEARCH_LEN: usize = 255;
/// Page sizes.
pub const LIMIT: std::ops::RangeInclusive<i64> = 1..=100;

/// Creates a project owned by the caller.
pub async fn create(state: &AppState, caller: &CurrentUser, name: &str, description: Option<&str>) -> Result<Project> {
    check(Some(name), description.map(Some))?;
    let name = name.trim();
    let project = projects::insert_project(&state.db, caller.user.id, name, description).await?;
    // A custom business metric is one line (described in `telemetry::metrics::describe`).
    metrics::counter!("omnistack_projects_created_total").increment(1);
    Ok(project)
}

/// One of the caller's projects. Another account's, a deleted or a malformed id: 404.
pub async fn get(state: &AppState, caller: &CurrentUser, id: &str) -> Result<Project> {
    let id = parse_id(id)?;
    projects::find_project(&state.db, caller.user.id, id).await?.ok_or_else(not_found)
}

/// A page of the caller's projects, newest first.
pub async fn list(
    state: &AppState,
    caller: &CurrentUser,
    search: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<ProjectPage> {
    let mut problems = FieldError::page(skip, limit, *LIMIT.end());
    problems.extend(search.and_then(|s| FieldError::too_long("search", s, MAX_SEARCH_LEN)));
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    Ok(projects::list_projects(&state.db, caller.user.id, search_term(search), skip, limit).await?)
}

/// A page of the caller's projects in keyset order, and where the next one starts.
#[derive(Clone, Debug)]
pub struct ProjectSlice {
    /// At most `limit` projects, newest first.
    pub items: Vec<Project>,
    /// The last item's position when more projects follow; `None` on the last page.
    pub next: Option<ProjectCursor>,
}

/// The caller's projects after `after` (from the newest when `None`), newest first.
pub async fn list_after(
    state: &AppState,
    caller: &CurrentUser,
    search: Option<&str>,
    after: Option<ProjectCursor>,
    limit: i64,
) -> Result<ProjectSlice> {
    let problems: Vec<FieldError> = check_limit(limit)
        .into_iter()
        .chain(search.and_then(|s| FieldError::too_long("search", s, MAX_SEARCH_LEN)))
        .collect();
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    // One row more than asked says whether another page follows.
    let mut items =
        projects::list_projects_after(&state.db, caller.user.id, search_term(search), after, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = if more { items.last().map(ProjectCursor::from) } else { None };
    Ok(ProjectSlice { items, next })
}

fn check_limit(limit: i64) -> Option<FieldError> {
    (!LIMIT.contains(&limit))
        .then(|| FieldError::new("limit", format!("must be from {} to {}", LIMIT.start(), LIMIT.end())))
}

fn search_term(search: Option<&str>) -> Option<&str> {
    search.map(str::trim).filter(|s| !s.is_empty())
}

/// Changes one of the caller's projects.
pub async fn update(
    state: &AppState,
    caller: &CurrentUser,
    id: &str,
    name: Option<&str>,
    description: Option<Option<&str>>,
) -> Result<Project> {
    let id = parse_id(id)?;
    check(name, description)?;
    let name = name.map(str::trim);
    let change = ProjectChange { name, description };
    projects::update_project(&state.db, caller.user.id, id, &change).await?.ok_or_else(not_found)
}

/// Soft-deletes one of the caller's projects.
pub async fn delete(state: &AppState, caller: &CurrentUser, id: &str) -> Result<()> {
    let id = parse_id(id)?;
    if projects::delete_project(&state.db, caller.user.id, id).await? { Ok(()) } else { Err(not_found()) }
}

fn check(name: Option<&str>, description: Option<Option<&str>>) -> Result<()> {
    let mut problems = Vec::new();
    // Counted as sent; blank once trimmed is empty.
    if let Some(name) = name
        && (name.trim().is_empty() || name.chars().count() > MAX_NAME_LEN)
    {
        problems.push(FieldError::new("name", format!("must be 1 to {MAX_NAME_LEN} characters")));
    }
    problems.extend(description.flatten().and_then(|d| FieldError::too_long("description", d, MAX_DESCRIPTION_LEN)));
    if problems.is_empty() { Ok(()) } else { Err(Error::Validation(problems)) }
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Error {
    Error::NotFound("project not found".into())
}
