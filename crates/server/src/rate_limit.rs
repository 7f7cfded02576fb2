//! Rate limiting: fixed windows per class and key, counted in Redis when `REDIS_URL` is set
//! (shared by every instance) and in-process otherwise or whenever Redis fails.
//!
//! | class      | default    | keyed by                                      |
//! |------------|------------|-----------------------------------------------|
//! | `public`   | 60/minute  | client IP ([`by_ip`])                         |
//! | `app`      | 120/minute | user (the caller passes its id)               |
//! | `auth`     | 5/minute   | client IP ([`by_ip`]) and, separately, email  |
//! | `ai`       | 10/minute  | user                                          |
//! | `webhooks` | 1000/minute| client IP ([`by_ip`])                         |
//! | `login_failures` | 5/minute | email + client IP: failed sign-ins only       |
//! | `login_ceiling`  | 100/hour | email: failed sign-ins from every client      |
//! | `websocket`| 120/minute | client IP ([`by_ip`]): realtime handshakes    |
//! | `rooms`    | 60/minute  | user: realtime room subscriptions             |
//! | `contact`  | 5/hour     | client IP: contact-form submissions           |
//!
//! Route groups limited per IP take [`by_ip`] as a layer; services that limit by another key
//! call [`RateLimiter::check`] and return [`Error::RateLimited`](crate::error::Error) when
//! the decision is a denial. A bucket is one class and one key, whatever the path. A check
//! whose request turns out not to count (a correct password) is given back with
//! [`RateLimiter::refund`], so the login classes count failures only. [`RateLimiter::peek`]
//! reads a budget without spending it (the contact form's status route).

mod client_ip;
mod in_process;
mod middleware;
mod redis_counter;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

pub use crate::config::{Cidr, LimitClass};
pub use crate::error::{LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER, RateDecision};
pub use client_ip::client_ip;
pub use in_process::MAX_ENTRIES;
pub use middleware::{IpRateLimitLayer, LimitByIp, by_ip, check_client};

use crate::config::{Rate, RateLimitSettings};
use crate::redis_pool::RedisPool;
use in_process::InProcessCounters;
use redis_counter::RedisCounters;

/// One counted request: its number in the current window and the time until the window ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hit {
    count: u64,
    resets_in: Duration,
}

/// Keys longer than this are replaced by their SHA-256, so a caller-supplied key (an email
/// from a request body) cannot make a counter large.
const MAX_KEY_BYTES: usize = 128;

/// The rate limiter: cheap to clone, shared by every request (`AppState::limiter`).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Limiter>,
}

struct Limiter {
    settings: RateLimitSettings,
    in_process: InProcessCounters,
    redis: Option<RedisCounters>,
}

impl RateLimiter {
    /// A limiter with `settings`, counting in Redis under `key_prefix` when `redis` is given,
    /// otherwise in-process (at most [`MAX_ENTRIES`] keys).
    pub fn new(settings: &RateLimitSettings, redis: Option<RedisPool>, key_prefix: &str) -> Self {
        RateLimiter {
            inner: Arc::new(Limiter {
                settings: settings.clone(),
                in_process: InProcessCounters::new(MAX_ENTRIES),
                redis: redis.map(|pool| RedisCounters::new(pool, key_prefix)),
            }),
        }
    }

    /// Whether limiting is on (`RATE_LIMIT_ENABLED`).
    pub fn enabled(&self) -> bool {
        self.inner.settings.enabled
    }

    /// The networks whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
    pub fn trusted_proxies(&self) -> &[Cidr] {
        &self.inner.settings.trusted_proxies
    }

    /// The rate of `class`.
    pub fn rate(&self, class: LimitClass) -> Rate {
        self.inner.settings.rate(class)
    }

