//! A circuit breaker per provider: closed while calls succeed; open after `threshold`
//! consecutive failures (the provider is skipped); after `cooldown`, half-open: one probe is let
//! through, and its outcome closes or re-opens the circuit. A probe that never reports (its
//! caller went away) frees the slot after another cooldown.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `/ai/status` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// The provider is skipped.
    Open,
    /// The cool-down is over: the next call is a probe.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug)]
struct State {
    failures: u32,
    opened_at: Option<Instant>,
    probe_since: Option<Instant>,
}

/// One provider's breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Breaker {
        Breaker { threshold, cooldown, state: Mutex::new(State { failures: 0, opened_at: None, probe_since: None }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> CircuitState {
        let state = self.lock();
        match state.opened_at {
            None => CircuitState::Closed,
            Some(opened) if now.duration_since(opened) < self.cooldown => CircuitState::Open,
            Some(_) => CircuitState::HalfOpen,
        }
    }

    /// Whether a call may go to the provider at `now`; in half-open, only one at a time.
    pub fn allow(&self, now: Instant) -> bool {
        let mut state = self.lock();
        let Some(opened) = state.opened_at else {
            return true;
        };
        if now.duration_since(opened) < self.cooldown {
            return false;
        }
        match state.probe_since {
            Some(since) if now.duration_since(since) < self.cooldown => false,
            _ => {
                state.probe_since = Some(now);
                true
            }
        }
    }

    /// The provider answered: the circuit closes.
    pub fn success(&self) {
        let mut state = self.lock();
        *state = State { failures: 0, opened_at: None, probe_since: None };
    }

    /// The provider failed (timeout, 429, 5xx, a broken answer) at `now`. Returns whether
    /// this failure opened the circuit.
    pub fn failure(&self, now: Instant) -> bool {
        let mut state = self.lock();
        state.failures = state.failures.saturating_add(1);
        let probing = state.opened_at.is_some();
        if probing || state.failures >= self.threshold {
            state.opened_at = Some(now);
            state.probe_since = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_once_after_the_cooldown_and_closes_on_success() {
        let cooldown = Duration::from_secs(30);
        let breaker = Breaker::new(3, cooldown);
        let t0 = Instant::now();
        assert!(!breaker.failure(t0) && !breaker.failure(t0));
        breaker.success();
        assert!(!breaker.failure(t0) && !breaker.failure(t0), "success reset the count");
        assert!(breaker.failure(t0), "third in a row opens");
        assert_eq!(breaker.state(t0), CircuitState::Open);
        assert!(!breaker.allow(t0 + Duration::from_secs(29)));
        let later = t0 + cooldown;
        assert_eq!(breaker.state(later), CircuitState::HalfOpen);
        assert!(breaker.allow(later), "one probe");
        assert!(!breaker.allow(later), "only one");
        assert!(breaker.failure(later), "a failed probe re-opens");
        assert!(!breaker.allow(later + Duration::from_secs(1)));
        let again = later + cooldown;
        assert!(breaker.allow(again));
        breaker.success();
        assert_eq!(breaker.state(again), CircuitState::Closed);
        assert!(breaker.allow(again) && breaker.allow(again));
    }

    #[test]
    fn a_probe_that_never_reports_frees_the_slot_after_a_cooldown() {
        let cooldown = Duration::from_secs(10);
        let breaker = Breaker::new(1, cooldown);
        let t0 = Instant::now();
        breaker.failure(t0);
        assert!(breaker.allow(t0 + cooldown));
        assert!(!breaker.allow(t0 + cooldown + Duration::from_secs(9)));
        assert!(breaker.allow(t0 + cooldown * 2));
    }
}
