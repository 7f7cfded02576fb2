//! The CSV export of the audit log: streamed in keyset batches (never the whole table in
//! memory), every cell quoted as RFC 4180 wants and defused against formula injection (a cell
//! starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`).

use axum::body::Bytes;
use chrono::SecondsFormat;
use futures::Stream;
use omnistack_db::Db;
use omnistack_db::audit::{self as db_audit, AuditRow};

use super::{AuditQuery, CheckedQuery};
use crate::auth::{CurrentUser, Role};
use crate::error::{Error, Result};

/// Entries read per query while streaming.
const BATCH: i64 = 500;

/// The header row.
pub const HEADER: &str = "id,seq,occurred_at,actor_id,actor_email,actor_role,impersonated_user_id,action,\
resource_type,resource_id,details,ip,user_agent,request_id,prev_hash,hash\r\n";

/// Checks the caller (admins) and the filters before the first byte is sent, so a refusal is
/// still an error response.
pub fn start_export(caller: &CurrentUser, query: AuditQuery) -> Result<CheckedQuery> {
    caller.require(Role::Admin)?;
    query.check().map_err(Error::Validation)
}

/// The CSV, newest entry first, as a stream of chunks (one per batch).
pub fn export_csv(db: Db, query: CheckedQuery) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    struct Cursor {
        db: Db,
        query: CheckedQuery,
        before: Option<i64>,
        started: bool,
        done: bool,
    }
    let cursor = Cursor { db, query, before: None, started: false, done: false };
    futures::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if !cursor.started {
            cursor.started = true;
            return Some((Ok(Bytes::from_static(HEADER.as_bytes())), cursor));
        }
        let batch = match db_audit::list_entries_before(&cursor.db, &cursor.query.filter(), cursor.before, BATCH).await
        {
            Ok(batch) => batch,
            Err(err) => {
                tracing::error!(error = %err, "audit export failed");
                cursor.done = true;
                return Some((Err(std::io::Error::other("audit export failed")), cursor));
            }
        };
        if batch.is_empty() {
            return None;
        }
        cursor.done = (batch.len() as i64) < BATCH;
        cursor.before = batch.last().map(|row| row.seq);
        let mut chunk = String::with_capacity(batch.len() * 400);
        for row in &batch {
            write_row(row, &mut chunk);
        }
        Some((Ok(Bytes::from(chunk)), cursor))
    })
}

fn write_row(row: &AuditRow, out: &mut String) {
    let id = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    let cells = [
        row.id.to_string(),
        row.seq.to_string(),
        row.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        id(row.actor_id),
        row.actor_email.clone().unwrap_or_default(),
        row.actor_role.clone().unwrap_or_default(),
        id(row.impersonated_user_id),
        row.action.clone(),
        row.resource_type.clone(),
        row.resource_id.clone().unwrap_or_default(),
        row.details.clone(),
        row.ip.clone().unwrap_or_default(),
        row.user_agent.clone().unwrap_or_default(),
        row.request_id.clone().unwrap_or_default(),
        row.prev_hash.clone(),
        row.hash.clone(),
    ];
    for (i, value) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&cell(value));
    }
    out.push_str("\r\n");
}

/// One CSV cell: defused (leading `'`) when a spreadsheet would read it as a formula, quoted
/// when it holds a comma, quote or line break.
pub fn cell(value: &str) -> String {
    let defused =
        if value.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{value}") } else { value.to_owned() };
    if defused.contains([',', '"', '\n', '\r']) { format!("\"{}\"", defused.replace('"', "\"\"")) } else { defused }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_defused_and_separators_quoted() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for lead in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(cell(lead).trim_matches('"').starts_with('\''), "{lead}");
        }
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell("{\"k\":1}"), "\"{\"\"k\"\":1}\"");
        assert_eq!(cell(""), "");
    }
}
