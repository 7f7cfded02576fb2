//! Subscriptions, wherever they are bought. Every store (Stripe, the App Store, Google Play)
//! ends in [`apply`]: the account's subscription is written once per change, audited in the
//! same transaction, and announced to the account's sockets (`billing.updated`) after commit.
//!
//! | module | what |
//! |---|---|
//! | [`status`] | the subscription's vocabulary: plans, statuses, stores, the effective plan |
//! | [`stripe`] | Stripe: checkout, portal, invoices, cancel/resume/change plan, webhook events |
//! | [`apple`] | App Store Server Notifications V2 and linked App Store purchases |
//! | [`google`] | Google Play notifications (Pub/Sub push) and linked Google Play purchases |
//! | [`purchases`] | one account per store purchase; a store ends only what it gave |
//! | [`stores`] | the stores' clients and their webhook processors |

pub mod apple;
pub mod google;
pub mod purchases;
pub mod status;
pub mod stores;
pub mod stripe;

use omnistack_db::billing::{self as db_billing, SubscriptionRow};
use omnistack_db::{Tx, dialect};
use serde_json::json;
use uuid::Uuid;

pub use status::{Store, Subscription, SubscriptionStatus, effective_plan};
pub use stores::Stores;

use crate::admin::audit::{self, Actor, AuditContext, AuditEntry};
use crate::error::{Error, Result};
use crate::realtime::{Event, Hub};

/// What caused a change, for the audit log: the store event or the request.
#[derive(Clone, Debug)]
pub struct Cause {
    /// Who acted: the account itself for its own requests, nobody for a store's webhook.
    pub actor: Actor,
    /// `stripe.webhook`, `apple.link`, `admin.replay`, …
    pub source: &'static str,
    /// The store's event or transaction id, when there is one.
    pub reference: Option<String>,
    /// The request, when there is one.
    pub context: AuditContext,
}

/// Writes `next` as the account's subscription unless it already is; records
/// `billing.subscription_changed` (before and after) in `tx`. Returns the new subscription when
/// it changed, for [`announce`] after commit; `None` when nothing changed. 404 when there is no
/// such account.
pub async fn apply(tx: &mut Tx, user_id: Uuid, next: &Subscription, cause: &Cause) -> Result<Option<Subscription>> {
    let current =
        dialect::lock_subscription(tx, user_id).await?.ok_or_else(|| Error::NotFound("account not found".into()))?;
    let current = Subscription::from_row(&current);
    // Compared as stored (times at microsecond precision).
    let next = Subscription::from_row(&next.to_row());
    if current == next {
        return Ok(None);
    }
    db_billing::write_subscription(tx, user_id, &next.to_row()).await?;
    let details = json!({
        "before": current.to_json(),
        "after": next.to_json(),
        "source": cause.source,
        "reference": cause.reference,
    });
    let entry = AuditEntry::new(
        cause.actor.clone(),
        &cause.context,
        "billing.subscription_changed",
        "user",
        Some(user_id.to_string()),
        details,
    );
    audit::record(tx, entry).await?;
    metrics::counter!("omnistack_billing_changes_total", "store" => next.store.map_or("none", Store::as_str))
        .increment(1);
    Ok(Some(next))
}

/// Tells the account's sockets on every instance that its subscription changed.
pub async fn announce(hub: &Hub, user_id: Uuid, subscription: &Subscription) {
    let event = Event::Service { kind: "billing.updated", data: subscription.to_json() };
    if let Err(err) = hub.publish_to_user(user_id, event).await {
        tracing::warn!(user.id = %user_id, error = %err, "could not announce a subscription change");
    }
}

/// The account's subscription as stored.
pub async fn current(db: &omnistack_db::Db, user_id: Uuid) -> Result<Subscription> {
    let row: SubscriptionRow =
        db_billing::find_subscription(db, user_id).await?.ok_or_else(|| Error::NotFound("account not found".into()))?;
    Ok(Subscription::from_row(&row))
}

/// The account's subscription as stored, read in `tx`. 404 when there is no such account.
pub async fn current_in(tx: &mut Tx, user_id: Uuid) -> Result<Subscription> {
    let row: SubscriptionRow =
        db_billing::find_subscription(tx, user_id).await?.ok_or_else(|| Error::NotFound("account not found".into()))?;
    Ok(Subscription::from_row(&row))
}
