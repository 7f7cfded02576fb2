//! `/app/billing/{checkout,portal,invoices,cancel,resume,change-plan}`: Stripe. Each answers
//! 503 when `STRIPE_SECRET_KEY` is unset, 502 when Stripe fails, and 403 to an impersonation
//! token (an admin never buys or cancels in a user's name).

use crate::api::Routes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use super::BillingStatusResponse;
use crate::admin::audit::AuditContext;
use crate::auth::CurrentUser;
use crate::billing::stripe::checkout::{self, CheckoutRequest as Purchase};
use crate::billing::stripe::manage::{self, Invoice};
use crate::billing::stripe::{StripeDeps, configured};
use crate::error::{Error, ErrorBody, FieldError, Result};
use crate::http::extract::{Json, Query};
use crate::state::AppState;

/// The longest redirect URL accepted.
const MAX_URL_LEN: usize = 2048;
/// The longest price key accepted.
const MAX_PRICE_LEN: usize = 200;

/// The Stripe routes, for the `app` group.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(start_checkout))
        .routes(routes!(open_portal))
        .routes(routes!(list_invoices))
        .routes(routes!(cancel_subscription))
        .routes(routes!(resume_subscription))
        .routes(routes!(change_plan))
}

fn deps(state: &AppState) -> Result<StripeDeps<'_>> {
    Ok(StripeDeps {
        db: &state.db,
        billing: &state.config.billing,
        client: configured(state.stripe.as_ref())?,
        hub: &state.realtime,
    })
}

/// A subscription purchase.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CheckoutRequest {
    /// A key of `STRIPE_PRICES`, such as `pro_monthly`.
    #[schema(example = "pro_monthly", min_length = 1, max_length = 200, pattern = r"^[^\x00-\x20\x7f]+$")]
    pub price: String,
    /// Where Stripe sends the browser after payment: must start with `FRONTEND_URL` or an
    /// origin in `BILLING_REDIRECT_ORIGINS`.
    #[schema(
        example = "https://app.example.com/billing/done",
        max_length = 2048,
        pattern = r"^https?://[^\x00-\x20\x7f]+$"
    )]
    pub success_url: String,
    /// Where Stripe sends the browser when the buyer gives up; same rule.
    #[schema(
        example = "https://app.example.com/billing",
        max_length = 2048,
        pattern = r"^https?://[^\x00-\x20\x7f]+$"
    )]
    pub cancel_url: String,
}

/// A Checkout Session to send the browser to.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutResponse {
    /// Stripe's session id (`cs_…`).
    pub session_id: String,
    /// Stripe's hosted payment page.
    pub url: String,
}

/// Starts a subscription purchase on Stripe Checkout (subscription mode, for the caller's one
/// Stripe customer).
#[utoipa::path(post, path = "/app/billing/checkout", tag = "billing", security(("bearer" = [])),
    request_body = CheckoutRequest,
    responses(
        (status = CREATED, body = CheckoutResponse),
        (status = BAD_REQUEST, description = "A redirect URL outside FRONTEND_URL and BILLING_REDIRECT_ORIGINS", body = ErrorBody),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = CONFLICT, description = "Already subscribed on Stripe: change the plan instead", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A price key not in STRIPE_PRICES, or a field too long", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn start_checkout(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<CheckoutRequest>,
) -> Result<(StatusCode, Json<CheckoutResponse>)> {
    let problems: Vec<FieldError> = [
        FieldError::too_long("price", &body.price, MAX_PRICE_LEN),
        url_problem("success_url", &body.success_url),
        url_problem("cancel_url", &body.cancel_url),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let request = Purchase { price: body.price, success_url: body.success_url, cancel_url: body.cancel_url };
    let session = checkout::start_checkout(deps(&state)?, &caller, &request).await?;
    Ok((StatusCode::CREATED, Json(CheckoutResponse { session_id: session.id, url: session.url })))
}

/// Where the Billing Portal returns to.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PortalParams {
    /// Must start with `FRONTEND_URL` or an origin in `BILLING_REDIRECT_ORIGINS`.
    #[param(max_length = 2048, pattern = r"^https?://[^\x00-\x20\x7f]+$")]
    pub return_url: String,
}

/// A Billing Portal session.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortalResponse {
    /// Stripe's hosted portal page.
    pub url: String,
}

/// Opens the Stripe Billing Portal for the caller's customer (payment methods, invoices).
#[utoipa::path(get, path = "/app/billing/portal", tag = "billing", security(("bearer" = [])), params(PortalParams),
    responses(
        (status = OK, body = PortalResponse),
        (status = BAD_REQUEST, description = "A return URL outside FRONTEND_URL and BILLING_REDIRECT_ORIGINS", body = ErrorBody),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No Stripe customer yet: subscribe first", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "return_url missing or too long", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn open_portal(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<PortalParams>,
) -> Result<Json<PortalResponse>> {
    if let Some(problem) = url_problem("return_url", &params.return_url) {
        return Err(Error::Validation(vec![problem]));
    }
    let url = checkout::open_portal(deps(&state)?, &caller, &params.return_url).await?;
    Ok(Json(PortalResponse { url }))
}

