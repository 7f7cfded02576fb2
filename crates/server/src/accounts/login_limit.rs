//! Failed sign-ins, limited per (email, client IP) and, much higher, per email: guessing from
//! one client stops early, a distributed guess meets the ceiling, and nobody can lock an owner
//! out of their account from another address below that ceiling.
//!
//! Each attempt is counted before the password is checked (so concurrent guesses cannot slip
//! past the limit) and given back when the password is correct, so only failures count.

use crate::error::{Error, Result};
use crate::rate_limit::{LimitClass, RateLimiter};

/// A sign-in attempt counted against both limits.
pub(super) struct LoginAttempt<'a> {
    limiter: &'a RateLimiter,
    pair: String,
    email: String,
}

impl<'a> LoginAttempt<'a> {
    /// Counts an attempt on `email` from `ip`; refused (429) when either limit is spent. An
    /// attempt refused per (email, IP) does not count against the email's ceiling.
    pub(super) async fn start(limiter: &'a RateLimiter, email: &str, ip: &str) -> Result<LoginAttempt<'a>> {
        let attempt = LoginAttempt { limiter, pair: format!("{email}|{ip}"), email: format!("email:{email}") };
        let pair = limiter.check(LimitClass::LoginFailures, &attempt.pair).await;
        if !pair.allowed {
            return Err(Error::RateLimited(pair));
        }
        let ceiling = limiter.check(LimitClass::LoginCeiling, &attempt.email).await;
        if !ceiling.allowed {
            limiter.refund(LimitClass::LoginFailures, &attempt.pair).await;
            return Err(Error::RateLimited(ceiling));
        }
        Ok(attempt)
    }

    /// The password was correct: the attempt is not a failure.
    pub(super) async fn succeeded(self) {
        self.limiter.refund(LimitClass::LoginFailures, &self.pair).await;
        self.limiter.refund(LimitClass::LoginCeiling, &self.email).await;
    }
}
