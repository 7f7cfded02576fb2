//! The answer to one rate-limit check (what a 429 carries), and the `X-RateLimit-*` / `Retry-After` headers that carry it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue, header};

/// `X-RateLimit-Limit`: requests allowed per window.
pub const LIMIT_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`: requests left in this window.
pub const REMAINING_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`: unix seconds when the window ends.
pub const RESET_HEADER: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Whether a request may proceed, and what to tell the client about its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateDecision {
    /// The request is within its limit.
    pub allowed: bool,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in the current window.
    pub remaining: u32,
    /// When the current window ends, in unix seconds (rounded up).
    pub reset_at: u64,
    /// Seconds to wait before trying again: at least 1 when denied, 0 when allowed.
    pub retry_after: u64,
}

impl RateDecision {
    /// The decision for the `count`-th request of a window allowing `limit` that ends in
    /// `resets_in`, at `now`.
    pub fn from_count(limit: u32, count: u64, resets_in: Duration, now: SystemTime) -> Self {
        let allowed = count <= u64::from(limit);
        let remaining = u64::from(limit).saturating_sub(count);
        let retry_after = if allowed { 0 } else { ceil_seconds(resets_in).max(1) };
        RateDecision {
            allowed,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(0),
            reset_at: ceil_seconds(now.duration_since(UNIX_EPOCH).unwrap_or_default() + resets_in),
            retry_after,
        }
    }

    /// Sets `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` and, when the
    /// request is denied, `Retry-After`.
    pub fn apply_headers(&self, headers: &mut HeaderMap) {
        headers.insert(LIMIT_HEADER, HeaderValue::from(self.limit));
        headers.insert(REMAINING_HEADER, HeaderValue::from(self.remaining));
        headers.insert(RESET_HEADER, HeaderValue::from(self.reset_at));
        if !self.allowed {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(self.retry_after));
        }
    }
}

fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(unix_ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(unix_ms)
    }

    #[test]
    fn counts_down_then_denies_with_a_retry_of_at_least_one_second() {
        let decide =
            |count, resets_in_ms, now| RateDecision::from_count(3, count, Duration::from_millis(resets_in_ms), now);
        let first = decide(1, 60_000, at(1_000_000_500));
        assert_eq!(first, RateDecision { allowed: true, limit: 3, remaining: 2, reset_at: 1_000_061, retry_after: 0 });
        let last = decide(3, 59_000, at(1_000_001_500));
        assert_eq!((last.allowed, last.remaining), (true, 0));
        let denied = decide(4, 58_200, at(1_000_002_300));
        assert_eq!(
            denied,
            RateDecision { allowed: false, limit: 3, remaining: 0, reset_at: 1_000_061, retry_after: 59 }
        );
        let almost = decide(9, 0, at(1_000_061_000));
        assert_eq!(almost.retry_after, 1, "never 0 when denied");
    }

    #[test]
    fn headers_carry_the_decision_and_retry_after_only_when_denied() {
        let mut headers = HeaderMap::new();
        let allowed = RateDecision { allowed: true, limit: 60, remaining: 59, reset_at: 1_700_000_060, retry_after: 0 };
        allowed.apply_headers(&mut headers);
        assert_eq!(headers["x-ratelimit-limit"], "60");
        assert_eq!(headers["x-ratelimit-remaining"], "59");
        assert_eq!(headers["x-ratelimit-reset"], "1700000060");
        assert!(!headers.contains_key("retry-after"));
        RateDecision { allowed: false, remaining: 0, retry_after: 12, ..allowed }.apply_headers(&mut headers);
        assert_eq!(headers["x-ratelimit-remaining"], "0");
        assert_eq!(headers["retry-after"], "12");
    }
}
