//! What admins do with submissions: list them (by status, newest first), read one, set its
//! status. Every function checks the caller's role itself, whatever the route in front of it.

use omnistack_db::Db;
use omnistack_db::contact::{self as db_contact, ContactSubmission};
use serde_json::json;
use uuid::Uuid;

use crate::admin::audit::{self, AuditContext, AuditEntry};
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};

/// A submission's possible statuses.
pub const STATUSES: [&str; 5] = ["new", "read", "replied", "spam", "archived"];
/// The most submissions one page holds.
pub const MAX_PAGE: i64 = 100;

/// One page of submissions, newest first.
#[derive(Debug)]
pub struct SubmissionPage {
    /// The page.
    pub items: Vec<ContactSubmission>,
    /// Submissions matching the filter, across pages.
    pub total: i64,
}

fn status_error() -> FieldError {
    FieldError::new("status", format!("must be one of {}", STATUSES.join(", ")))
}

/// A page of submissions, only those with `status` when given.
pub async fn list_submissions(
    db: &Db,
    caller: &CurrentUser,
    status: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<SubmissionPage> {
    caller.require(Role::Admin)?;
    let status = status.filter(|s| !s.is_empty());
    let mut problems = Vec::new();
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        problems.push(status_error());
    }
    problems.extend(FieldError::page(skip, limit, MAX_PAGE));
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let (items, total) = db_contact::list_submissions(db, status, skip, limit).await?;
    Ok(SubmissionPage { items, total })
}

/// One submission; a malformed or unknown id is 404.
pub async fn find_submission(db: &Db, caller: &CurrentUser, id: &str) -> Result<ContactSubmission> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    db_contact::find_submission(db, id).await?.ok_or_else(not_found)
}

/// Sets a submission's status (`new`, `read`, `replied`, `spam` or `archived`), audited
/// (`contact.status_changed`) in the change's transaction.
pub async fn set_status(
    db: &Db,
    caller: &CurrentUser,
    context: &AuditContext,
    id: &str,
    status: &str,
) -> Result<ContactSubmission> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    if !STATUSES.contains(&status) {
        return Err(Error::Validation(vec![status_error()]));
    }
    let before = db_contact::find_submission(db, id).await?.ok_or_else(not_found)?;
    let mut tx = db.begin().await?;
    let submission = db_contact::set_submission_status(&mut tx, id, status).await?.ok_or_else(not_found)?;
    let details = json!({"reference_id": submission.reference_id, "from": before.status, "to": status});
    let entry = AuditEntry::by(caller, context, "contact.status_changed", "contact_submission", id, details);
    audit::record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(submission)
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Error {
    Error::NotFound("no such contact submission".into())
}
