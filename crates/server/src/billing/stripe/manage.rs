//! What an account does with its Stripe subscription after buying it: list its invoices,
//! cancel (at the period's end or now), resume a pending cancellation, change the plan
//! (prorated). Each change is written from the subscription Stripe answers with, at once, so
//! the account sees it before the webhook arrives (the webhook then finds nothing to change).

use chrono::{DateTime, Utc};
use omnistack_db::billing as db_billing;
use serde_json::Value;
use uuid::Uuid;

use super::client::{Form, is_stripe_id};
use super::subscription::{self, item_id, price_id, subscription_of};
use super::{StripeDeps, requested};
use crate::admin::audit::AuditContext;
use crate::auth::CurrentUser;
use crate::billing::{self, Subscription};
use crate::error::{Error, FieldError, Result};

/// The most invoices one call lists.
pub const MAX_INVOICES: i64 = 100;

/// One invoice, as the account sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    /// `in_…`.
    pub id: String,
    /// The printed number, once finalized.
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible`, `void`.
    pub status: Option<String>,
    /// Due, in the currency's smallest unit.
    pub amount_due: i64,
    /// Paid, in the currency's smallest unit.
    pub amount_paid: i64,
    /// ISO 4217, lower case.
    pub currency: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// Stripe's page for it.
    pub hosted_invoice_url: Option<String>,
    /// Its PDF.
    pub invoice_pdf: Option<String>,
}

/// The account's newest invoices (at most `limit`, 1 to [`MAX_INVOICES`]); none before its
/// first checkout.
pub async fn list_invoices(deps: StripeDeps<'_>, caller: &CurrentUser, limit: i64) -> Result<Vec<Invoice>> {
    caller.refuse_impersonation()?;
    if !(1..=MAX_INVOICES).contains(&limit) {
        return Err(Error::Validation(vec![FieldError::new("limit", format!("must be from 1 to {MAX_INVOICES}"))]));
    }
    let Some(customer) = db_billing::find_stripe_customer(deps.db, caller.user.id).await? else {
        return Ok(Vec::new());
    };
    let list = deps.client.get("invoices", &[("customer", customer), ("limit", limit.to_string())]).await?;
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Ok(list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .take(limit as usize)
        .filter_map(|inv| {
            Some(Invoice {
                id: text(&inv["id"])?,
                number: text(&inv["number"]),
                status: text(&inv["status"]),
                amount_due: inv["amount_due"].as_i64().unwrap_or_default(),
                amount_paid: inv["amount_paid"].as_i64().unwrap_or_default(),
                currency: text(&inv["currency"]).unwrap_or_default(),
                created: inv["created"].as_i64().and_then(|t| DateTime::from_timestamp(t, 0)),
                hosted_invoice_url: text(&inv["hosted_invoice_url"]),
                invoice_pdf: text(&inv["invoice_pdf"]),
            })
        })
        .collect())
}

/// Cancels the account's subscription: at the end of the paid period (it can be resumed until
/// then), or now. 404 without a live Stripe subscription.
pub async fn cancel(
    deps: StripeDeps<'_>,
    caller: &CurrentUser,
    context: &AuditContext,
    at_period_end: bool,
) -> Result<Subscription> {
    caller.refuse_impersonation()?;
    let (id, _) = live(deps, caller.user.id).await?;
    let object = if at_period_end {
        let form: Form = vec![("cancel_at_period_end".into(), "true".into())];
        deps.client.post(&format!("subscriptions/{id}"), &form, &format!("cancel-{id}-{}", Uuid::now_v7())).await?
    } else {
        deps.client.delete(&format!("subscriptions/{id}")).await?
    };
    record(deps, caller, context, &object).await
}

/// Withdraws a pending cancellation. 404 without a live Stripe subscription.
pub async fn resume(deps: StripeDeps<'_>, caller: &CurrentUser, context: &AuditContext) -> Result<Subscription> {
    caller.refuse_impersonation()?;
    let (id, _) = live(deps, caller.user.id).await?;
    let form: Form = vec![("cancel_at_period_end".into(), "false".into())];
    let object =
        deps.client.post(&format!("subscriptions/{id}"), &form, &format!("resume-{id}-{}", Uuid::now_v7())).await?;
    record(deps, caller, context, &object).await
}

/// Moves the subscription to the price `price` (a key of `STRIPE_PRICES`; 422 otherwise),
/// prorated. 404 without a live Stripe subscription.
pub async fn change_plan(
    deps: StripeDeps<'_>,
    caller: &CurrentUser,
    context: &AuditContext,
    price: &str,
) -> Result<Subscription> {
    caller.refuse_impersonation()?;
    let (price_to, _) =
        deps.billing.stripe_prices.get(price).ok_or_else(|| {
            Error::Validation(vec![FieldError::new("price", "is not a price on sale (STRIPE_PRICES)")])
        })?;
    let (id, object) = live(deps, caller.user.id).await?;
    if price_id(&object) == Some(price_to.as_str()) {
        return record(deps, caller, context, &object).await;
    }
    let item = item_id(&object)
        .filter(|item| is_stripe_id(item))
        .ok_or_else(|| Error::ExternalService("the subscription has no item to change".into()))?;
    let form: Form = vec![
        ("items[0][id]".into(), item.to_owned()),
        ("items[0][price]".into(), price_to.clone()),
        ("proration_behavior".into(), "create_prorations".into()),
    ];
    let object =
        deps.client.post(&format!("subscriptions/{id}"), &form, &format!("plan-{id}-{}", Uuid::now_v7())).await?;
    record(deps, caller, context, &object).await
}

/// The account's live subscription at Stripe: its id and the object.
async fn live(deps: StripeDeps<'_>, user_id: Uuid) -> Result<(String, Value)> {
    let missing = || Error::NotFound("the account has no Stripe subscription".into());
    let customer = db_billing::find_stripe_customer(deps.db, user_id).await?.ok_or_else(missing)?;
    let object = subscription::live_subscription(deps.client, &customer).await?.ok_or_else(missing)?;
    let id = object["id"].as_str().filter(|id| is_stripe_id(id)).ok_or_else(missing)?.to_owned();
    Ok((id, object))
}

/// Writes the subscription Stripe answered with, and returns the account's subscription.
async fn record(
    deps: StripeDeps<'_>,
    caller: &CurrentUser,
    context: &AuditContext,
    object: &Value,
) -> Result<Subscription> {
    match subscription_of(object, deps.billing) {
        Some(next) => subscription::write(deps.db, deps.hub, caller.user.id, &next, &requested(caller, context)).await,
        None => billing::current(deps.db, caller.user.id).await,
    }
}
