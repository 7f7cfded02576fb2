//! A Stripe subscription object (API version [`STRIPE_VERSION`](super::client::STRIPE_VERSION))
//! read as the account's [`Subscription`], and written with [`billing::apply`](crate::billing::apply).

use chrono::{DateTime, Utc};
use omnistack_db::Db;
use serde_json::Value;
use uuid::Uuid;

use super::client::{StripeClient, StripeError, is_stripe_id};
use crate::billing::{self, Cause, Store, Subscription, SubscriptionStatus};
use crate::config::BillingSettings;
use crate::error::Result;
use crate::realtime::Hub;

/// The account's view of a Stripe subscription; `None` when its price is not in
/// `STRIPE_PRICES` (a price this service does not sell: nothing to grant).
pub fn subscription_of(object: &Value, billing: &BillingSettings) -> Option<Subscription> {
    let plan = billing.stripe_plan(price_id(object)?)?;
    Some(Subscription {
        plan,
        status: status_of(object["status"].as_str().unwrap_or_default()),
        store: Some(Store::Stripe),
        current_period_end: period_end(object),
        cancel_at_period_end: object["cancel_at_period_end"].as_bool().unwrap_or(false)
            || object["cancel_at"].as_i64().is_some(),
    })
}

/// The price of the subscription's first item (`items.data[0].price.id`; the older `plan.id`
/// names the same object).
pub fn price_id(object: &Value) -> Option<&str> {
    let item = &object["items"]["data"][0];
    item["price"]["id"].as_str().or_else(|| item["plan"]["id"].as_str()).or_else(|| object["plan"]["id"].as_str())
}

/// The first item's id (`si_…`), which a plan change replaces.
pub fn item_id(object: &Value) -> Option<&str> {
    object["items"]["data"][0]["id"].as_str()
}

/// Stripe's statuses in the account's vocabulary.
pub fn status_of(status: &str) -> SubscriptionStatus {
    match status {
        "active" => SubscriptionStatus::Active,
        "trialing" => SubscriptionStatus::Trialing,
        "past_due" | "unpaid" => SubscriptionStatus::PastDue,
        "incomplete" | "paused" => SubscriptionStatus::Incomplete,
        _ => SubscriptionStatus::Canceled,
    }
}

/// Whether the subscription has not ended (it may still be paid for, resumed or changed).
pub fn is_live(object: &Value) -> bool {
    !matches!(object["status"].as_str(), Some("canceled" | "incomplete_expired") | None)
}

fn period_end(object: &Value) -> Option<DateTime<Utc>> {
    let seconds =
        object["current_period_end"].as_i64().or_else(|| object["items"]["data"][0]["current_period_end"].as_i64())?;
    DateTime::from_timestamp(seconds, 0)
}

/// The subscription `id` as Stripe has it now; `None` when Stripe has no such subscription.
pub async fn fetch(client: &StripeClient, id: &str) -> Result<Option<Value>, StripeError> {
    if !is_stripe_id(id) {
        return Ok(None);
    }
    match client.get(&format!("subscriptions/{id}"), &[]).await {
        Ok(object) => Ok(Some(object)),
        Err(err) if err.is_missing() => Ok(None),
        Err(err) => Err(err),
    }
}

/// The customer's newest subscription that has not ended.
pub async fn live_subscription(client: &StripeClient, customer: &str) -> Result<Option<Value>, StripeError> {
    if !is_stripe_id(customer) {
        return Ok(None);
    }
    let query = [("customer", customer.to_owned()), ("status", "all".to_owned()), ("limit", "20".to_owned())];
    let list = match client.get("subscriptions", &query).await {
        Ok(list) => list,
        Err(err) if err.is_missing() => return Ok(None),
        Err(err) => return Err(err),
    };
    let mut live: Vec<&Value> = list["data"].as_array().into_iter().flatten().filter(|s| is_live(s)).collect();
    // Newest first, whatever order the list came in.
    live.sort_by_key(|s| std::cmp::Reverse(s["created"].as_i64().unwrap_or_default()));
    Ok(live.first().map(|s| (*s).clone()))
}

/// What the account's subscription is, given that Stripe says `object` now: `object`, unless it
/// has ended while the customer holds another live one (a resubscription), which wins.
pub async fn current_for(client: &StripeClient, object: Value) -> Result<Value, StripeError> {
    if is_live(&object) {
        return Ok(object);
    }
    let Some(customer) = object["customer"].as_str() else { return Ok(object) };
    Ok(live_subscription(client, customer).await?.unwrap_or(object))
}

/// Writes `next` as the account's subscription (once, audited) and announces it after commit.
pub async fn write(db: &Db, hub: &Hub, user_id: Uuid, next: &Subscription, cause: &Cause) -> Result<Subscription> {
    let mut tx = db.begin().await?;
    let changed = billing::apply(&mut tx, user_id, next, cause).await?;
    tx.commit().await?;
    if let Some(changed) = &changed {
        billing::announce(hub, user_id, changed).await;
    }
    Ok(next.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Plan;

    fn billing() -> BillingSettings {
        let mut settings = BillingSettings::default();
        settings.stripe_prices.insert("pro_monthly".into(), ("price_pro".into(), Plan::Pro));
        settings.stripe_prices.insert("enterprise_monthly".into(), ("price_ent".into(), Plan::Enterprise));
        settings
    }

    #[test]
    fn a_subscription_reads_its_plan_from_the_price_and_its_state_from_stripe() {
        let object = json!({"id": "sub_1", "object": "subscription", "status": "past_due",
            "current_period_end": 1_800_000_000, "cancel_at_period_end": true,
            "items": {"data": [{"id": "si_1", "price": {"id": "price_ent"}}]}});
        let sub = subscription_of(&object, &billing()).unwrap();
        assert_eq!(
            (sub.plan, sub.status, sub.store),
            (Plan::Enterprise, SubscriptionStatus::PastDue, Some(Store::Stripe))
        );
        assert_eq!(sub.current_period_end.unwrap().timestamp(), 1_800_000_000);
        assert!(sub.cancel_at_period_end);
        let legacy = json!({"status": "active", "items": {"data": [{"plan": {"id": "price_pro"}}]}});
        assert_eq!(subscription_of(&legacy, &billing()).unwrap().plan, Plan::Pro);
        let foreign = json!({"status": "active", "items": {"data": [{"price": {"id": "price_other"}}]}});
        assert!(subscription_of(&foreign, &billing()).is_none(), "a price not sold here grants nothing");
    }

    #[test]
    fn every_stripe_status_has_a_meaning_and_only_paid_ones_grant() {
        for (stripe, ours) in [
            ("active", SubscriptionStatus::Active),
            ("trialing", SubscriptionStatus::Trialing),
            ("past_due", SubscriptionStatus::PastDue),
            ("unpaid", SubscriptionStatus::PastDue),
            ("incomplete", SubscriptionStatus::Incomplete),
            ("paused", SubscriptionStatus::Incomplete),
            ("incomplete_expired", SubscriptionStatus::Canceled),
            ("canceled", SubscriptionStatus::Canceled),
            ("something_new", SubscriptionStatus::Canceled),
        ] {
            assert_eq!(status_of(stripe), ours, "{stripe}");
        }
        assert!(is_live(&json!({"status": "past_due"})) && !is_live(&json!({"status": "incomplete_expired"})));
    }
}
