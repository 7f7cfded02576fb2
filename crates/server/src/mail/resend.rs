//! The Resend API: `POST {RESEND_API_URL}/emails` with a bearer key and the idempotency key in
//! `Idempotency-Key`, so Resend sends a retried message once (within its 24 h window).

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use serde_json::json;

use super::{Mailer, OutgoingEmail, SendError, http_api, normalized_key};
use crate::config::{HttpApiSettings, Secret};
use crate::telemetry::outbound;

/// Sends through Resend.
pub struct ResendMailer {
    client: reqwest::Client,
    endpoint: String,
    api_key: Secret,
    from: Mailbox,
}

impl std::fmt::Debug for ResendMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResendMailer").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl ResendMailer {
    /// A mailer for the account; fails on a malformed `EMAIL_FROM`.
    pub fn new(settings: &HttpApiSettings, from: &str) -> anyhow::Result<Self> {
        Ok(ResendMailer {
            client: outbound::client()?,
            endpoint: format!("{}/emails", settings.base_url),
            api_key: settings.api_key.clone(),
            from: http_api::sender(from)?,
        })
    }
}

impl Mailer for ResendMailer {
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            let mut body = json!({
                "from": self.from.to_string(),
                "to": [email.to],
                "subject": email.subject,
                "text": email.text,
            });
            if let Some(html) = email.html {
                body["html"] = html.into();
            }
            let request = self
                .client
                .post(&self.endpoint)
                .bearer_auth(self.api_key.expose())
                .header("Idempotency-Key", normalized_key(&email.idempotency_key))
                .json(&body);
            http_api::send("Resend", request).await
        })
    }
}
