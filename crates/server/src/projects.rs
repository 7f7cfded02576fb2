//! The example resource: what a project's fields may hold, its search, and v1's offset pages.
//! Finding, deleting and keyset pages are the shared rules of [`crate::owned`].

use omnistack_db::owned::Cursor;
use omnistack_db::projects::{self, Project, ProjectChange, ProjectPage};

use crate::auth::CurrentUser;
use crate::error::{Error, FieldError, Result};
use crate::owned::{self, LIMIT, Slice, check_limit};
use crate::state::AppState;

/// What error messages call a project.
const WHAT: &str = "project";

/// Longest name, in characters as sent; it must hold a character that is not whitespace.
pub const MAX_NAME_LEN: usize = 255;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 2000;
/// Longest search string, in characters as sent (longer ones could match no name anyway).
pub const MAX_SEARCH_LEN: usize = 255;

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
    owned::find(&state.db, caller.user.id, id, WHAT).await
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

/// The caller's projects after `after` (from the newest when `None`), newest first.
pub async fn list_after(
    state: &AppState,
    caller: &CurrentUser,
    search: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Slice<Project>> {
    let problems: Vec<FieldError> = check_limit(limit)
        .into_iter()
        .chain(search.and_then(|s| FieldError::too_long("search", s, MAX_SEARCH_LEN)))
        .collect();
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let rows = projects::list_projects_after(&state.db, caller.user.id, search_term(search), after, limit + 1).await?;
    Ok(Slice::of(rows, limit))
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
    let id = owned::parse_id(id, WHAT)?;
    check(name, description)?;
    let name = name.map(str::trim);
    let change = ProjectChange { name, description };
    projects::update_project(&state.db, caller.user.id, id, &change).await?.ok_or_else(|| owned::not_found(WHAT))
}

/// Soft-deletes one of the caller's projects.
pub async fn delete(state: &AppState, caller: &CurrentUser, id: &str) -> Result<()> {
    owned::delete::<Project>(&state.db, caller.user.id, id, WHAT).await
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
