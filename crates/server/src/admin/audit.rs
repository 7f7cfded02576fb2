//! The audit log: who did what, written in the transaction of the change it records, chained
//! by hash so that editing or deleting any entry is detectable ([`verify`]). Append-only: no
//! route updates or deletes an entry; retention (archiving old entries) is an operator's job
//! done outside the API (see `docs/OPERATIONS.md`).
//!
//! Other services call [`record`] with an [`AuditEntry`]; handlers pass them an
//! [`AuditContext`] (client IP, user agent, request id).

mod chain;
pub mod export;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use chrono::{DateTime, Utc};
use omnistack_db::audit::{self as db_audit, AuditFilter, AuditRow, ChainHead, GENESIS_HASH};
use omnistack_db::{Db, Tx, dialect};
use uuid::Uuid;

pub use chain::{canonical_json, entry_hash};

use crate::auth::{CurrentUser, Role};
use crate::error::{Error, FieldError, Result};
use crate::rate_limit;
use crate::state::AppState;
use crate::telemetry::request_id;

/// The longest user agent stored, in bytes (cut at a character boundary).
pub const MAX_USER_AGENT_LEN: usize = 512;
/// The longest resource id stored, in characters.
const MAX_RESOURCE_ID_LEN: usize = 200;
/// The most entries one page holds.
pub const MAX_PAGE: i64 = 100;
/// Entries `verify` reads per query.
const VERIFY_BATCH: i64 = 1000;

/// Who acted. All `None` for an anonymous caller (a failed sign-in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Actor {
    /// The account.
    pub id: Option<Uuid>,
    /// Its email then.
    pub email: Option<String>,
    /// Its role then.
    pub role: Option<String>,
}

impl Actor {
    /// Nobody signed in.
    pub fn anonymous() -> Actor {
        Actor::default()
    }

    /// An account acting as itself.
    pub fn user(user: &omnistack_db::users::User) -> Actor {
        Actor { id: Some(user.id), email: user.shown_email().map(str::to_owned), role: Some(user.role.clone()) }
    }

    /// The caller; for an impersonated request, the admin behind it.
    pub fn of(caller: &CurrentUser) -> Actor {
        match &caller.impersonation {
            Some(by) => {
                Actor { id: Some(by.admin_id), email: by.admin_email.clone(), role: Some(by.admin_role.clone()) }
            }
            None => Actor::user(&caller.user),
        }
    }
}

/// One entry to record.
#[derive(Clone, Debug)]
pub struct AuditEntry {
    /// Who acted.
    pub actor: Actor,
    /// The user an impersonating admin acted as.
    pub impersonated_user_id: Option<Uuid>,
    /// `user.updated`, `auth.login`, …
    pub action: &'static str,
    /// `user`, `job`, `impersonation`, …
    pub resource_type: &'static str,
    /// The resource's id.
    pub resource_id: Option<String>,
    /// What changed (JSON; hashed as canonical JSON).
    pub details: serde_json::Value,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
}

impl AuditEntry {
    /// An entry by `caller` (the admin and the user when impersonated) from `context`.
    pub fn by(
        caller: &CurrentUser,
        context: &AuditContext,
        action: &'static str,
        resource_type: &'static str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            actor: Actor::of(caller),
            impersonated_user_id: caller.impersonation.as_ref().map(|_| caller.user.id),
            ..AuditEntry::new(Actor::default(), context, action, resource_type, Some(resource_id.to_string()), details)
        }
    }

    /// An entry by `actor` from `context`.
    pub fn new(
        actor: Actor,
        context: &AuditContext,
        action: &'static str,
        resource_type: &'static str,
        resource_id: Option<String>,
        details: serde_json::Value,
    ) -> AuditEntry {
        AuditEntry {
            actor,
            impersonated_user_id: None,
            action,
            resource_type,
            resource_id,
            details,
            ip: context.ip.clone(),
            user_agent: context.user_agent.clone(),
            request_id: context.request_id.clone(),
        }
    }
}

/// Where a request comes from, for its audit entries: the client IP (as the rate limiter sees
/// it, `TRUSTED_PROXIES` applied), the user agent (at most 512 bytes) and the request id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditContext {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent, bounded.
    pub user_agent: Option<String>,
    /// Request id.
    pub request_id: Option<String>,
}

