//! Single-use connection tickets, for clients that cannot put a token in a URL they log.
//!
//! A ticket is 256 random bits, stored only as its hash, for `WS_TICKET_TTL_SECONDS`. With
//! Redis it is kept there and taken with `GETDEL`, so any instance redeems it exactly once;
//! without Redis (or while it is unreachable) it is kept in process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What a ticket stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    /// The account that asked for it.
    pub user_id: Uuid,
    /// When the access token used to ask for it expires (Unix seconds): the socket lives no
    /// longer than that token would.
    pub expires_at: Option<i64>,
    /// The sign-in session of that token (own tokens): redeeming fails once it is revoked.
    #[serde(default)]
    pub session_id: Option<Uuid>,
}

/// The most tickets kept in process. At the cap, expired tickets go first, then those closest
/// to expiring: however many accounts ask, the store stays bounded.
const MAX_LOCAL_TICKETS: usize = 50_000;

/// Tickets kept in process.
#[derive(Debug)]
pub(crate) struct LocalTickets {
    tickets: Mutex<HashMap<String, (TicketClaims, Instant)>>,
    capacity: usize,
}

impl Default for LocalTickets {
    fn default() -> Self {
        LocalTickets { tickets: Mutex::default(), capacity: MAX_LOCAL_TICKETS }
    }
}

impl LocalTickets {
    /// Keeps a ticket (by hash) until `ttl` from now. Expired tickets are dropped by the
    /// heartbeat's [`LocalTickets::prune`], or here when the store is full.
    pub fn store(&self, hash: String, claims: TicketClaims, ttl: Duration) {
        let now = Instant::now();
        let mut tickets = self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if tickets.len() >= self.capacity {
            tickets.retain(|_, (_, deadline)| *deadline > now);
        }
        while tickets.len() >= self.capacity {
            let Some(oldest) = tickets.iter().min_by_key(|(_, (_, deadline))| *deadline).map(|(k, _)| k.clone()) else {
                break;
            };
            tickets.remove(&oldest);
        }
        tickets.insert(hash, (claims, now + ttl));
    }

    /// Takes a ticket if it exists and has not expired.
    pub fn redeem(&self, hash: &str) -> Option<TicketClaims> {
        let mut tickets = self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (claims, deadline) = tickets.remove(hash)?;
        (deadline > Instant::now()).then_some(claims)
    }

    /// Forgets expired tickets.
    pub fn prune(&self) {
        let now = Instant::now();
        self.tickets.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|_, (_, d)| *d > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_works_once_and_not_after_it_expires() {
        let tickets = LocalTickets::default();
        let claims = TicketClaims { user_id: Uuid::now_v7(), expires_at: Some(1), session_id: None };
        tickets.store("a".into(), claims, Duration::from_secs(30));
        assert_eq!(tickets.redeem("a"), Some(claims));
        assert_eq!(tickets.redeem("a"), None);
        tickets.store("b".into(), claims, Duration::ZERO);
        assert_eq!(tickets.redeem("b"), None);
    }

    #[test]
    fn the_store_stays_bounded_dropping_the_tickets_closest_to_expiry() {
        let tickets = LocalTickets { capacity: 3, ..LocalTickets::default() };
        let claims = TicketClaims { user_id: Uuid::now_v7(), expires_at: None, session_id: None };
        for (n, ttl) in [("a", 10), ("b", 30), ("c", 20), ("d", 40)] {
            tickets.store(n.into(), claims, Duration::from_secs(ttl));
        }
        assert_eq!(tickets.tickets.lock().unwrap().len(), 3);
        assert_eq!(tickets.redeem("a"), None, "the one closest to expiry went");
        for kept in ["b", "c", "d"] {
            assert!(tickets.redeem(kept).is_some(), "{kept}");
        }
    }
}
