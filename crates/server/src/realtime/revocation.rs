//! Revocation on open sockets. The database is the source of truth (the CLI changes roles from
//! another process), so while this instance has sockets open it reads the revocation feed
//! (`omnistack_db::revocations`) every `WS_REVOCATION_POLL_MILLISECONDS`: accounts whose row
//! changed and sessions revoked since the previous read, reaching back
//! `WS_REVOCATION_LOOKBACK_SECONDS` further so clock skew between writers loses nothing.
//! Each socket's `Standing` is updated in the registry; its driver closes it with 4003 when
//! revoked, or re-applies the channel policy when the role changed. Sockets never query the
//! database themselves. See `docs/adr/0007-revocation-feed-for-open-sockets.md`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use omnistack_db::Db;

use super::engine::{Engine, until_stopped};
use crate::auth::Role;

/// Starts reading the revocation feed from `db`; it ends when the hub stops or is dropped.
pub(super) fn watch(engine: &Arc<Engine>, db: Db) {
    let weak = Arc::downgrade(engine);
    let mut stopping = engine.stopping();
    let every = engine.settings.revocation_poll;
    let lookback = chrono::Duration::from_std(engine.settings.revocation_lookback).unwrap_or_default();
    tokio::spawn(async move {
        let mut last: Option<DateTime<Utc>> = None;
        loop {
            tokio::select! {
                () = until_stopped(&mut stopping) => return,
                () = tokio::time::sleep(every) => {}
            }
            let Some(engine) = weak.upgrade() else { return };
            if engine.registry.counts().0 == 0 {
                last = None;
                continue;
            }
            let now = Utc::now();
            let since = last.unwrap_or(now) - lookback;
            match omnistack_db::revocations::changes_since(&db, since).await {
                Ok(changes) => {
                    apply(&engine, &changes);
                    last = Some(now);
                }
                Err(err) => tracing::warn!(error = %err, "realtime: could not read the revocation feed"),
            }
        }
    });
}

/// Applies one read of the feed to this instance's sockets (idempotent).
fn apply(engine: &Engine, changes: &omnistack_db::revocations::Changes) {
    if changes.accounts.is_empty() && changes.sessions.is_empty() {
        return;
    }
    let accounts: HashMap<uuid::Uuid, (Role, bool)> = changes
        .accounts
        .iter()
        .filter_map(|account| Some((account.user_id, (account.role.parse::<Role>().ok()?, account.is_active))))
        .collect();
    let sessions: HashSet<uuid::Uuid> = changes.sessions.iter().map(|session| session.session_id).collect();
    let changed = engine.registry.apply(&accounts, &sessions);
    if changed > 0 {
        tracing::debug!(sockets = changed, "realtime: applied revocations");
    }
}
