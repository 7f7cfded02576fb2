//! Outgoing email: templates rendered to HTML and plain text, delivered by the provider chosen
//! in `EMAIL_PROVIDER`. Every email is sent by a job that calls [`deliver`] with the job's id
//! as idempotency key, so a retried job never sends a second copy the provider can recognise.
//!
//! | Module        | What it holds                                                              |
//! |---------------|----------------------------------------------------------------------------|
//! | `templates`   | [`TemplateName`], the data each template needs, rendering and HTML escaping |
//! | `console`     | the development mailer: messages written to the log, tokens redacted in production |
//! | `smtp`        | an SMTP relay: multipart/alternative, `Message-ID` from the idempotency key |
//! | `resend`      | the Resend API (`POST /emails`, `Idempotency-Key`)                          |
//! | `sendgrid`    | the SendGrid v3 API (`POST /v3/mail/send`, key in `custom_args`)            |
//! | `http_api`    | what the HTTP providers share: client, status → [`SendError`]               |

mod console;
mod http_api;
mod resend;
mod sendgrid;
mod smtp;
mod templates;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use console::{ConsoleMailer, redact_tokens, redact_tokens_in};
pub use templates::{
    ContactAdmin, ContactConfirmation, DailyReport, ExportReady, Notification, PasswordReset, PaymentFailed,
    RenderError, Rendered, TemplateContext, TemplateData, TemplateName, VerifyEmail, Welcome, escape_html,
};

use crate::config::{MailProvider, MailSettings};

/// One rendered message, ready for a provider.
#[derive(Clone, Debug)]
pub struct OutgoingEmail {
    /// Recipient address.
    pub to: String,
    /// Subject line (one line).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body; `None` sends plain text only.
    pub html: Option<String>,
    /// Stable across retries of the same logical message (the job id): providers use it to
    /// drop duplicates, SMTP turns it into the `Message-ID`.
    pub idempotency_key: String,
}

/// Why a message was not sent, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider was unreachable, timed out, throttled us (429) or failed (5xx): retry later.
    #[error("email not sent, worth retrying: {0}")]
    Transient(String),
    /// The message or the account was refused (a 4xx other than 429, a 5xx SMTP reply, bad
    /// template data): retrying the same message fails the same way.
    #[error("email refused: {0}")]
    Permanent(String),
}

impl SendError {
    /// True when a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
}

impl From<RenderError> for SendError {
    fn from(err: RenderError) -> Self {
        SendError::Permanent(err.to_string())
    }
}

/// A way of delivering email.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Delivers one message.
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>>;
}

/// Creates every `omnistack_emails_sent_total` series at zero, so dashboards show 0 rather
/// than no data (called at start when metrics are on).
pub fn register_metric_series() {
    for template in TemplateName::ALL {
        for outcome in OUTCOMES {
            metrics::counter!("omnistack_emails_sent_total", "template" => template.as_str(), "outcome" => outcome)
                .absolute(0);
        }
    }
}

/// The configured mailer (`EMAIL_PROVIDER`).
pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &settings.provider {
        MailProvider::Smtp(smtp) => Arc::new(smtp::SmtpMailer::new(smtp, &settings.from)?),
        MailProvider::Resend(api) => Arc::new(resend::ResendMailer::new(api, &settings.from)?),
        MailProvider::SendGrid(api) => Arc::new(sendgrid::SendGridMailer::new(api, &settings.from)?),
        MailProvider::Console { redact_tokens } => Arc::new(ConsoleMailer { redact_tokens: *redact_tokens }),
    })
}

/// The `outcome` label values of `omnistack_emails_sent_total`.
const OUTCOMES: [&str; 2] = ["sent", "failed"];

/// What an `email` job carries: which template, to whom, and the template's data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailMessage {
    /// The template to render.
    pub template: TemplateName,
    /// Recipient address.
    pub to: String,
    /// The template's data (see the structs in [`templates`]); checked when rendered.
    pub data: serde_json::Value,
}

impl MailMessage {
    /// A message to `to` rendering `data`'s template.
    pub fn new<D: TemplateData>(to: impl Into<String>, data: &D) -> MailMessage {
        MailMessage {
            template: D::TEMPLATE,
            to: to.into(),
            // Serializing these plain structs of strings and numbers cannot fail.
            data: serde_json::to_value(data).unwrap_or_default(),
        }
    }
}

/// Renders `message` and sends it, counting the outcome in `omnistack_emails_sent_total`.
/// Bad data or a malformed address is a [`SendError::Permanent`]: no retry can fix it.
pub async fn deliver(
    mailer: &dyn Mailer,
    ctx: &TemplateContext,
    message: &MailMessage,
    idempotency_key: &str,
) -> Result<(), SendError> {
    let result = render_and_send(mailer, ctx, message, idempotency_key).await;
    let outcome = if result.is_ok() { OUTCOMES[0] } else { OUTCOMES[1] };
    metrics::counter!("omnistack_emails_sent_total", "template" => message.template.as_str(), "outcome" => outcome)
        .increment(1);
    if let Err(err) = &result {
        tracing::warn!(
            mail.template = message.template.as_str(),
            mail.transient = err.is_transient(),
            error = %err,
            "email not sent"
        );
    }
    result
}

async fn render_and_send(
    mailer: &dyn Mailer,
    ctx: &TemplateContext,
    message: &MailMessage,
    idempotency_key: &str,
) -> Result<(), SendError> {
    if message.to.parse::<lettre::Address>().is_err() {
        return Err(SendError::Permanent(format!("{:?} is not an email address", message.to)));
    }
    let rendered = templates::render(message.template, &message.data, ctx)?;
    mailer
        .send(OutgoingEmail {
            to: message.to.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: Some(rendered.html),
            idempotency_key: idempotency_key.to_owned(),
        })
        .await
}

/// `name` rendered with its sample data, as `omnistack email preview` prints it.
pub fn preview(name: TemplateName, ctx: &TemplateContext) -> Result<Rendered, RenderError> {
    templates::render(name, &templates::sample(name), ctx)
}

/// The idempotency key as providers and `Message-ID` accept it: kept when it is short and made
/// of letters, digits, `-`, `_` and `.`, otherwise its SHA-256 in hex (still stable).
fn normalized_key(key: &str) -> String {
    let safe = !key.is_empty()
        && key.len() <= 200
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..");
    if safe {
        key.to_owned()
    } else {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    }
}

#[cfg(test)]
mod tests;
