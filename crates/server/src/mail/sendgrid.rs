//! The SendGrid v3 API: `POST {SENDGRID_API_URL}/v3/mail/send` with a bearer key. SendGrid has
//! no idempotency header; the key travels in `custom_args` (shown in its event webhooks and
//! activity feed), so a duplicate can be traced to one job.

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use serde_json::json;

use super::{Mailer, OutgoingEmail, SendError, http_api, normalized_key};
use crate::config::{HttpApiSettings, Secret};
use crate::telemetry::outbound;

/// Sends through SendGrid.
pub struct SendGridMailer {
    client: reqwest::Client,
    endpoint: String,
    api_key: Secret,
    from: Mailbox,
}

impl std::fmt::Debug for SendGridMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendGridMailer").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

impl SendGridMailer {
    /// A mailer for the account; fails on a malformed `EMAIL_FROM`.
    pub fn new(settings: &HttpApiSettings, from: &str) -> anyhow::Result<Self> {
        Ok(SendGridMailer {
            client: outbound::client()?,
            endpoint: format!("{}/v3/mail/send", settings.base_url),
            api_key: settings.api_key.clone(),
            from: http_api::sender(from)?,
        })
    }
}

impl Mailer for SendGridMailer {
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            let mut from = json!({ "email": self.from.email.to_string() });
            if let Some(name) = &self.from.name {
                from["name"] = name.as_str().into();
            }
            // SendGrid wants text/plain before text/html.
            let mut content = vec![json!({ "type": "text/plain", "value": email.text })];
            if let Some(html) = email.html {
                content.push(json!({ "type": "text/html", "value": html }));
            }
            let body = json!({
                "personalizations": [{ "to": [{ "email": email.to }] }],
                "from": from,
                "subject": email.subject,
                "content": content,
                "custom_args": { "idempotency_key": normalized_key(&email.idempotency_key) },
            });
            let request = self.client.post(&self.endpoint).bearer_auth(self.api_key.expose()).json(&body);
            http_api::send("SendGrid", request).await
        })
    }
}
