//! The example resource: projects owned by one account, soft-deleted.
//!
//! Every query is scoped to the owner, so another account's project is simply not found.
//! Finding, deleting and plain pages are the shared [`crate::owned`] statements.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::owned::{Cursor, Owned};
use crate::{Db, Result, time, traced_pool};

/// A row of `projects`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    /// UUIDv7.
    pub id: Uuid,
    /// The owning account.
    pub owner_id: Uuid,
    /// 1..=255 characters.
    pub name: String,
    /// At most 2000 characters.
    pub description: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One page of an owner's projects, newest first.
#[derive(Clone, Debug)]
pub struct ProjectPage {
    /// The page.
    pub items: Vec<Project>,
    /// All matching projects, across pages.
    pub total: i64,
}

impl Owned for Project {
    const TABLE: &'static str = "projects";
    const COLUMNS: &'static str = COLUMNS;
    const DELETED_AT: Option<&'static str> = Some("deleted_at");

    fn cursor(&self) -> Cursor {
        Cursor { created_at: self.created_at, id: self.id }
    }
}

const COLUMNS: &str = "id, owner_id, name, description, created_at, updated_at";

/// The owner's (`$1`) live projects whose name or description contains the lowercased,
/// LIKE-escaped pattern `$2` (any project when `$2` is NULL).
const LIVE_AND_MATCHING: &str = "owner_id = $1 AND deleted_at IS NULL
     AND ($2 IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\' OR LOWER(COALESCE(description, '')) LIKE $2 ESCAPE '\\')";

/// Creates a project.
pub async fn insert_project(db: &Db, owner_id: Uuid, name: &str, description: Option<&str>) -> Result<Project> {
    let now = time::now();
    let sql = format!(
        "INSERT INTO projects (id, owner_id, name, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    );
    Ok(traced_pool!(db, "INSERT", "projects", &sql, |pool| sqlx::query_as::<_, Project>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(Uuid::now_v7())
    .bind(owner_id)
    .bind(name)
    .bind(description)
    .bind(now)
    .fetch_one(pool)
    .await?))
}

/// The owner's live projects, newest first, optionally filtered by a case-insensitive
/// substring of name or description.
pub async fn list_projects(
    db: &Db,
    owner_id: Uuid,
    search: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<ProjectPage> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        project: Project,
        total: i64,
    }
    let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    // The total rides along on every row of the page (one round trip); only a page past the
    // end needs the separate count.
    let list = format!(
        "SELECT {COLUMNS}, COUNT(*) OVER () AS total FROM projects WHERE {LIVE_AND_MATCHING}
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4"
    );
    let rows = traced_pool!(db, "SELECT", "projects", &list, |pool| sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(
        list.as_str()
    ))
    .bind(owner_id)
    .bind(pattern.as_deref())
    .bind(limit)
    .bind(skip)
    .fetch_all(pool)
    .await?);
    let total = match rows.first() {
        Some(row) => row.total,
        None if skip == 0 => 0,
        None => {
            let count = format!("SELECT COUNT(*) FROM projects WHERE {LIVE_AND_MATCHING}");
            traced_pool!(db, "SELECT", "projects", &count, |pool| sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(
                count.as_str()
            ))
            .bind(owner_id)
            .bind(pattern.as_deref())
            .fetch_one(pool)
            .await?
            .0)
        }
    };
    Ok(ProjectPage { items: rows.into_iter().map(|row| row.project).collect(), total })
}

/// At most `limit` of the owner's live projects that come after `after` in the newest-first
/// order (`created_at DESC, id DESC`), from the start when `after` is `None`; the same search
/// as [`list_projects`]. Keyset paging: no offset to skip, stable while rows are added.
pub async fn list_projects_after(
    db: &Db,
    owner_id: Uuid,
    search: Option<&str>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<Project>> {
    let pattern = search.map(|s| format!("%{}%", escape_like(&s.to_lowercase())));
    // Row values compare (created_at, id) as a pair on both engines; SQLite's RFC 3339 text
    // sorts like the time it holds, its UUID blobs like PostgreSQL's UUIDs.
    let sql = format!(
        "SELECT {COLUMNS} FROM projects WHERE {LIVE_AND_MATCHING} AND ($3 IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    );
    Ok(traced_pool!(db, "SELECT", "projects", &sql, |pool| sqlx::query_as::<_, Project>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(owner_id)
    .bind(pattern.as_deref())
    .bind(after.map(|a| a.created_at))
    .bind(after.map(|a| a.id))
    .bind(limit)
    .fetch_all(pool)
    .await?))
}

/// Fields to change; `None` leaves a field as it is, `Some(None)` clears the description.
#[derive(Clone, Debug, Default)]
pub struct ProjectChange<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New description.
    pub description: Option<Option<&'a str>>,
}

/// Updates the owner's live project.
pub async fn update_project(db: &Db, owner_id: Uuid, id: Uuid, change: &ProjectChange<'_>) -> Result<Option<Project>> {
    let sql = format!(
        "UPDATE projects SET name = COALESCE($3, name),
                description = CASE WHEN $4 THEN $5 ELSE description END,
                updated_at = $6
         WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL RETURNING {COLUMNS}"
    );
    Ok(traced_pool!(db, "UPDATE", "projects", &sql, |pool| sqlx::query_as::<_, Project>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(id)
    .bind(owner_id)
    .bind(change.name)
    .bind(change.description.is_some())
    .bind(change.description.flatten())
    .bind(time::now())
    .fetch_optional(pool)
    .await?))
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Deletes for good the projects soft-deleted before `before`; returns how many.
pub async fn purge_deleted_projects(db: &Db, before: DateTime<Utc>) -> Result<u64> {
    const SQL: &str = "DELETE FROM projects WHERE deleted_at < $1";
    Ok(traced_pool!(db, "DELETE", "projects", SQL, |pool| sqlx::query(SQL)
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
}

/// Every live project of the owner, oldest first (an account export).
pub async fn list_all_projects(db: &Db, owner_id: Uuid) -> Result<Vec<Project>> {
    let sql =
        format!("SELECT {COLUMNS} FROM projects WHERE owner_id = $1 AND deleted_at IS NULL ORDER BY created_at, id");
    Ok(traced_pool!(db, "SELECT", "projects", &sql, |pool| sqlx::query_as::<_, Project>(sqlx::AssertSqlSafe(
        sql.as_str()
    ))
    .bind(owner_id)
    .fetch_all(pool)
    .await?))
}
