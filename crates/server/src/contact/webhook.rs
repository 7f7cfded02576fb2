//! `contact_webhook`: each accepted submission delivered to `CONTACT_WEBHOOK_URL` in the
//! Standard Webhooks format (<https://www.standardwebhooks.com/>):
//!
//! - `webhook-id`: `msg_<submission id>`, the same on every attempt, so receivers drop repeats;
//! - `webhook-timestamp`: the attempt's time, unix seconds;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, keyed with
//!   `CONTACT_WEBHOOK_SECRET` (a `whsec_<base64>` secret is decoded first).
//!
//! A 2xx is delivered; 429, 5xx and network failures are retried with backoff; any other
//! answer is permanent (the job is `dead`, and an admin may retry it).

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use omnistack_db::contact::ContactSubmission;
use omnistack_db::jobs::Job;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use crate::jobs::{JobContext, JobError, JobKind};
use crate::telemetry::outbound;

/// Longest part of a receiver's error body kept in the job's last error.
const MAX_ERROR_BODY: usize = 300;
/// The event type in every body.
pub const EVENT_TYPE: &str = "contact.submitted";

/// The `data` of a `contact.submitted` event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContactSubmitted {
    /// `CNT-XXXXXXXX`.
    pub reference_id: String,
    /// The sender's name.
    pub name: String,
    /// The sender's address.
    pub email: String,
    /// Subject, if given.
    pub subject: Option<String>,
    /// The message.
    pub message: String,
    /// Phone, if given.
    pub phone: Option<String>,
    /// Company, if given.
    pub company: Option<String>,
    /// Source, if given.
    pub source: Option<String>,
    /// When the submission arrived.
    pub submitted_at: DateTime<Utc>,
}

impl From<&ContactSubmission> for ContactSubmitted {
    fn from(row: &ContactSubmission) -> Self {
        ContactSubmitted {
            reference_id: row.reference_id.clone(),
            name: row.name.clone(),
            email: row.email.clone(),
            subject: row.subject.clone(),
            message: row.message.clone(),
            phone: row.phone.clone(),
            company: row.company.clone(),
            source: row.source.clone(),
            submitted_at: row.created_at,
        }
    }
}

/// The arguments of a `contact_webhook` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebhookArgs {
    /// The submission (its id makes the `webhook-id`).
    pub submission_id: Uuid,
    /// The event's data.
    pub data: ContactSubmitted,
}

/// The `webhook-id` of a submission's delivery.
pub fn message_id(submission_id: Uuid) -> String {
    format!("msg_{}", submission_id.simple())
}

/// The body of a delivery.
pub fn body(data: &ContactSubmitted) -> Vec<u8> {
    let event: Value = json!({"type": EVENT_TYPE, "timestamp": data.submitted_at, "data": data});
    serde_json::to_vec(&event).unwrap_or_default()
}

/// `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Delivers `contact.submitted` events to the CRM.
#[derive(Debug, Default)]
pub struct ContactWebhook {
    client: OnceLock<reqwest::Client>,
}

impl ContactWebhook {
    fn client(&self) -> Result<&reqwest::Client, JobError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = crate::telemetry::outbound::client()?;
        Ok(self.client.get_or_init(|| client))
    }
}

impl JobKind for ContactWebhook {
    const KIND: &'static str = "contact_webhook";
    type Args = WebhookArgs;

    async fn run(&self, ctx: &JobContext, _job: &Job, args: WebhookArgs) -> Result<Option<Value>, JobError> {
        let Some(settings) = &ctx.config.contact.webhook else {
            return Err(JobError::Permanent(anyhow::anyhow!("CONTACT_WEBHOOK_URL is not set")));
        };
        let id = message_id(args.submission_id);
        let timestamp = Utc::now().timestamp();
        let body = body(&args.data);
        let signature = sign(&settings.key.0, &id, timestamp, &body);
        let request = self
            .client()?
            .post(&settings.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let response = outbound::send(request)
            .await
            .map_err(|err| JobError::Retry(anyhow::anyhow!("the webhook receiver is unreachable: {err}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(None);
        }
        let text: String = response.text().await.unwrap_or_default().chars().take(MAX_ERROR_BODY).collect();
        let error = anyhow::anyhow!("the webhook receiver answered {status}: {text}");
        Err(if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            JobError::Retry(error)
        } else {
            JobError::Permanent(error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let key = crate::config::webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_body_carries_the_type_the_time_and_the_data() {
        let data = ContactSubmitted {
            reference_id: "CNT-ABCDEFGH".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            subject: None,
            message: "Hello there".into(),
            phone: None,
            company: None,
            source: Some("pricing".into()),
            submitted_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        };
        let event: Value = serde_json::from_slice(&body(&data)).unwrap();
        assert_eq!(event["type"], "contact.submitted");
        assert_eq!(event["timestamp"], "2026-01-02T03:04:05Z");
        assert_eq!(event["data"]["reference_id"], "CNT-ABCDEFGH");
        assert_eq!(event["data"]["subject"], Value::Null);
        assert_eq!(message_id(Uuid::nil()), "msg_00000000000000000000000000000000");
    }
}