    /// Counts one request for `key` under `class` and says whether it may proceed. Never
    /// fails: when Redis cannot answer, the request is counted in-process. When limiting is
    /// off, every request is allowed with the full budget.
    ///
    /// Keys are opaque; pass them normalised (a lowercased email, a user id, an IP as
    /// printed by [`client_ip`]) so that one caller always lands in one bucket.
    pub async fn check(&self, class: LimitClass, key: &str) -> RateDecision {
        let rate = self.rate(class);
        let now = SystemTime::now();
        if !self.enabled() {
            let full = Hit { count: 0, resets_in: rate.window };
            return RateDecision::from_count(rate.limit, full.count, full.resets_in, now);
        }
        let key = bucket_key(key);
        let shared = match &self.inner.redis {
            Some(redis) => redis.hit(class, &key, rate.window).await,
            None => None,
        };
        let hit = shared.unwrap_or_else(|| self.inner.in_process.hit(class, &key, rate.window, Instant::now()));
        let decision = RateDecision::from_count(rate.limit, hit.count, hit.resets_in, now);
        if !decision.allowed {
            metrics::counter!("omnistack_rate_limit_rejections_total", "class" => class.as_str()).increment(1);
        }
        decision
    }

    /// What [`check`](Self::check) would report for `key` under `class` if the request
    /// before it had been the last, without counting anything: the budget left in the
    /// current window (the full budget when no window is open) and when it resets.
    /// `allowed` says whether one more request would pass.
    pub async fn peek(&self, class: LimitClass, key: &str) -> RateDecision {
        let rate = self.rate(class);
        let now = SystemTime::now();
        let idle = Hit { count: 0, resets_in: rate.window };
        if !self.enabled() {
            return RateDecision::from_count(rate.limit, idle.count, idle.resets_in, now);
        }
        let key = bucket_key(key);
        let shared = match &self.inner.redis {
            Some(redis) => redis.peek(class, &key).await,
            None => None,
        };
        let hit = shared.unwrap_or_else(|| self.inner.in_process.peek(class, &key, Instant::now())).unwrap_or(idle);
        let mut decision = RateDecision::from_count(rate.limit, hit.count, hit.resets_in, now);
        decision.allowed = hit.count < u64::from(rate.limit);
        decision.retry_after = 0;
        decision
    }

    /// Gives back one request counted by [`check`](Self::check) for `key` under `class` (a
    /// sign-in that turned out to be correct): the window's count drops by one, never below
    /// zero, and an ended window is left alone.
    pub async fn refund(&self, class: LimitClass, key: &str) {
        if !self.enabled() {
            return;
        }
        let key = bucket_key(key);
        let shared = match &self.inner.redis {
            Some(redis) => redis.refund(class, &key).await,
            None => None,
        };
        if shared.is_none() {
            self.inner.in_process.refund(class, &key, Instant::now());
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.enabled())
            .field("backend", &if self.inner.redis.is_some() { "redis" } else { "in-process" })
            .finish()
    }
}

