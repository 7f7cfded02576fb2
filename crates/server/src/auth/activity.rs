//! Last-seen bookkeeping without a write per request: activity is noted in memory and
//! written in one batch per interval (and at shutdown).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use omnistack_db::Db;
use uuid::Uuid;

/// How often noted activity is written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// Activity after this long without any counts as a new sign-in (`login_count`).
const NEW_VISIT_AFTER: chrono::Duration = chrono::Duration::minutes(30);

/// Accounts seen since the last flush, with when they were last seen.
#[derive(Clone, Debug, Default)]
pub struct ActivityTracker {
    seen: Arc<Mutex<HashMap<Uuid, DateTime<Utc>>>>,
}

impl ActivityTracker {
    /// Notes that `user_id` made a request now.
    pub fn note(&self, user_id: Uuid) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(user_id, omnistack_db::time::now());
        }
    }

    /// Writes everything noted so far.
    pub async fn flush(&self, db: &Db) {
        let batch: Vec<(Uuid, DateTime<Utc>)> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().collect(),
            Err(_) => return,
        };
        for (user_id, at) in batch {
            if let Err(err) = omnistack_db::users::record_activity(db, user_id, at, at - NEW_VISIT_AFTER).await {
                tracing::warn!(user.id = %user_id, error = %err, "could not record activity");
            }
        }
    }

    /// Flushes every [`FLUSH_INTERVAL`] until the database pool is closed.
    pub fn spawn_flusher(&self, db: Db) {
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(FLUSH_INTERVAL);
            interval.tick().await;
            loop {
                interval.tick().await;
                if db.is_closed() {
                    break;
                }
                tracker.flush(&db).await;
            }
        });
    }
}
