//! Delivery through an SMTP relay (STARTTLS, implicit TLS on port 465, or plain for local relays).

use futures::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Email, Mailer};
use crate::config::SmtpSettings;

/// Sends through one relay, reusing connections.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the relay; fails on a malformed `EMAIL_FROM` or host.
    pub fn new(settings: &SmtpSettings, from: &str) -> anyhow::Result<Self> {
        let from: Mailbox = from.parse().map_err(|err| anyhow::anyhow!("EMAIL_FROM is not a mailbox: {err}"))?;
        let builder = if !settings.tls {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
        } else if settings.port == 465 {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)?
        };
        let mut builder = builder.port(settings.port).timeout(Some(std::time::Duration::from_secs(10)));
        if let (Some(user), Some(password)) = (&settings.user, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(SmtpMailer { transport: builder.build(), from })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, email: Email) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let to: Mailbox = email.to.parse()?;
            let message = Message::builder().from(self.from.clone()).to(to).subject(email.subject).body(email.body)?;
            self.transport.send(message).await?;
            Ok(())
        })
    }
}