impl AuditContext {
    /// The context from what a handler already has.
    pub fn new(ip: Option<&str>, user_agent: Option<&str>) -> AuditContext {
        let request_id = request_id::current();
        AuditContext {
            ip: ip.map(str::to_owned),
            user_agent: user_agent.map(|ua| truncate(ua, MAX_USER_AGENT_LEN).to_owned()),
            request_id: (!request_id.is_empty()).then_some(request_id),
        }
    }

    /// The context of a request, from its extensions (the peer address) and headers, with the
    /// state's trusted proxies.
    pub fn of_extensions(extensions: &Extensions, headers: &HeaderMap, state: &AppState) -> AuditContext {
        let ip = extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(peer)| {
            rate_limit::client_ip(*peer, headers, state.limiter.trusted_proxies()).to_string()
        });
        let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok());
        AuditContext::new(ip.as_deref(), user_agent)
    }
}

impl FromRequestParts<AppState> for AuditContext {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Ok(AuditContext::of_extensions(&parts.extensions, &parts.headers, state))
    }
}

/// `text` cut to at most `max` bytes at a character boundary.
fn truncate(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Appends `entry` to the chain in the caller's transaction: it commits (or rolls back) with
/// the change it records. Appends from every instance queue on the chain head's lock, so the
/// chain stays one.
pub async fn record(tx: &mut Tx, entry: AuditEntry) -> Result<()> {
    let head = dialect::lock_audit_chain_head(tx).await?;
    let resource_id = entry.resource_id.map(|id| id.chars().take(MAX_RESOURCE_ID_LEN).collect::<String>());
    let mut row = AuditRow {
        id: Uuid::now_v7(),
        seq: head.seq + 1,
        occurred_at: omnistack_db::time::now(),
        actor_id: entry.actor.id,
        actor_email: entry.actor.email,
        actor_role: entry.actor.role,
        impersonated_user_id: entry.impersonated_user_id,
        action: entry.action.to_owned(),
        resource_type: entry.resource_type.to_owned(),
        resource_id,
        details: canonical_json(&entry.details),
        ip: entry.ip,
        user_agent: entry.user_agent.map(|ua| truncate(&ua, MAX_USER_AGENT_LEN).to_owned()),
        request_id: entry.request_id,
        prev_hash: head.hash,
        hash: String::new(),
    };
    row.hash = entry_hash(&row).ok_or_else(|| anyhow::anyhow!("audit details are not JSON"))?;
    db_audit::insert_entry(tx, &row).await?;
    db_audit::advance_chain_head(tx, &ChainHead { seq: row.seq, hash: row.hash }).await?;
    metrics::counter!("omnistack_audit_entries_total", "action" => entry.action).increment(1);
    Ok(())
}

/// [`record`] in a transaction of its own, for events that change nothing else (a failed
/// sign-in, an impersonated request already answered).
pub async fn record_alone(db: &Db, entry: AuditEntry) -> Result<()> {
    let mut tx = db.begin().await?;
    record(&mut tx, entry).await?;
    tx.commit().await?;
    Ok(())
}

/// The filters of a listing or export, as sent.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only this actor (a UUID).
    pub actor_id: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only this resource id.
    pub resource_id: Option<String>,
    /// At or after (RFC 3339).
    pub since: Option<String>,
    /// At or before (RFC 3339).
    pub until: Option<String>,
}

/// Checked filters.
#[derive(Clone, Debug, Default)]
pub struct CheckedQuery {
    actor_id: Option<Uuid>,
    action: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl CheckedQuery {
    /// As the database filter.
    pub fn filter(&self) -> AuditFilter<'_> {
        AuditFilter {
            actor_id: self.actor_id,
            action: self.action.as_deref(),
            resource_type: self.resource_type.as_deref(),
            resource_id: self.resource_id.as_deref(),
            since: self.since,
            until: self.until,
        }
    }
}