/// `key`, or `sha256:<hex>` of it when it is longer than [`MAX_KEY_BYTES`].
fn bucket_key(key: &str) -> Cow<'_, str> {
    if key.len() <= MAX_KEY_BYTES {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(format!("sha256:{}", hex::encode(Sha256::digest(key.as_bytes()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(settings: RateLimitSettings) -> RateLimiter {
        RateLimiter::new(&settings, None, "test:")
    }

    #[tokio::test]
    async fn denies_past_the_limit_and_counts_classes_apart() {
        let limiter = limiter(RateLimitSettings { auth: Rate::per_minute(2), ..RateLimitSettings::default() });
        let remaining: Vec<(bool, u32)> =
            futures::future::join_all((0..3).map(|_| async { limiter.check(LimitClass::Auth, "a@example.com").await }))
                .await
                .into_iter()
                .map(|d| (d.allowed, d.remaining))
                .collect();
        assert_eq!(remaining, [(true, 1), (true, 0), (false, 0)]);
        let denied = limiter.check(LimitClass::Auth, "a@example.com").await;
        assert!(!denied.allowed && (1..=60).contains(&denied.retry_after));
        assert!(limiter.check(LimitClass::Auth, "b@example.com").await.allowed, "another key");
        assert!(limiter.check(LimitClass::Public, "a@example.com").await.allowed, "another class");
    }

    #[tokio::test]
    async fn a_refund_gives_one_request_back_and_never_goes_below_zero() {
        let limiter =
            limiter(RateLimitSettings { login_failures: Rate::per_minute(2), ..RateLimitSettings::default() });
        let class = LimitClass::LoginFailures;
        limiter.refund(class, "nobody").await;
        assert!(limiter.check(class, "a").await.allowed);
        limiter.refund(class, "a").await;
        limiter.refund(class, "a").await;
        assert_eq!(limiter.check(class, "a").await.remaining, 1, "one refund per counted request");
        assert!(limiter.check(class, "a").await.allowed);
        assert!(!limiter.check(class, "a").await.allowed);
        limiter.refund(class, "a").await;
        assert!(!limiter.check(class, "a").await.allowed, "the denied request counted too");
    }

    #[tokio::test]
    async fn a_peek_reports_the_budget_without_spending_it() {
        let limiter = limiter(RateLimitSettings {
            contact: crate::config::Rate { limit: 2, window: Duration::from_secs(3600) },
            ..RateLimitSettings::default()
        });
        let class = LimitClass::Contact;
        for _ in 0..3 {
            let fresh = limiter.peek(class, "10.0.0.1").await;
            assert_eq!((fresh.allowed, fresh.limit, fresh.remaining), (true, 2, 2), "peeking is free");
        }
        assert!(limiter.check(class, "10.0.0.1").await.allowed);
        let after_one = limiter.peek(class, "10.0.0.1").await;
        assert_eq!((after_one.allowed, after_one.remaining), (true, 1));
        let counted = limiter.check(class, "10.0.0.1").await;
        assert_eq!(counted.remaining, 0, "the peeks did not count");
        let spent = limiter.peek(class, "10.0.0.1").await;
        assert_eq!((spent.allowed, spent.remaining, spent.retry_after), (false, 0, 0));
        assert!(spent.reset_at.abs_diff(counted.reset_at) <= 1, "the same window");
        assert!(limiter.peek(class, "10.0.0.2").await.allowed, "another key");
    }

    #[tokio::test]
    async fn a_peek_reads_the_shared_redis_counter_without_spending_it() {
        let Some(url) = omnistack_db::testing::redis_url() else {
            eprintln!("TEST_REDIS_URL is unset: the Redis side of peek runs in the Redis pass");
            return;
        };
        let pool = RedisPool::new(&url).unwrap_or_else(|err| panic!("{err}"));
        let prefix = format!("peek-test-{}:", uuid::Uuid::new_v4().simple());
        let settings = RateLimitSettings {
            contact: crate::config::Rate { limit: 2, window: Duration::from_secs(3600) },
            ..RateLimitSettings::default()
        };
        let (one, other) = (
            RateLimiter::new(&settings, Some(pool.clone()), &prefix),
            RateLimiter::new(&settings, Some(pool), &prefix),
        );
        let class = LimitClass::Contact;
        assert_eq!(one.peek(class, "10.0.0.1").await.remaining, 2, "no window yet");
        assert!(one.check(class, "10.0.0.1").await.allowed);
        for _ in 0..3 {
            let seen = other.peek(class, "10.0.0.1").await;
            assert_eq!((seen.allowed, seen.remaining), (true, 1), "shared through Redis, and free");
        }
        let last = other.check(class, "10.0.0.1").await;
        assert_eq!((last.allowed, last.remaining), (true, 0));
        let spent = one.peek(class, "10.0.0.1").await;
        assert_eq!((spent.allowed, spent.remaining), (false, 0));
        assert!(spent.reset_at.abs_diff(last.reset_at) <= 1, "the same window");
    }

    #[tokio::test]
    async fn disabled_allows_everything_with_the_full_budget() {
        let limiter =
            limiter(RateLimitSettings { enabled: false, public: Rate::per_minute(1), ..RateLimitSettings::default() });
        for _ in 0..5 {
            let decision = limiter.check(LimitClass::Public, "1.2.3.4").await;
            assert!(decision.allowed);
            assert_eq!(decision.remaining, 1);
        }
    }

    #[tokio::test]
    async fn long_keys_share_a_bucket_by_their_digest() {
        let limiter = limiter(RateLimitSettings { auth: Rate::per_minute(1), ..RateLimitSettings::default() });
        let long = format!("{}@example.com", "x".repeat(500));
        assert!(limiter.check(LimitClass::Auth, &long).await.allowed);
        assert!(!limiter.check(LimitClass::Auth, &long).await.allowed);
        assert!(limiter.check(LimitClass::Auth, &format!("y{long}")).await.allowed);
        assert_eq!(bucket_key("short"), "short");
        assert_eq!(bucket_key(&long).len(), "sha256:".len() + 64);
    }
}