/// How many invoices.
#[derive(Debug, Deserialize, IntoParams)]
pub struct InvoiceParams {
    /// 1 to 100, newest first.
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<i64>,
}

/// One invoice.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceResponse {
    /// Stripe's invoice id (`in_…`).
    pub id: String,
    /// The printed number, once finalized.
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: Option<String>,
    /// Due, in the currency's smallest unit.
    pub amount_due: i64,
    /// Paid, in the currency's smallest unit.
    pub amount_paid: i64,
    /// ISO 4217 code, lower case.
    #[schema(example = "eur")]
    pub currency: String,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// Stripe's page for it.
    pub hosted_invoice_url: Option<String>,
    /// Its PDF.
    pub invoice_pdf: Option<String>,
}

impl From<Invoice> for InvoiceResponse {
    fn from(i: Invoice) -> Self {
        InvoiceResponse {
            id: i.id,
            number: i.number,
            status: i.status,
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            currency: i.currency,
            created: i.created,
            hosted_invoice_url: i.hosted_invoice_url,
            invoice_pdf: i.invoice_pdf,
        }
    }
}

/// The caller's invoices.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvoiceListResponse {
    /// Newest first; empty before the first checkout.
    pub items: Vec<InvoiceResponse>,
}

/// The caller's Stripe invoices, newest first.
#[utoipa::path(get, path = "/app/billing/invoices", tag = "billing", security(("bearer" = [])), params(InvoiceParams),
    responses(
        (status = OK, body = InvoiceListResponse),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "limit outside 1..=100", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn list_invoices(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<InvoiceParams>,
) -> Result<Json<InvoiceListResponse>> {
    let invoices = manage::list_invoices(deps(&state)?, &caller, params.limit.unwrap_or(10)).await?;
    Ok(Json(InvoiceListResponse { items: invoices.into_iter().map(Into::into).collect() }))
}

/// How to cancel.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CancelRequest {
    /// `true`: at the end of the paid period (it can be resumed until then); `false`: now.
    #[serde(default = "at_period_end")]
    #[schema(default = true)]
    pub at_period_end: bool,
}

fn at_period_end() -> bool {
    true
}

/// Cancels the caller's Stripe subscription; answers the subscription as it is now.
#[utoipa::path(post, path = "/app/billing/cancel", tag = "billing", security(("bearer" = [])),
    request_body = CancelRequest,
    responses(
        (status = OK, body = BillingStatusResponse),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No live Stripe subscription", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn cancel_subscription(
    State(state): State<AppState>,
    caller: CurrentUser,
    context: AuditContext,
    Json(body): Json<CancelRequest>,
) -> Result<Json<BillingStatusResponse>> {
    Ok(Json(manage::cancel(deps(&state)?, &caller, &context, body.at_period_end).await?.into()))
}

/// Withdraws a pending cancellation of the caller's Stripe subscription.
#[utoipa::path(post, path = "/app/billing/resume", tag = "billing", security(("bearer" = [])),
    responses(
        (status = OK, body = BillingStatusResponse),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No live Stripe subscription", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn resume_subscription(
    State(state): State<AppState>,
    caller: CurrentUser,
    context: AuditContext,
) -> Result<Json<BillingStatusResponse>> {
    Ok(Json(manage::resume(deps(&state)?, &caller, &context).await?.into()))
}

/// The price to move to.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePlanRequest {
    /// A key of `STRIPE_PRICES`, such as `enterprise_monthly`.
    #[schema(example = "enterprise_monthly", min_length = 1, max_length = 200, pattern = r"^[^\x00-\x20\x7f]+$")]
    pub price: String,
}

/// Moves the caller's Stripe subscription to another price, prorated.
#[utoipa::path(post, path = "/app/billing/change-plan", tag = "billing", security(("bearer" = [])),
    request_body = ChangePlanRequest,
    responses(
        (status = OK, body = BillingStatusResponse),
        (status = FORBIDDEN, description = "An impersonation token", body = ErrorBody),
        (status = NOT_FOUND, description = "No live Stripe subscription", body = ErrorBody),
        (status = CONFLICT, description = "The prorated payment was declined", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A price key not in STRIPE_PRICES", body = ErrorBody),
        (status = BAD_GATEWAY, description = "Stripe failed", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "Stripe is not configured (STRIPE_SECRET_KEY)", body = ErrorBody),
    ))]
pub async fn change_plan(
    State(state): State<AppState>,
    caller: CurrentUser,
    context: AuditContext,
    Json(body): Json<ChangePlanRequest>,
) -> Result<Json<BillingStatusResponse>> {
    if let Some(problem) = FieldError::too_long("price", &body.price, MAX_PRICE_LEN) {
        return Err(Error::Validation(vec![problem]));
    }
    Ok(Json(manage::change_plan(deps(&state)?, &caller, &context, &body.price).await?.into()))
}

/// A URL field's problem: too long, or holding spaces or control characters.
fn url_problem(field: &str, url: &str) -> Option<FieldError> {
    FieldError::too_long(field, url, MAX_URL_LEN).or_else(|| {
        url.chars()
            .any(|c| c.is_whitespace() || c.is_control())
            .then(|| FieldError::new(field, "must not contain spaces or control characters"))
    })
}
