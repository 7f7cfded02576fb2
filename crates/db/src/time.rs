//! Timestamps are made in Rust, in UTC, at microsecond precision (what PostgreSQL keeps),
//! so a value reads back identical on both engines.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, truncated to microseconds.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
