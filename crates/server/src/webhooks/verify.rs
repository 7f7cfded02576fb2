//! Which check each provider's deliveries pass before anything of them is stored: one match
//! arm per [`Provider`]. A provider whose secrets are not configured answers 503.
//!
//! Apple (App Store Server Notifications V2: the `signedPayload` JWS through its `x5c` chain
//! to `APPLE_ROOT_CERTS`) and Google (Pub/Sub push: the OIDC bearer against
//! `GOOGLE_PUBSUB_JWKS_URL`) are verified by the in-app purchase work, in their arms below:
//! each returns the [`Verified`] event id and type (Apple: `notificationUUID` and
//! `notificationType`; Google: the Pub/Sub `message.messageId` and the notification kind).

use std::time::Duration;

use axum::http::HeaderMap;
use rustls::pki_types::UnixTime;
use serde_json::Value;

use super::{Provider, stripe, supabase, svix};
use crate::billing::{Stores, apple};
use crate::config::Config;
use crate::error::{Error, FieldError, Result};

/// Longest event id stored.
pub const MAX_EVENT_ID_LEN: usize = 255;
/// Longest event type stored.
pub const MAX_EVENT_TYPE_LEN: usize = 100;

/// A delivery that passed its provider's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The provider's event id: what makes a redelivery a duplicate.
    pub event_id: String,
    /// The provider's event type.
    pub event_type: String,
}

/// Verifies a delivery of `provider` at `now` (unix seconds): 400 `INVALID_SIGNATURE` for a
/// signature that does not verify, 401 for a wrong bearer, 503 when the provider is not
/// configured, 422 for a verified body without a usable event id or type.
pub async fn verify(
    provider: Provider,
    config: &Config,
    stores: &Stores,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified> {
    let settings = &config.webhooks;
    match provider {
        Provider::Stripe => {
            let secrets =
                settings.stripe.as_deref().ok_or_else(|| not_configured(provider, "STRIPE_WEBHOOK_SECRETS"))?;
            let signature = headers.get(stripe::SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
            stripe::verify(secrets, signature, body, now)?;
            let payload = json(body)?;
            checked(field(&payload, "id"), field(&payload, "type"))
        }
        Provider::Clerk => {
            let secret = settings.clerk.as_ref().ok_or_else(|| not_configured(provider, "CLERK_WEBHOOK_SECRET"))?;
            let id = svix::verify(&secret.key.0, headers, body, now)?;
            let payload = json(body)?;
            checked(Some(id.as_str()), field(&payload, "type"))
        }
        Provider::Supabase => {
            let secret =
                settings.supabase.as_ref().ok_or_else(|| not_configured(provider, "SUPABASE_WEBHOOK_SECRET"))?;
            supabase::verify(secret, headers)?;
            let payload = json(body)?;
            let (id, kind) = supabase::event_id_and_type(body, &payload)?;
            checked(Some(&id), Some(&kind))
        }
        Provider::Apple => {
            let apple = config.stores.apple.as_ref().ok_or_else(|| not_configured(provider, "APPLE_ROOT_CERTS"))?;
            let notification = apple::verify_notification(
                apple,
                body,
                UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64)),
            )?;
            checked(Some(&notification.uuid), Some(&notification.event_type()))
        }
        Provider::Google => {
            let play = stores.google.as_ref().ok_or_else(|| not_configured(provider, "GOOGLE_PUBSUB_AUDIENCE"))?;
            let push = play.verify_push(headers, body).await?;
            checked(Some(&push.message_id), Some(&push.kind))
        }
    }
}

/// 503: `provider`'s webhooks are not set up (`variable` is what sets them up).
pub fn not_configured(provider: Provider, variable: &str) -> Error {
    Error::ServiceUnavailable(format!("{provider} webhooks are not configured ({variable})"))
}

/// The body as JSON; 422 when it is not.
pub fn json(body: &[u8]) -> Result<Value> {
    serde_json::from_slice(body).map_err(|_| invalid("must be a JSON object"))
}

/// The string `key` of a JSON object.
pub fn field<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key)?.as_str()
}

/// The event id and type when each is 1 to its limit of visible ASCII; 422 otherwise.
pub fn checked(event_id: Option<&str>, event_type: Option<&str>) -> Result<Verified> {
    let usable = |value: Option<&str>, max: usize| {
        value.filter(|v| !v.is_empty() && v.len() <= max && v.bytes().all(|b| b.is_ascii_graphic())).map(str::to_owned)
    };
    match (usable(event_id, MAX_EVENT_ID_LEN), usable(event_type, MAX_EVENT_TYPE_LEN)) {
        (Some(event_id), Some(event_type)) => Ok(Verified { event_id, event_type }),
        _ => Err(invalid(&format!(
            "must carry an event id (at most {MAX_EVENT_ID_LEN}) and type (at most {MAX_EVENT_TYPE_LEN}) of visible ASCII"
        ))),
    }
}

fn invalid(message: &str) -> Error {
    Error::Validation(vec![FieldError::new("body", message)])
}
