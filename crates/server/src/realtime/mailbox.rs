//! A socket's mailbox: what the registry hands a socket's driver, in one small allocation per
//! socket. It holds the channel messages waiting to be written (at most `WS_OUTBOUND_QUEUE`),
//! the account's [`Standing`] as the revocation feed last reported it, and whether the fan-out
//! evicted the socket for falling behind.
//!
//! The queue takes memory only while messages wait: it grows as they are queued and, once
//! drained, gives back anything beyond a few slots, so an idle socket holds none (a bounded
//! channel would keep its slots and bookkeeping for the socket's whole life).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::protocol::Delivery;
use super::registry::Standing;

/// Slots a drained queue may keep; beyond them its memory goes back to the allocator.
const KEPT_SLOTS: usize = 8;

/// One socket's mailbox, shared by the registry (which fills it) and the socket's driver.
#[derive(Debug)]
pub(crate) struct Mailbox {
    inbox: Mutex<Inbox>,
    /// Messages were queued or the standing changed.
    ready: Notify,
    /// The socket fell behind: it must close with 1013.
    evicted: Notify,
}

#[derive(Debug)]
struct Inbox {
    queue: VecDeque<Arc<Delivery>>,
    capacity: usize,
    standing: Standing,
    standing_changed: bool,
    evicted: bool,
}

/// What [`Mailbox::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// The queue was full: the message was dropped and the socket evicted.
    Evicted,
    /// The socket was evicted earlier; nothing was queued.
    Gone,
}

/// What woke a socket's driver.
#[derive(Debug, Default)]
pub(crate) struct Mail {
    /// The standing, when it changed since the last take.
    pub standing: Option<Standing>,
    /// Channel messages, oldest first.
    pub deliveries: Vec<Arc<Delivery>>,
}

impl Mailbox {
    /// An empty mailbox for up to `capacity` waiting messages.
    pub fn new(capacity: usize, standing: Standing) -> Arc<Mailbox> {
        let inbox = Inbox {
            queue: VecDeque::new(),
            capacity: capacity.max(1),
            standing,
            standing_changed: false,
            evicted: false,
        };
        Arc::new(Mailbox { inbox: Mutex::new(inbox), ready: Notify::new(), evicted: Notify::new() })
    }

    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message, or evicts the socket when its queue is full. Never waits.
    pub fn push(&self, delivery: &Arc<Delivery>) -> Pushed {
        let mut inbox = self.lock();
        if inbox.evicted {
            return Pushed::Gone;
        }
        if inbox.queue.len() >= inbox.capacity {
            inbox.evicted = true;
            drop(inbox);
            self.evicted.notify_one();
            return Pushed::Evicted;
        }
        inbox.queue.push_back(delivery.clone());
        drop(inbox);
        self.ready.notify_one();
        Pushed::Queued
    }

    /// Changes the standing with `change` (which tells whether it changed anything) and, if it
    /// did, wakes the driver. Returns whether it changed.
    pub fn update_standing(&self, change: impl FnOnce(&mut Standing) -> bool) -> bool {
        let mut inbox = self.lock();
        if !change(&mut inbox.standing) {
            return false;
        }
        inbox.standing_changed = true;
        drop(inbox);
        self.ready.notify_one();
        true
    }

    /// The standing now.
    #[cfg(test)]
    pub fn standing(&self) -> Standing {
        self.lock().standing
    }

    /// Waits until there may be mail (spurious wake-ups return an empty [`Mail`]).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Resolves once the socket has been evicted.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Whether the socket has been evicted.
    #[cfg(test)]
    pub fn is_evicted(&self) -> bool {
        self.lock().evicted
    }

    /// Takes a changed standing and up to `batch` messages. If more wait, the driver is woken
    /// again for them; once the queue is empty its spare memory is released.
    pub fn take(&self, batch: usize) -> Mail {
        let mut inbox = self.lock();
        let standing = std::mem::take(&mut inbox.standing_changed).then_some(inbox.standing);
        let count = inbox.queue.len().min(batch);
        let deliveries: Vec<_> = inbox.queue.drain(..count).collect();
        let more = !inbox.queue.is_empty();
        if !more && inbox.queue.capacity() > KEPT_SLOTS {
            inbox.queue = VecDeque::new();
        }
        drop(inbox);
        if more {
            self.ready.notify_one();
        }
        Mail { standing, deliveries }
    }
}

#[cfg(test)]
mod tests {
    use super::super::registry::Revoked;
    use super::*;
    use crate::auth::Role;

    fn delivery(offset: u64) -> Arc<Delivery> {
        Arc::new(Delivery { channel: "room:a".into(), offset: Some(offset), sent_at_ms: 0, text: "{}".into() })
    }

    fn standing() -> Standing {
        Standing { role: Role::User, revoked: None }
    }

    #[tokio::test]
    async fn messages_come_out_in_order_in_batches_and_the_rest_wakes_the_driver_again() {
        let mailbox = Mailbox::new(10, standing());
        for offset in 1..=5 {
            assert_eq!(mailbox.push(&delivery(offset)), Pushed::Queued);
        }
        mailbox.ready().await;
        let first = mailbox.take(3);
        assert_eq!(first.deliveries.iter().map(|d| d.offset.unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(first.standing.is_none());
        // The remaining two left a wake-up behind.
        tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.ready()).await.unwrap();
        assert_eq!(mailbox.take(3).deliveries.iter().map(|d| d.offset.unwrap()).collect::<Vec<_>>(), [4, 5]);
        assert!(mailbox.take(3).deliveries.is_empty());
    }

    #[tokio::test]
    async fn a_full_queue_evicts_the_socket_once_and_queues_nothing_more() {
        let mailbox = Mailbox::new(2, standing());
        assert_eq!(mailbox.push(&delivery(1)), Pushed::Queued);
        assert_eq!(mailbox.push(&delivery(2)), Pushed::Queued);
        assert!(!mailbox.is_evicted());
        assert_eq!(mailbox.push(&delivery(3)), Pushed::Evicted);
        assert_eq!(mailbox.push(&delivery(4)), Pushed::Gone);
        assert!(mailbox.is_evicted());
        tokio::time::timeout(std::time::Duration::from_secs(1), mailbox.evicted()).await.unwrap();
        assert_eq!(mailbox.take(10).deliveries.len(), 2);
    }

    #[test]
    fn a_drained_queue_gives_its_memory_back() {
        let mailbox = Mailbox::new(1000, standing());
        for offset in 0..500 {
            mailbox.push(&delivery(offset));
        }
        assert!(mailbox.lock().queue.capacity() >= 500);
        while !mailbox.take(64).deliveries.is_empty() {}
        assert!(mailbox.lock().queue.capacity() <= KEPT_SLOTS);
    }

    #[tokio::test]
    async fn a_standing_change_is_reported_once_and_only_when_it_changed() {
        let mailbox = Mailbox::new(4, standing());
        assert!(!mailbox.update_standing(|_| false));
        assert!(mailbox.take(1).standing.is_none());
        assert!(mailbox.update_standing(|s| {
            s.revoked = Some(Revoked::SessionRevoked);
            true
        }));
        mailbox.ready().await;
        let mail = mailbox.take(1);
        assert_eq!(mail.standing.and_then(|s| s.revoked), Some(Revoked::SessionRevoked));
        assert!(mailbox.take(1).standing.is_none(), "reported once");
        assert_eq!(mailbox.standing().revoked, Some(Revoked::SessionRevoked));
    }
}
