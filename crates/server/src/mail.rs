//! Outgoing email: printed to the log by default, sent through an SMTP relay when
//! `SMTP_HOST` is set (`EMAIL_PROVIDER`). Messages go out off the request path.

mod smtp;

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::{MailProvider, MailSettings};

/// One plain-text message.
#[derive(Clone, Debug)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// A way of delivering email.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Delivers one message.
    fn send(&self, email: Email) -> BoxFuture<'_, anyhow::Result<()>>;
}

/// The configured mailer (`EMAIL_PROVIDER`).
pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &settings.provider {
        MailProvider::Smtp(smtp) => Arc::new(smtp::SmtpMailer::new(smtp, &settings.from)?),
        MailProvider::Console { redact_tokens } => Arc::new(ConsoleMailer { redact_tokens: *redact_tokens }),
    })
}

/// Sends `email` in the background; a failure is logged (without the body, which may hold a
/// one-time link).
pub fn send_in_background(mailer: Arc<dyn Mailer>, email: Email) {
    tokio::spawn(async move {
        let subject = email.subject.clone();
        if let Err(err) = mailer.send(email).await {
            tracing::error!(mail.subject = %subject, error = format!("{err:#}"), "email could not be sent");
        }
    });
}

/// Development mailer: writes each message, links included, to the log. With
/// `redact_tokens` (production) every `token=` value is replaced, so no log line holds a
/// usable one-time token.
#[derive(Debug)]
pub struct ConsoleMailer {
    /// Replace the value of every `token=` parameter with `[REDACTED]`.
    pub redact_tokens: bool,
}

impl Mailer for ConsoleMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let body = if self.redact_tokens { redact_tokens(&email.body) } else { email.body };
            tracing::info!(mail.to = %email.to, mail.subject = %email.subject, "email (EMAIL_PROVIDER=console, not sent):\n{body}");
            Ok(())
        })
    }
}

/// `text` with the value of every `token=` parameter (up to the next space, `&`, quote or
/// angle bracket) replaced by `[REDACTED]`.
fn redact_tokens(text: &str) -> String {
    const MARKER: &str = "token=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARKER) {
        let (before, after) = rest.split_at(at + MARKER.len());
        out.push_str(before);
        let end =
            after.find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | '<' | '>')).unwrap_or(after.len());
        if end > 0 {
            out.push_str("[REDACTED]");
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_tokens;

    #[test]
    fn every_token_value_is_redacted_and_nothing_else() {
        let body = "Reset: https://app.example/reset-password?token=abc123_-XYZ&x=1\n\
                    <a href=\"https://app.example/verify-email?token=def456\">verify</a> token= end";
        let redacted = redact_tokens(body);
        assert!(!redacted.contains("abc123") && !redacted.contains("def456"), "{redacted}");
        assert!(redacted.contains("reset-password?token=[REDACTED]&x=1"), "{redacted}");
        assert!(redacted.contains("verify-email?token=[REDACTED]\">verify</a> token= end"), "{redacted}");
        assert_eq!(redact_tokens("no links here"), "no links here");
        assert_eq!(redact_tokens("ends with token=xyz"), "ends with token=[REDACTED]");
    }
}
