//! The Stripe webhook events acted on, after `webhooks` verified and stored them:
//!
//! | event | what happens |
//! |---|---|
//! | `checkout.session.completed` | the customer is linked to the account named by `client_reference_id` (when it has none), then its subscription is synced |
//! | `customer.subscription.created`, `.updated`, `.deleted` | the subscription is synced |
//! | `invoice.paid` | the invoice's subscription is synced |
//! | `invoice.payment_failed` | synced; the account gets a `payment_failed` email and a `billing.updated` message |
//! | `customer.deleted` | the account forgets the customer; a Stripe subscription it had is canceled |
//!
//! "Synced" means re-read from Stripe (`GET /v1/subscriptions/{id}`) and written if it differs:
//! the event only says which subscription to look at, never what state to write, so a late,
//! older event cannot overwrite newer state and a replay is harmless. The account is found by
//! `users.stripe_customer_id`; an event about a customer no account holds (or without one) is
//! logged and marked processed (there is nothing to retry). Stripe unreachable →
//! [`JobError::Retry`].

use std::sync::OnceLock;

use futures::future::BoxFuture;
use omnistack_db::{billing as db_billing, users};
use serde_json::Value;
use uuid::Uuid;

use super::client::{StripeClient, StripeError, is_stripe_id};
use super::subscription::{self, subscription_of};
use crate::admin::audit::{Actor, AuditContext};
use crate::billing::{self, Cause, Store, SubscriptionStatus};
use crate::jobs::kinds::enqueue_email;
use crate::jobs::{JobContext, JobError};
use crate::mail::{MailMessage, PaymentFailed};
use crate::webhooks::{Processor, StoredEvent};

/// The Stripe processor of the `webhook_event` job; builds its client on first use.
#[derive(Debug, Default)]
pub struct StripeEvents {
    client: OnceLock<StripeClient>,
}

impl StripeEvents {
    fn client(&self, ctx: &JobContext) -> Option<&StripeClient> {
        if let Some(client) = self.client.get() {
            return Some(client);
        }
        let settings = ctx.config.billing.stripe.as_ref()?;
        match StripeClient::new(settings) {
            Ok(client) => Some(self.client.get_or_init(|| client)),
            Err(err) => {
                tracing::error!(error = %err, "could not build the Stripe client");
                None
            }
        }
    }
}

impl Processor for StripeEvents {
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if !ACTED_ON.contains(&event.event_type.as_str()) {
                return Ok(());
            }
            process_event(ctx, self.client(ctx), &event.payload).await
        })
    }
}

/// The event types acted on; every other type is received and ignored.
pub const ACTED_ON: [&str; 7] = [
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.deleted",
];

