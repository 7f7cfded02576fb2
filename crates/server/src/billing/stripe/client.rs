//! Stripe's REST API over plain HTTP: form-encoded requests (`a[b][0]=c`), a bearer secret key,
//! a pinned `Stripe-Version`, and an `Idempotency-Key` on every POST so a retried call is
//! answered, not repeated. Answers are JSON objects; failures are sorted into
//! [`StripeError::Unreachable`] (worth retrying) and [`StripeError::Refused`] (Stripe said no).

use reqwest::StatusCode;
use serde_json::Value;

use crate::config::{Secret, StripeSettings};
use crate::error::Error;
use crate::telemetry::outbound;

/// The API version every request asks for, so the objects read here keep their shape
/// whatever the account's default version becomes.
pub const STRIPE_VERSION: &str = "2024-06-20";

/// The longest Stripe answer read (a list of 100 invoices is well below it).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// A handle on Stripe's API; cheap to clone.
#[derive(Clone, Debug)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

/// Why a call to Stripe failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe could not be reached, failed (5xx, 429) or answered something that is not a
    /// Stripe object: worth another attempt.
    #[error("Stripe is unreachable or failing: {0}")]
    Unreachable(String),
    /// Stripe refused the request (4xx): it will not succeed as sent.
    #[error("Stripe refused the request ({status}, {kind}): {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Stripe's `error.type` (`invalid_request_error`, `card_error`, …).
        kind: String,
        /// Stripe's `error.code` (`resource_missing`, …), when given.
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
}

impl StripeError {
    /// Whether Stripe says the object does not exist.
    pub fn is_missing(&self) -> bool {
        matches!(self, StripeError::Refused { status: 404, .. })
    }

    /// Whether the refusal may pass without the request changing (a revoked or rotated key,
    /// a lock held by a concurrent request): the queue should try again.
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Unreachable(_) => true,
            StripeError::Refused { status, .. } => matches!(status, 401 | 403 | 409),
        }
    }
}

impl From<StripeError> for Error {
    /// 409 `CONFLICT` for a declined payment (402: the caller can fix it in the Billing
    /// Portal); otherwise 502 `EXTERNAL_SERVICE_ERROR`: a failing Stripe is not the caller's
    /// fault, and neither is a request of ours that Stripe refuses (the message says which).
    fn from(err: StripeError) -> Self {
        tracing::warn!(error = %err, "a Stripe call failed");
        match err {
            StripeError::Unreachable(_) => {
                Error::ExternalService("the payment provider is unavailable; try again".into())
            }
            StripeError::Refused { status: 402, .. } => {
                Error::Conflict("the payment was declined; update the payment method in the billing portal".into())
            }
            StripeError::Refused { kind, .. } => {
                Error::ExternalService(format!("the payment provider refused the request ({kind})"))
            }
        }
    }
}

/// A form body: `(key, value)` pairs in Stripe's bracket notation.
pub type Form = Vec<(String, String)>;

impl StripeClient {
    /// A client for `settings`, with the outbound conventions (timeout, no redirects).
    pub fn new(settings: &StripeSettings) -> reqwest::Result<StripeClient> {
        Ok(StripeClient {
            http: outbound::client()?,
            base: settings.api_base.trim_end_matches('/').to_owned(),
            key: settings.secret_key.clone(),
        })
    }

    /// `GET /v1/<path>?<query>`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, StripeError> {
        let mut url = reqwest::Url::parse(&self.url(path))
            .map_err(|_| StripeError::Unreachable("STRIPE_API_BASE does not make a URL".into()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        self.send(self.http.get(url)).await
    }

    /// `POST /v1/<path>` with `form`, under `idempotency_key` (Stripe answers a repeated key
    /// with the first answer for 24 hours).
    pub async fn post(&self, path: &str, form: &Form, idempotency_key: &str) -> Result<Value, StripeError> {
        let request = self.http.post(self.url(path)).form(form).header("Idempotency-Key", idempotency_key);
        self.send(request).await
    }

    /// `DELETE /v1/<path>`.
    pub async fn delete(&self, path: &str) -> Result<Value, StripeError> {
        self.send(self.http.delete(self.url(path))).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.base, path.trim_start_matches('/'))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, StripeError> {
        let request = request.bearer_auth(self.key.expose()).header("Stripe-Version", STRIPE_VERSION);
        let response = outbound::send(request).await.map_err(|err| {
            let kind = if err.is_timeout() {
                "timed out"
            } else if err.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            StripeError::Unreachable(format!("the request {kind}"))
        })?;
        let status = response.status();
        if let Some(length) = response.content_length()
            && length > MAX_RESPONSE_BYTES as u64
        {
            return Err(StripeError::Unreachable(format!("an answer of {length} bytes")));
        }
        let body = response.bytes().await.map_err(|_| StripeError::Unreachable("the answer was cut off".into()))?;
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(StripeError::Unreachable(format!("an answer of {} bytes", body.len())));
        }
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(StripeError::Unreachable(format!("HTTP {}", status.as_u16())));
        }
        if status.is_client_error() {
            let error = json.as_ref().map(|j| &j["error"]);
            let text = |key: &str| error.and_then(|e| e[key].as_str()).map(|s| s.chars().take(500).collect::<String>());
            return Err(StripeError::Refused {
                status: status.as_u16(),
                kind: text("type").unwrap_or_else(|| "unknown_error".into()),
                code: text("code"),
                message: text("message").unwrap_or_default(),
            });
        }
        match json {
            Some(value @ Value::Object(_)) if status.is_success() => Ok(value),
            _ => Err(StripeError::Unreachable(format!("HTTP {} without a JSON object", status.as_u16()))),
        }
    }
}

/// Whether `id` may stand in a Stripe URL path: 1 to 255 ASCII letters, digits and `_`
/// (every Stripe id is `prefix_random`), so an id from an event or a row never reshapes the
/// path.
pub fn is_stripe_id(id: &str) -> bool {
    (1..=255).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_go_into_paths() {
        for ok in ["sub_1PqR2s", "cus_ABC_def", "in_1"] {
            assert!(is_stripe_id(ok), "{ok}");
        }
        for bad in ["", "sub_1/../customers", "sub_1?expand=x", "sub 1", "sub_é", &"a".repeat(256)] {
            assert!(!is_stripe_id(bad), "{bad}");
        }
    }
}