impl AuditQuery {
    /// 422 naming every bad filter; empty values mean no filter.
    pub fn check(self) -> Result<CheckedQuery, Vec<FieldError>> {
        let mut problems = Vec::new();
        let present = |v: Option<String>| v.filter(|s| !s.is_empty());
        let mut text = |field: &str, value: Option<String>, max: usize| {
            let value = present(value);
            if let Some(problem) = value.as_deref().and_then(|v| FieldError::too_long(field, v, max)) {
                problems.push(problem);
            }
            value
        };
        let action = text("action", self.action, 100);
        let resource_type = text("resource_type", self.resource_type, 100);
        let resource_id = text("resource_id", self.resource_id, MAX_RESOURCE_ID_LEN);
        let actor_id = match present(self.actor_id) {
            Some(id) => {
                Uuid::parse_str(&id).map_err(|_| problems.push(FieldError::new("actor_id", "must be a UUID"))).ok()
            }
            None => None,
        };
        let mut moment = |field: &str, value: Option<String>| match present(value) {
            Some(v) => DateTime::parse_from_rfc3339(&v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| problems.push(FieldError::new(field, "must be an RFC 3339 timestamp")))
                .ok(),
            None => None,
        };
        let since = moment("since", self.since);
        let until = moment("until", self.until);
        if problems.is_empty() {
            Ok(CheckedQuery { actor_id, action, resource_type, resource_id, since, until })
        } else {
            Err(problems)
        }
    }
}

/// One page of entries, newest first.
#[derive(Debug)]
pub struct AuditPage {
    /// The page.
    pub items: Vec<AuditRow>,
    /// Entries matching the filters, across pages.
    pub total: i64,
}

/// A page of entries matching `query` (admins).
pub async fn list_entries(
    db: &Db,
    caller: &CurrentUser,
    query: AuditQuery,
    skip: i64,
    limit: i64,
) -> Result<AuditPage> {
    caller.require(Role::Admin)?;
    let mut problems = FieldError::page(skip, limit, MAX_PAGE);
    let checked = query.check().map_err(|p| problems.extend(p)).ok();
    let (Some(checked), true) = (checked, problems.is_empty()) else { return Err(Error::Validation(problems)) };
    let (items, total) = db_audit::list_entries(db, &checked.filter(), skip, limit).await?;
    Ok(AuditPage { items, total })
}

/// One entry (admins); a malformed or unknown id is 404.
pub async fn find_entry(db: &Db, caller: &CurrentUser, id: &str) -> Result<AuditRow> {
    caller.require(Role::Admin)?;
    let not_found = || Error::NotFound("audit entry not found".into());
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    db_audit::find_entry(db, id).await?.ok_or_else(not_found)
}

/// The outcome of [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Whether every entry links to its predecessor and carries its own hash.
    pub valid: bool,
    /// Entries checked.
    pub checked: i64,
    /// The first entry that does not (for a deleted last entry, the one left last).
    pub first_invalid_id: Option<Uuid>,
}

/// Walks the chain in batches, up to the head as it was when the walk began, and reports the
/// first entry whose hash or link is wrong (super admins).
pub async fn verify(db: &Db, caller: &CurrentUser) -> Result<Verification> {
    caller.require(Role::SuperAdmin)?;
    let head = db_audit::find_chain_head(db).await?;
    let (mut prev_seq, mut prev_hash, mut checked, mut last_id) = (0, GENESIS_HASH.to_owned(), 0, None);
    'walk: while prev_seq < head.seq {
        let batch = db_audit::list_chain_after(db, prev_seq, VERIFY_BATCH).await?;
        if batch.is_empty() {
            break;
        }
        for row in batch {
            if row.seq > head.seq {
                break 'walk;
            }
            let intact = row.seq == prev_seq + 1
                && row.prev_hash == prev_hash
                && entry_hash(&row).is_some_and(|hash| hash == row.hash);
            if !intact {
                return Ok(Verification { valid: false, checked, first_invalid_id: Some(row.id) });
            }
            checked += 1;
            (prev_seq, prev_hash, last_id) = (row.seq, row.hash, Some(row.id));
        }
    }
    // Entries removed from the end leave the head pointing past the last one.
    if prev_seq != head.seq || prev_hash != head.hash {
        return Ok(Verification { valid: false, checked, first_invalid_id: last_id });
    }
    Ok(Verification { valid: true, checked, first_invalid_id: None })
}