/// Acts on one Stripe event (see the module documentation). Idempotent. `client` is `None`
/// when `STRIPE_SECRET_KEY` is unset: an event about an account then waits in the queue (and
/// the admin log) for the key, since the subscription cannot be read without it.
pub async fn process_event(ctx: &JobContext, client: Option<&StripeClient>, event: &Value) -> Result<(), JobError> {
    let kind = event["type"].as_str().unwrap_or_default();
    let event_id = event["id"].as_str().unwrap_or_default();
    let object = &event["data"]["object"];
    let cause = Cause {
        actor: Actor::anonymous(),
        source: "stripe.webhook",
        reference: Some(event_id.chars().take(255).collect()),
        context: AuditContext::default(),
    };
    let customer = id_of(&object["customer"]);
    match kind {
        "checkout.session.completed" => {
            if object["mode"].as_str() != Some("subscription") {
                return Ok(());
            }
            let Some(user_id) = link_checkout(ctx, object, customer).await? else { return Ok(()) };
            let client = required(client)?;
            match id_of(&object["subscription"]) {
                Some(subscription) => sync(ctx, client, user_id, subscription, &cause).await.map(drop),
                None => Ok(()),
            }
        }
        "customer.subscription.created" | "customer.subscription.updated" | "customer.subscription.deleted" => {
            let Some(user_id) = account_of(ctx, kind, customer).await? else { return Ok(()) };
            let client = required(client)?;
            match id_of(&object["id"]) {
                Some(subscription) => sync(ctx, client, user_id, subscription, &cause).await.map(drop),
                None => Err(malformed(kind, "data.object.id")),
            }
        }
        "invoice.paid" | "invoice.payment_failed" => {
            let Some(user_id) = account_of(ctx, kind, customer).await? else { return Ok(()) };
            let synced = match invoice_subscription(object) {
                Some(subscription) => sync(ctx, required(client)?, user_id, subscription, &cause).await?,
                None => None,
            };
            if kind == "invoice.payment_failed" {
                payment_failed(ctx, user_id, object, synced).await?;
            }
            Ok(())
        }
        "customer.deleted" => {
            let Some(customer) = id_of(&object["id"]) else { return Err(malformed(kind, "data.object.id")) };
            let Some(user_id) = account_of(ctx, kind, Some(customer)).await? else { return Ok(()) };
            let current = billing::current(&ctx.db, user_id).await.map_err(retry)?;
            if current.store == Some(Store::Stripe) && current.status != SubscriptionStatus::Canceled {
                let next = billing::Subscription {
                    status: SubscriptionStatus::Canceled,
                    cancel_at_period_end: false,
                    ..current
                };
                subscription::write(&ctx.db, &ctx.hub, user_id, &next, &cause).await.map_err(retry)?;
            }
            db_billing::clear_stripe_customer(&ctx.db, customer).await?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Re-reads subscription `id` from Stripe and writes it on the account. `None` when there is
/// nothing to write (Stripe has no such subscription, or its price is not sold here).
async fn sync(
    ctx: &JobContext,
    client: &StripeClient,
    user_id: Uuid,
    id: &str,
    cause: &Cause,
) -> Result<Option<billing::Subscription>, JobError> {
    let Some(object) = subscription::fetch(client, id).await.map_err(stripe_failure)? else {
        tracing::warn!(user.id = %user_id, stripe.subscription = id, "Stripe has no such subscription; ignored");
        return Ok(None);
    };
    let object = subscription::current_for(client, object).await.map_err(stripe_failure)?;
    let owner = id_of(&object["customer"]);
    let held = db_billing::find_stripe_customer(&ctx.db, user_id).await?;
    if owner.is_none() || owner != held.as_deref() {
        tracing::warn!(user.id = %user_id, stripe.subscription = id, "the subscription belongs to another customer; ignored");
        return Ok(None);
    }
    let Some(next) = subscription_of(&object, &ctx.config.billing) else {
        tracing::warn!(user.id = %user_id, stripe.subscription = id, "the subscription's price is not in STRIPE_PRICES; ignored");
        return Ok(None);
    };
    subscription::write(&ctx.db, &ctx.hub, user_id, &next, cause).await.map_err(retry).map(Some)
}

/// Links a completed checkout's customer to the account it was started for, when the account
/// has none yet; the account, or `None` (logged) when the session does not fit one.
async fn link_checkout(ctx: &JobContext, object: &Value, customer: Option<&str>) -> Result<Option<Uuid>, JobError> {
    let Some(customer) = customer else {
        tracing::info!("a completed checkout without a customer; ignored");
        return Ok(None);
    };
    let reference = object["client_reference_id"].as_str().and_then(|r| Uuid::parse_str(r).ok());
    let Some(user_id) = reference else {
        return account_of(ctx, "checkout.session.completed", Some(customer)).await;
    };
    if users::find_user(&ctx.db, user_id).await?.is_none() {
        tracing::warn!(user.id = %user_id, "a checkout completed for an account that no longer exists; ignored");
        return Ok(None);
    }
    match db_billing::set_stripe_customer(&ctx.db, user_id, customer).await {
        Ok(_) => {}
        Err(omnistack_db::DbError::Conflict(_)) => {
            tracing::warn!(user.id = %user_id, stripe.customer = customer, "the customer belongs to another account; ignored");
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    }
    if db_billing::find_stripe_customer(&ctx.db, user_id).await?.as_deref() != Some(customer) {
        tracing::warn!(user.id = %user_id, stripe.customer = customer, "the account holds another customer; ignored");
        return Ok(None);
    }
    Ok(Some(user_id))
}

/// The account holding `customer`; `None`, logged, when no account does.
async fn account_of(ctx: &JobContext, kind: &str, customer: Option<&str>) -> Result<Option<Uuid>, JobError> {
    let Some(customer) = customer else {
        tracing::info!(stripe.event = kind, "an event without a customer; ignored");
        return Ok(None);
    };
    let found = db_billing::find_user_by_stripe_customer(&ctx.db, customer).await?;
    if found.is_none() {
        tracing::info!(stripe.customer = customer, stripe.event = kind, "no account holds this customer; ignored");
    }
    Ok(found)
}

/// Tells the account that a payment failed: a `payment_failed` email (once per invoice, so
/// replays do not repeat it) and a `billing.updated` message with its subscription.
async fn payment_failed(
    ctx: &JobContext,
    user_id: Uuid,
    invoice: &Value,
    synced: Option<billing::Subscription>,
) -> Result<(), JobError> {
    let subscription = match synced {
        Some(sub) => sub,
        None => billing::current(&ctx.db, user_id).await.map_err(retry)?,
    };
    let invoice_id = id_of(&invoice["id"]).unwrap_or("unknown");
    if let Some(email) = users::find_user(&ctx.db, user_id).await?.and_then(|user| user.email) {
        let amount = invoice["amount_due"].as_i64().zip(invoice["currency"].as_str()).map(|(amount, currency)| {
            format!(
                "{}.{:02} {}",
                amount / 100,
                amount % 100,
                currency.to_uppercase().chars().take(3).collect::<String>()
            )
        });
        let link = invoice["hosted_invoice_url"]
            .as_str()
            .filter(|url| url.starts_with("https://") && url.len() <= 2048)
            .map(str::to_owned);
        let data = PaymentFailed { plan: subscription.plan.as_str().to_owned(), amount, link };
        let message = MailMessage::new(email, &data);
        enqueue_email(&ctx.jobs, &ctx.db, &message, Some(format!("payment_failed:{invoice_id}")))
            .await
            .map_err(retry)?;
    }
    billing::announce(&ctx.hub, user_id, &subscription).await;
    Ok(())
}

/// The subscription an invoice is for (`subscription`, or `parent.subscription_details` in
/// newer API versions).
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    id_of(&invoice["subscription"]).or_else(|| id_of(&invoice["parent"]["subscription_details"]["subscription"]))
}

/// An id given as a string or as an expanded object.
fn id_of(value: &Value) -> Option<&str> {
    value.as_str().or_else(|| value["id"].as_str()).filter(|id| is_stripe_id(id))
}

fn malformed(kind: &str, field: &str) -> JobError {
    JobError::Permanent(anyhow::anyhow!("a {kind} event without a valid {field}"))
}

fn required(client: Option<&StripeClient>) -> Result<&StripeClient, JobError> {
    client.ok_or_else(|| {
        JobError::Retry(anyhow::anyhow!("STRIPE_SECRET_KEY is not set: the subscription cannot be read"))
    })
}

fn retry(err: crate::error::Error) -> JobError {
    JobError::Retry(err.into())
}

/// Unreachable or a refusal that may pass → retry; any other refusal will not change.
fn stripe_failure(err: StripeError) -> JobError {
    if err.is_transient() { JobError::Retry(err.into()) } else { JobError::Permanent(err.into()) }
}
