//! Stripe subscriptions without an SDK (ADR 0014): Checkout for the first purchase, the Billing
//! Portal for payment details, and the account's own calls (invoices, cancel, resume, change
//! plan). Stripe's webhook events are verified and stored by `webhooks`; [`StripeEvents`]
//! processes them, always re-reading the subscription from Stripe before writing it, so an
//! event that arrives late or twice never overwrites newer state.
//!
//! | module | what |
//! |---|---|
//! | [`client`] | the HTTP client: form bodies, idempotency keys, errors sorted into retry or refusal |
//! | [`subscription`] | a Stripe subscription as the account's [`Subscription`](super::Subscription), and writing it |
//! | [`checkout`] | one customer per account, Checkout and Billing Portal sessions |
//! | [`manage`] | invoices, cancel, resume, change plan |
//! | [`events`] | the webhook events acted on |

pub mod checkout;
pub mod client;
pub mod events;
pub mod manage;
pub mod subscription;

use omnistack_db::Db;

pub use client::{StripeClient, StripeError};
pub use events::{StripeEvents, process_event};

use crate::admin::audit::{Actor, AuditContext};
use crate::auth::CurrentUser;
use crate::config::BillingSettings;
use crate::error::{Error, Result};
use crate::realtime::Hub;

use super::Cause;

/// What the Stripe services use.
#[derive(Clone, Copy, Debug)]
pub struct StripeDeps<'a> {
    /// The database.
    pub db: &'a Db,
    /// Prices, plans and redirect origins.
    pub billing: &'a BillingSettings,
    /// Stripe's API.
    pub client: &'a StripeClient,
    /// Realtime, to announce changes.
    pub hub: &'a Hub,
}

/// The configured client, or 503 `SERVICE_UNAVAILABLE` when `STRIPE_SECRET_KEY` is unset.
pub fn configured(client: Option<&StripeClient>) -> Result<&StripeClient> {
    client.ok_or_else(|| Error::ServiceUnavailable("payments are not configured (STRIPE_SECRET_KEY)".into()))
}

/// The cause of a change the account asked for itself.
fn requested(caller: &CurrentUser, context: &AuditContext) -> Cause {
    Cause { actor: Actor::of(caller), source: "stripe.request", reference: None, context: context.clone() }
}
