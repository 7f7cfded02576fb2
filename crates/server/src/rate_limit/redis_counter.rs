//! Fixed-window counters in Redis, shared by every instance: one atomic script call per check.
//!
//! A failed or slow call is not the request's problem: the caller falls back to the
//! in-process counters. After a failure Redis is left alone for [`RETRY_AFTER`] so an outage
//! does not add latency to every request, and the warning is logged at most once per
//! [`WARN_EVERY`] with the number of checks that fell back since the last one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;

use super::{Hit, LimitClass};
use crate::redis_pool::{self, RedisPool};

/// INCR, and PEXPIRE on the window's first hit; returns `{count, PTTL}`. A key that somehow
/// lost its expiry gets one again, so a window can never last forever.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// DECR a live counter that is above zero; a missing key (an ended window) stays missing.
const REFUND_SCRIPT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then
  redis.call('DECR', KEYS[1])
end
return 0
";

/// The live count and its PTTL, without counting; `{0, -2}` when there is no window.
const PEEK_SCRIPT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
return {count, redis.call('PTTL', KEYS[1])}
";

/// The longest a check waits for Redis before counting in-process instead.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// How long Redis is skipped after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The least time between two "Redis unavailable" warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Counters under `<prefix>rl:<class>:<key>`.
pub(super) struct RedisCounters {
    pool: RedisPool,
    prefix: String,
    script: Script,
    refund_script: Script,
    peek_script: Script,
    outage: Outage,
}

impl RedisCounters {
    pub(super) fn new(pool: RedisPool, key_prefix: &str) -> Self {
        RedisCounters {
            pool,
            prefix: format!("{key_prefix}rl:"),
            script: Script::new(HIT_SCRIPT),
            refund_script: Script::new(REFUND_SCRIPT),
            peek_script: Script::new(PEEK_SCRIPT),
            outage: Outage::new(),
        }
    }

    /// The Redis key of `key`'s counter in `class`.
    pub(super) fn key(&self, class: LimitClass, key: &str) -> String {
        format!("{}{}:{key}", self.prefix, class.as_str())
    }

    /// Counts one request, or `None` when Redis did not answer (in time); the caller then
    /// counts in-process.
    pub(super) async fn hit(&self, class: LimitClass, key: &str, length: Duration) -> Option<Hit> {
        if self.outage.skipping() {
            self.outage.fell_back();
            return None;
        }
        let window_ms = u64::try_from(length.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.pool.connection();
        let mut invocation = self.script.key(self.key(class, key));
        invocation.arg(window_ms);
        let call = redis_pool::traced("EVALSHA", invocation.invoke_async::<(u64, i64)>(&mut connection));
        let failure = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok((count, ttl_ms))) => {
                self.outage.recovered();
                let resets_in = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(window_ms));
                return Some(Hit { count, resets_in });
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        self.outage.failed(&failure);
        None
    }

    /// The live window without counting: `Some(None)` when there is none, `None` when Redis
    /// did not answer (in time).
    pub(super) async fn peek(&self, class: LimitClass, key: &str) -> Option<Option<Hit>> {
        if self.outage.skipping() {
            return None;
        }
        let mut connection = self.pool.connection();
        let invocation = self.peek_script.key(self.key(class, key));
        let call = redis_pool::traced("EVALSHA", invocation.invoke_async::<(u64, i64)>(&mut connection));
        let failure = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok((count, ttl_ms))) => {
                let live = count > 0 && ttl_ms > 0;
                let resets_in = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
                return Some(live.then_some(Hit { count, resets_in }));
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        self.outage.failed(&failure);
        None
    }

    /// Takes one request back, or `None` when Redis did not answer (in time).
    pub(super) async fn refund(&self, class: LimitClass, key: &str) -> Option<()> {
        if self.outage.skipping() {
            return None;
        }
        let mut connection = self.pool.connection();
        let invocation = self.refund_script.key(self.key(class, key));
        let call = redis_pool::traced("EVALSHA", invocation.invoke_async::<i64>(&mut connection));
        let failure = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(_)) => return Some(()),
            Ok(Err(err)) => err.to_string(),
            Err(_) => format!("no answer within {} ms", CALL_TIMEOUT.as_millis()),
        };
        self.outage.failed(&failure);
        None
    }
}

/// When Redis last failed, and when that was last said.
struct Outage {
    epoch: Instant,
    /// Milliseconds since `epoch` before which Redis is skipped.
    skip_until_ms: AtomicU64,
    /// Milliseconds since `epoch` of the last warning, `u64::MAX` before the first.
    warned_at_ms: AtomicU64,
    /// Checks counted in-process since the last warning.
    fallbacks: AtomicU64,
    down: AtomicBool,
}

impl Outage {
    fn new() -> Self {
        Outage {
            epoch: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            warned_at_ms: AtomicU64::new(u64::MAX),
            fallbacks: AtomicU64::new(0),
            down: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn skipping(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, error: &str) {
        let now = self.now_ms();
        self.skip_until_ms.store(now.saturating_add(RETRY_AFTER.as_millis() as u64), Ordering::Relaxed);
        self.down.store(true, Ordering::Relaxed);
        self.fell_back();
        let warned_at = self.warned_at_ms.load(Ordering::Relaxed);
        let due = warned_at == u64::MAX || now.saturating_sub(warned_at) >= WARN_EVERY.as_millis() as u64;
        // Only the caller that wins the exchange warns, so a burst of failures logs one line.
        if due && self.warned_at_ms.compare_exchange(warned_at, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            let fallbacks = self.fallbacks.swap(0, Ordering::Relaxed);
            tracing::warn!(
                error,
                checks_counted_in_process = fallbacks,
                "rate limiter: Redis unavailable, counting in-process (per instance) until it answers"
            );
        }
    }

    fn recovered(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            let fallbacks = self.fallbacks.swap(0, Ordering::Relaxed);
            tracing::info!(checks_counted_in_process = fallbacks, "rate limiter: Redis answering again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_skips_redis_for_a_while_and_warns_once() {
        let outage = Outage::new();
        assert!(!outage.skipping());
        outage.failed("connection refused");
        assert!(outage.skipping());
        let first_warning = outage.warned_at_ms.load(Ordering::Relaxed);
        assert_ne!(first_warning, u64::MAX);
        outage.fell_back();
        outage.failed("connection refused");
        assert_eq!(outage.warned_at_ms.load(Ordering::Relaxed), first_warning, "no second warning yet");
        assert_eq!(outage.fallbacks.load(Ordering::Relaxed), 2, "counted for the next warning");
        outage.recovered();
        assert!(!outage.down.load(Ordering::Relaxed));
        assert_eq!(outage.fallbacks.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn keys_carry_the_prefix_class_and_key() {
        let pool = RedisPool::new("redis://127.0.0.1:1").unwrap_or_else(|err| panic!("{err}"));
        let counters = RedisCounters::new(pool, "omnistack:");
        assert_eq!(counters.key(LimitClass::Auth, "a@example.com"), "omnistack:rl:auth:a@example.com");
        assert_eq!(counters.key(LimitClass::Public, "::1"), "omnistack:rl:public:::1");
    }
}
