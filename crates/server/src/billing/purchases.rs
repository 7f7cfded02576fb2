//! What the App Store and Google Play share: one account per purchase, and the rule that a
//! store may end only a subscription it gave.

use chrono::{DateTime, TimeZone, Utc};
use omnistack_db::Tx;
use omnistack_db::store_purchases::{self, NewStorePurchase, StorePurchase};
use uuid::Uuid;

use super::{Store, Subscription};
use crate::error::{Error, Result};

/// Links the purchase to `user_id`: 409 `CONFLICT` when another account holds it. Linking a
/// purchase again to its own account is no change.
pub async fn link_to(
    tx: &mut Tx,
    store: Store,
    purchase_id: &str,
    user_id: Uuid,
    product_id: &str,
) -> Result<StorePurchase> {
    let new = NewStorePurchase { store: store.as_str(), purchase_id, user_id, product_id };
    let (row, _) = store_purchases::link_purchase(tx, &new).await?;
    if row.user_id != user_id {
        return Err(Error::Conflict("this purchase is linked to another account".into()));
    }
    Ok(row)
}

/// Whether a store's `next` state may replace the account's `current` one: a state that
/// grants a plan always may; one that does not (past due, canceled, …) only when the current
/// subscription came from the same store or grants nothing, so an App Store purchase running
/// out never cancels a Stripe subscription the account pays for.
pub fn may_replace(current: &Subscription, next: &Subscription) -> bool {
    next.status.grants_plan() || current.store == next.store || !current.status.grants_plan()
}

/// Milliseconds since the epoch, as both stores write times.
pub fn from_millis(millis: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(millis).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::SubscriptionStatus;
    use crate::config::Plan;

    fn sub(store: Store, status: SubscriptionStatus) -> Subscription {
        Subscription {
            plan: Plan::Pro,
            status,
            store: Some(store),
            current_period_end: None,
            cancel_at_period_end: false,
        }
    }

    #[test]
    fn a_store_ends_only_what_it_gave() {
        use SubscriptionStatus::*;
        let stripe_active = sub(Store::Stripe, Active);
        assert!(!may_replace(&stripe_active, &sub(Store::Apple, Canceled)));
        assert!(may_replace(&stripe_active, &sub(Store::Apple, Active)));
        assert!(may_replace(&sub(Store::Apple, Active), &sub(Store::Apple, Canceled)));
        assert!(may_replace(&sub(Store::Stripe, Canceled), &sub(Store::Google, PastDue)));
        assert!(may_replace(&Subscription::none(), &sub(Store::Google, Canceled)));
        assert_eq!(from_millis(1_700_000_000_123).unwrap().timestamp_millis(), 1_700_000_000_123);
    }
}
