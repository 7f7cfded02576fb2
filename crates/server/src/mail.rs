//! Outgoing email: printed to the log by default, sent through an SMTP relay when
//! `SMTP_HOST` is set. Messages go out off the request path.

mod smtp;

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::MailSettings;

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

/// The configured mailer: SMTP when `SMTP_HOST` is set, otherwise the log.
pub fn from_settings(settings: &MailSettings) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match &settings.smtp {
        Some(smtp) => Arc::new(smtp::SmtpMailer::new(smtp, &settings.from)?),
        None => Arc::new(ConsoleMailer),
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

/// Development mailer: writes each message, links included, to the log.
#[derive(Debug)]
pub struct ConsoleMailer;

impl Mailer for ConsoleMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            tracing::info!(mail.to = %email.to, mail.subject = %email.subject, "email (SMTP_HOST unset, not sent):\n{}", email.body);
            Ok(())
        })
    }
}
