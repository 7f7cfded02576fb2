//! Inbound message rate of one socket: a token bucket of `WS_MESSAGES_PER_SECOND` (burst of the
//! same size). A message over the limit is refused; a second's worth of refused messages in a
//! row means the client ignores the errors, and the socket is closed.

use std::time::Instant;

/// What to do with one inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allow,
    /// Over the limit: answer with an error, drop the message.
    Refuse,
    /// Over the limit for too long: close with 1008.
    Disconnect,
}

/// The bucket of one socket.
#[derive(Debug)]
pub struct InboundLimit {
    per_second: f64,
    tokens: f64,
    refilled: Instant,
    refused_in_a_row: u32,
}

impl InboundLimit {
    /// A full bucket of `per_second` messages.
    pub fn new(per_second: u32, now: Instant) -> Self {
        InboundLimit {
            per_second: f64::from(per_second),
            tokens: f64::from(per_second),
            refilled: now,
            refused_in_a_row: 0,
        }
    }

    /// Counts one message arriving at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.per_second);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_a_row = 0;
            return Verdict::Allow;
        }
        self.refused_in_a_row += 1;
        if f64::from(self.refused_in_a_row) >= self.per_second { Verdict::Disconnect } else { Verdict::Refuse }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_passes_then_refusals_then_disconnect() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(5, start);
        let verdicts: Vec<Verdict> = (0..10).map(|_| limit.check(start)).collect();
        assert_eq!(&verdicts[..5], [Verdict::Allow; 5]);
        assert_eq!(&verdicts[5..9], [Verdict::Refuse; 4]);
        assert_eq!(verdicts[9], Verdict::Disconnect);
    }

    #[test]
    fn tokens_come_back_over_time_and_reset_the_refusals() {
        let start = Instant::now();
        let mut limit = InboundLimit::new(5, start);
        for _ in 0..5 {
            limit.check(start);
        }
        assert_eq!(limit.check(start), Verdict::Refuse);
        assert_eq!(limit.check(start + Duration::from_millis(250)), Verdict::Allow);
        for step in 1..=4 {
            assert_ne!(limit.check(start + Duration::from_millis(250 + step * 200)), Verdict::Disconnect);
        }
    }
}
