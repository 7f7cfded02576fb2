//! `/app/billing/*`: the caller's subscription; the Stripe routes are in [`stripe`].

pub mod stripe;

use crate::api::Routes;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::admin::audit::AuditContext;
use crate::auth::CurrentUser;
use crate::billing::{self, Store, Subscription};
use crate::error::{Error, ErrorBody, FieldError, Result};
use crate::http::extract::Json;
use crate::state::AppState;

/// The billing routes, for the `app` group.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(billing_status))
        .routes(routes!(link_apple_purchase))
        .routes(routes!(link_google_purchase))
        .merge(stripe::routes())
}

/// The caller's subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct BillingStatusResponse {
    /// The plan the account gets now: the subscribed plan while the status is `active` or
    /// `trialing`, else `free`.
    #[schema(example = "pro")]
    pub plan: &'static str,
    /// The plan subscribed to, whatever its status.
    #[schema(example = "pro")]
    pub subscribed_plan: &'static str,
    /// `none`, `trialing`, `active`, `past_due`, `canceled` or `incomplete`.
    #[schema(example = "active")]
    pub status: &'static str,
    /// `stripe`, `apple` or `google`; null when never subscribed.
    #[schema(example = "stripe")]
    pub store: Option<&'static str>,
    /// The end of the paid period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether the subscription ends at `current_period_end`.
    pub cancel_at_period_end: bool,
}

impl From<Subscription> for BillingStatusResponse {
    fn from(sub: Subscription) -> Self {
        BillingStatusResponse {
            plan: sub.effective_plan().as_str(),
            subscribed_plan: sub.plan.as_str(),
            status: sub.status.as_str(),
            store: sub.store.map(Store::as_str),
            current_period_end: sub.current_period_end,
            cancel_at_period_end: sub.cancel_at_period_end,
        }
    }
}

/// The caller's subscription and the plan it gets. Answers whether or not a store is
/// configured.
#[utoipa::path(get, path = "/app/billing/status", tag = "billing", security(("bearer" = [])),
    responses(
        (status = OK, body = BillingStatusResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
    ))]
pub async fn billing_status(State(state): State<AppState>, caller: CurrentUser) -> Result<Json<BillingStatusResponse>> {
    Ok(Json(billing::current(&state.db, caller.user.id).await?.into()))
}

/// The longest signed transaction accepted.
const MAX_SIGNED_TRANSACTION: usize = 16 * 1024;
/// The longest Google Play purchase token accepted.
const MAX_PURCHASE_TOKEN: usize = 512;
/// The longest store product id accepted.
const MAX_PRODUCT_ID: usize = 150;

/// An App Store purchase to link: a signed transaction as StoreKit 2 gives the app
/// (`Transaction.jwsRepresentation`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct AppleLinkRequest {
    /// The compact JWS of the transaction.
    #[schema(max_length = 16384, pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub signed_transaction: String,
}

/// A Google Play purchase to link, as the Play Billing Library gives the app.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GoogleLinkRequest {
    /// `Purchase.getPurchaseToken()`.
    #[schema(max_length = 512, pattern = r"^[A-Za-z0-9._:-]+$")]
    pub purchase_token: String,
    /// The subscription's product id (a key of `GOOGLE_PRODUCTS`).
    #[schema(max_length = 150, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub product_id: String,
}

fn check(field: &str, value: &str, max: usize, allowed: impl Fn(u8) -> bool) -> Result<()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(allowed) {
        return Err(Error::Validation(vec![FieldError::new(
            field,
            format!("must be 1 to {max} characters of the store's alphabet"),
        )]));
    }
    Ok(())
}

fn jws_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// Links an App Store purchase to the caller and applies its state. The transaction is
/// verified like a notification (x5c chain to `APPLE_ROOT_CERTS`, `APPLE_BUNDLE_ID`,
/// `APPLE_ENVIRONMENT`); its `appAccountToken`, when set, must be the caller's id. Linking it
/// again is harmless; another account's purchase is 409. Not with an impersonation token.
#[utoipa::path(post, path = "/app/billing/apple/link", tag = "billing", security(("bearer" = [])),
    request_body = AppleLinkRequest,
    responses(
        (status = OK, description = "Linked; the caller's subscription now", body = BillingStatusResponse),
        (status = BAD_REQUEST, description = "`INVALID_SIGNATURE`: the transaction does not verify", body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, description = "An impersonation token, or the purchase was made for another account (`appAccountToken`)", body = ErrorBody),
        (status = CONFLICT, description = "Another account holds this purchase", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "Malformed, oversized, or a product not in `APPLE_PRODUCTS`", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "The App Store is not configured", body = ErrorBody),
    ))]
pub async fn link_apple_purchase(
    State(state): State<AppState>,
    caller: CurrentUser,
    context: AuditContext,
    Json(body): Json<AppleLinkRequest>,
) -> Result<Json<BillingStatusResponse>> {
    caller.refuse_impersonation()?;
    let settings = state
        .config
        .stores
        .apple
        .as_ref()
        .ok_or_else(|| Error::ServiceUnavailable("the App Store is not configured (APPLE_ROOT_CERTS)".into()))?;
    check("signed_transaction", &body.signed_transaction, MAX_SIGNED_TRANSACTION, jws_char)?;
    let sub = billing::apple::link(
        &state.db,
        &state.realtime,
        settings,
        &state.config.billing,
        &caller.user,
        context,
        &body.signed_transaction,
    )
    .await?;
    Ok(Json(sub.into()))
}

/// Links a Google Play subscription purchase to the caller, verified with the Android
/// Publisher API, and applies Google's state of it (acknowledging it when pending). When the
/// app set `obfuscatedAccountId` to an account id at purchase, it must be the caller's.
/// Linking it again is harmless; another account's purchase is 409. Not with an
/// impersonation token.
#[utoipa::path(post, path = "/app/billing/google/link", tag = "billing", security(("bearer" = [])),
    request_body = GoogleLinkRequest,
    responses(
        (status = OK, description = "Linked; the caller's subscription now", body = BillingStatusResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, description = "An impersonation token, or the purchase was made for another account", body = ErrorBody),
        (status = NOT_FOUND, description = "Google Play knows no such purchase", body = ErrorBody),
        (status = CONFLICT, description = "Another account holds this purchase", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "Malformed, oversized, a product not in `GOOGLE_PRODUCTS` or not the purchase's", body = ErrorBody),
        (status = BAD_GATEWAY, description = "`EXTERNAL_SERVICE_ERROR`: Google failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Google Play is not configured", body = ErrorBody),
    ))]
pub async fn link_google_purchase(
    State(state): State<AppState>,
    caller: CurrentUser,
    context: AuditContext,
    Json(body): Json<GoogleLinkRequest>,
) -> Result<Json<BillingStatusResponse>> {
    caller.refuse_impersonation()?;
    let play = state
        .stores
        .google
        .as_ref()
        .ok_or_else(|| Error::ServiceUnavailable("Google Play is not configured (GOOGLE_PLAY_*)".into()))?;
    check("purchase_token", &body.purchase_token, MAX_PURCHASE_TOKEN, |b| jws_char(b) || b == b':')?;
    check("product_id", &body.product_id, MAX_PRODUCT_ID, jws_char)?;
    if !body.product_id.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(Error::Validation(vec![FieldError::new("product_id", "must start with a letter or digit")]));
    }
    let sub = billing::google::link(
        &state.db,
        &state.realtime,
        play,
        &state.config.billing,
        &caller.user,
        context,
        billing::google::ReportedPurchase { token: &body.purchase_token, product_id: &body.product_id },
    )
    .await?;
    Ok(Json(sub.into()))
}
