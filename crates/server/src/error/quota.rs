//! A plan limit a request would pass.

use chrono::{DateTime, Utc};
use serde_json::json;

/// What a 402 `QUOTA_EXCEEDED` says: which limit, how much of it is used, and when it resets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The metric (`ai_requests`, `ai_tokens`, `storage_bytes`, …).
    pub metric: String,
    /// The plan's limit for the period.
    pub limit: i64,
    /// Used so far in the period.
    pub used: i64,
    /// When the period ends (`None` for a level such as `storage_bytes`, which never resets).
    pub resets_at: Option<DateTime<Utc>>,
}

impl QuotaExceeded {
    /// The error's `details`.
    pub fn details(&self) -> serde_json::Value {
        json!({
            "metric": self.metric,
            "limit": self.limit,
            "used": self.used,
            "resets_at": self.resets_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
    }
}
