//! `/public/webhooks/{provider}`: inbound webhooks, in the `webhooks` route group (no account;
//! each delivery is verified by its provider's signature or secret; limited per client IP by
//! the `webhooks` class). v1 only: a provider is given one URL.

use crate::api::Routes;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::error::{Error, ErrorBody, Result};
use crate::http::extract::Json;
use crate::state::AppState;
use crate::webhooks::{self, IntakeDeps, Provider, Receipt};

/// The webhook route.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(receive_webhook))
}

/// What a delivery is answered.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// Always true: the event is stored (now or before) and will be (or was) processed.
    pub received: bool,
    /// True when this event id was already stored: a redelivery, not processed again.
    pub duplicate: bool,
}

/// Receives one event from a provider: verified (Stripe `Stripe-Signature`; Clerk Svix
/// headers; Supabase `Authorization: Bearer`), stored once per event id, processed in the
/// background. The body is read raw (JSON, at most 256 KiB) and verified as sent.
#[utoipa::path(post, path = "/public/webhooks/{provider}", tag = "webhooks",
    params(("provider" = String, Path, description = "stripe, clerk, supabase, apple or google",
        max_length = 8, pattern = "^(stripe|clerk|supabase|apple|google)$")),
    request_body(content = Object, content_type = "application/json", description = "The provider's event, as it signed it"),
    responses(
        (status = OK, description = "Stored (or already stored)", body = WebhookReceipt),
        (status = BAD_REQUEST, description = "`INVALID_SIGNATURE`: the signature or its timestamp does not verify; nothing is stored", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Supabase: the bearer secret is missing or wrong", body = ErrorBody),
        (status = NOT_FOUND, description = "Not a provider", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over 256 KiB", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "The body is not declared JSON", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A verified body without a usable event id or type", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited (`webhooks` class)", body = ErrorBody),
        (status = SERVICE_UNAVAILABLE, description = "This provider's webhooks are not configured", body = ErrorBody),
    ))]
pub async fn receive_webhook(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<WebhookReceipt>> {
    let provider = Provider::parse(&provider).ok_or_else(|| Error::NotFound("no webhooks for this provider".into()))?;
    if !crate::http::extract::is_json(&headers) {
        return Err(Error::UnsupportedMediaType("expected a request body with Content-Type: application/json".into()));
    }
    let limit = webhooks::MAX_BODY_BYTES.min(state.config.max_body_bytes);
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| Error::PayloadTooLarge)?;
    let deps = IntakeDeps { db: &state.db, jobs: &state.jobs, config: &state.config, stores: &state.stores };
    let receipt = webhooks::receive(deps, provider, &headers, &body).await?;
    Ok(Json(WebhookReceipt { received: true, duplicate: receipt == Receipt::Duplicate }))
}
