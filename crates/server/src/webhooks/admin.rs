//! The webhook log as admins use it: list (by provider and status), inspect (allow-listed
//! headers, payload, attempts, last error) and replay (process again; audited
//! `webhook.replayed` in the replay's transaction). Every function checks the caller's role.

use omnistack_db::Db;
use omnistack_db::webhook_events::{self, STATUSES, WebhookEvent, WebhookEventFilter, WebhookEventSummary};
use serde_json::json;
use uuid::Uuid;

use super::Provider;
use super::process::{ProcessWebhookEvent, WebhookEventArgs};
use crate::admin::audit::{self, AuditContext, AuditEntry};
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};
use crate::jobs::{Enqueue, Jobs};

/// The most events one page holds.
pub const MAX_PAGE: i64 = 100;

/// One page of events, newest first.
#[derive(Debug)]
pub struct WebhookPage {
    /// The page.
    pub items: Vec<WebhookEventSummary>,
    /// Events matching, across pages.
    pub total: i64,
}

/// A page of events, by provider and status (admins).
pub async fn list_events(
    db: &Db,
    caller: &CurrentUser,
    provider: Option<&str>,
    status: Option<&str>,
    skip: i64,
    limit: i64,
) -> Result<WebhookPage> {
    caller.require(Role::Admin)?;
    let mut problems = FieldError::page(skip, limit, MAX_PAGE);
    let provider = provider.filter(|p| !p.is_empty());
    if provider.is_some_and(|p| Provider::parse(p).is_none()) {
        let names: Vec<_> = Provider::ALL.iter().map(|p| p.as_str()).collect();
        problems.push(FieldError::new("provider", format!("must be one of {}", names.join(", "))));
    }
    let status = status.filter(|s| !s.is_empty());
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        problems.push(FieldError::new("status", format!("must be one of {}", STATUSES.join(", "))));
    }
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let (items, total) = webhook_events::list_events(db, WebhookEventFilter { provider, status }, skip, limit).await?;
    Ok(WebhookPage { items, total })
}

/// One event (admins); a malformed or unknown id is 404.
pub async fn find_event(db: &Db, caller: &CurrentUser, id: &str) -> Result<WebhookEvent> {
    caller.require(Role::Admin)?;
    webhook_events::find_event(db, parse_id(id)?).await?.ok_or_else(not_found)
}

/// Processes an event again (admins): back to `received`, a `webhook_event` job enqueued and
/// the replay audited, in one transaction. Wake the workers after it returns.
pub async fn replay_event(
    db: &Db,
    jobs: &Jobs,
    caller: &CurrentUser,
    context: &AuditContext,
    id: &str,
) -> Result<WebhookEvent> {
    caller.require(Role::Admin)?;
    let id = parse_id(id)?;
    let before = webhook_events::find_event(db, id).await?.ok_or_else(not_found)?;
    let mut tx = db.begin().await?;
    let event = webhook_events::mark_replayed(&mut tx, id).await?.ok_or_else(not_found)?;
    jobs.enqueue::<ProcessWebhookEvent>(&mut tx, &WebhookEventArgs { event: id }, Enqueue::default()).await?;
    let details = json!({
        "provider": event.provider,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "from": before.status,
    });
    audit::record(&mut tx, AuditEntry::by(caller, context, "webhook.replayed", "webhook_event", id, details)).await?;
    tx.commit().await?;
    tracing::info!(webhook.id = %id, admin.id = %caller.user.id, "webhook replayed by an admin");
    Ok(event)
}

fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found())
}

fn not_found() -> Error {
    Error::NotFound("webhook event not found".into())
}
