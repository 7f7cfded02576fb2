//! The first purchase: one Stripe customer per account, ever, then a Checkout Session in
//! subscription mode; and the Billing Portal, where the customer manages payment details.
//!
//! One customer per account holds twice over: the customer is created under the idempotency
//! key `customer-<account id>` (Stripe answers concurrent and repeated creations with the same
//! customer), and `users.stripe_customer_id` is only ever set while empty, then re-read, so the
//! account keeps the first customer recorded whatever happens at Stripe.

use std::time::Duration;

use omnistack_db::{billing as db_billing, users};
use serde_json::Value;
use uuid::Uuid;

use super::StripeDeps;
use super::client::{Form, StripeError, is_stripe_id};
use crate::auth::CurrentUser;
use crate::billing::{self, Store, SubscriptionStatus};
use crate::error::{Error, FieldError, Result};

/// Attempts at creating the customer while Stripe reports the same key in flight (409).
const CUSTOMER_ATTEMPTS: u32 = 6;

/// A Checkout Session to send the browser to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutSession {
    /// `cs_…`.
    pub id: String,
    /// Stripe's hosted page.
    pub url: String,
}

/// What the account asks to buy.
#[derive(Clone, Debug)]
pub struct CheckoutRequest {
    /// A key of `STRIPE_PRICES` (`pro_monthly`).
    pub price: String,
    /// Where Stripe sends the browser after paying.
    pub success_url: String,
    /// Where Stripe sends the browser when the buyer gives up.
    pub cancel_url: String,
}

/// Starts a subscription purchase: 422 for a price key not in `STRIPE_PRICES`, 400 for a
/// redirect outside the allowed origins, 409 when the account already has a Stripe
/// subscription (change its plan instead), 403 when impersonated.
pub async fn start_checkout(
    deps: StripeDeps<'_>,
    caller: &CurrentUser,
    request: &CheckoutRequest,
) -> Result<CheckoutSession> {
    caller.refuse_impersonation()?;
    let (price_id, _) =
        deps.billing.stripe_prices.get(&request.price).ok_or_else(|| {
            Error::Validation(vec![FieldError::new("price", "is not a price on sale (STRIPE_PRICES)")])
        })?;
    check_redirect(deps, "success_url", &request.success_url)?;
    check_redirect(deps, "cancel_url", &request.cancel_url)?;
    let current = billing::current(deps.db, caller.user.id).await?;
    let subscribed = matches!(
        current.status,
        SubscriptionStatus::Active | SubscriptionStatus::Trialing | SubscriptionStatus::PastDue
    );
    if subscribed && current.store == Some(Store::Stripe) {
        return Err(Error::Conflict("the account is already subscribed; change its plan instead".into()));
    }
    let customer = ensure_customer(deps, caller.user.id).await?;
    let user = caller.user.id.to_string();
    let form: Form = vec![
        ("mode".into(), "subscription".into()),
        ("customer".into(), customer),
        ("client_reference_id".into(), user.clone()),
        ("line_items[0][price]".into(), price_id.clone()),
        ("line_items[0][quantity]".into(), "1".into()),
        ("success_url".into(), request.success_url.clone()),
        ("cancel_url".into(), request.cancel_url.clone()),
        ("metadata[user_id]".into(), user.clone()),
        ("subscription_data[metadata][user_id]".into(), user),
    ];
    let session = deps.client.post("checkout/sessions", &form, &format!("checkout-{}", Uuid::now_v7())).await?;
    match (text(&session, "id"), text(&session, "url")) {
        (Some(id), Some(url)) => Ok(CheckoutSession { id, url }),
        _ => Err(StripeError::Unreachable("a checkout session without an id or url".into()).into()),
    }
}

/// A Billing Portal session for the account's customer: its URL. 404 when the account has no
/// customer yet (it never started a checkout), 400 for a return URL outside the allowed origins.
pub async fn open_portal(deps: StripeDeps<'_>, caller: &CurrentUser, return_url: &str) -> Result<String> {
    caller.refuse_impersonation()?;
    check_redirect(deps, "return_url", return_url)?;
    let customer = db_billing::find_stripe_customer(deps.db, caller.user.id)
        .await?
        .ok_or_else(|| Error::NotFound("the account has no billing account yet; subscribe first".into()))?;
    let form: Form = vec![("customer".into(), customer), ("return_url".into(), return_url.to_owned())];
    let session = deps.client.post("billing_portal/sessions", &form, &format!("portal-{}", Uuid::now_v7())).await?;
    text(&session, "url").ok_or_else(|| StripeError::Unreachable("a portal session without a url".into()).into())
}

/// The account's Stripe customer, created on first use (see the module documentation).
pub async fn ensure_customer(deps: StripeDeps<'_>, user_id: Uuid) -> Result<String> {
    if let Some(customer) = db_billing::find_stripe_customer(deps.db, user_id).await? {
        return Ok(customer);
    }
    let user = users::find_user(deps.db, user_id).await?.ok_or_else(|| Error::NotFound("account not found".into()))?;
    let mut form: Form = vec![("metadata[user_id]".into(), user_id.to_string())];
    if let Some(email) = &user.email {
        form.push(("email".into(), email.clone()));
    }
    let key = format!("customer-{user_id}");
    let mut attempt = 0;
    let customer = loop {
        attempt += 1;
        match deps.client.post("customers", &form, &key).await {
            Ok(customer) => break customer,
            // Another request of this account is creating it under the same key right now.
            Err(StripeError::Refused { status: 409, .. }) if attempt < CUSTOMER_ATTEMPTS => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(err) => return Err(err.into()),
        }
    };
    let id = text(&customer, "id")
        .filter(|id| is_stripe_id(id))
        .ok_or_else(|| Error::from(StripeError::Unreachable("a customer without an id".into())))?;
    match db_billing::set_stripe_customer(deps.db, user_id, &id).await {
        Ok(true) => {
            tracing::info!(user.id = %user_id, stripe.customer = %id, "Stripe customer recorded");
            Ok(id)
        }
        // Recorded by a concurrent request first: the account keeps that one.
        Ok(false) => db_billing::find_stripe_customer(deps.db, user_id)
            .await?
            .ok_or_else(|| Error::NotFound("account not found".into())),
        Err(omnistack_db::DbError::Conflict(_)) => {
            tracing::error!(user.id = %user_id, stripe.customer = %id, "Stripe returned a customer another account holds");
            Err(Error::ExternalService("the payment provider returned another account's customer".into()))
        }
        Err(err) => Err(err.into()),
    }
}

/// 400 `BAD_REQUEST` unless `url` starts with `FRONTEND_URL` or a `BILLING_REDIRECT_ORIGINS`
/// origin: the billing pages are no open redirect.
fn check_redirect(deps: StripeDeps<'_>, field: &str, url: &str) -> Result<()> {
    if deps.billing.is_allowed_redirect(url) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!("{field} must start with FRONTEND_URL or an origin in BILLING_REDIRECT_ORIGINS")))
    }
}

fn text(object: &Value, key: &str) -> Option<String> {
    object[key].as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}
