//! `/app/billing/*`: the caller's subscription; the Stripe routes are in [`stripe`].

pub mod stripe;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::CurrentUser;
use crate::billing::{self, Store, Subscription};
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::state::AppState;

/// The billing routes, for the `app` group.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(billing_status)).merge(stripe::routes())
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
