//! Delivery through an SMTP relay (STARTTLS, implicit TLS on port 465, or plain for local
//! relays). Text and HTML travel as multipart/alternative; the idempotency key becomes the
//! `Message-ID`, so a retried job sends a message that receivers can recognise as the same.

use futures::future::BoxFuture;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};

use super::{Mailer, OutgoingEmail, SendError, normalized_key};
use crate::config::SmtpSettings;
use crate::telemetry;

/// Sends through one relay, reusing connections.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
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
        Ok(SmtpMailer { transport: builder.build(), from, host: settings.host.clone(), port: settings.port })
    }

    /// The message as it goes on the wire.
    fn message(&self, email: OutgoingEmail) -> Result<Message, SendError> {
        let to: Mailbox =
            email.to.parse().map_err(|_| SendError::Permanent(format!("{:?} is not an email address", email.to)))?;
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject)
            .message_id(Some(message_id(&email.idempotency_key, &self.from)));
        let built = match email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text, html)),
            None => builder.body(email.text),
        };
        built.map_err(|err| SendError::Permanent(format!("message could not be built: {err}")))
    }
}

/// `<key@domain-of-EMAIL_FROM>`: the same for every attempt at one logical message.
fn message_id(key: &str, from: &Mailbox) -> String {
    format!("<{}@{}>", normalized_key(key), from.email.domain())
}

impl Mailer for SmtpMailer {
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            let message = self.message(email)?;
            // One client span per relay conversation, like outbound HTTP calls.
            let tracer = telemetry::tracer();
            let parent = Context::current();
            let span = tracer
                .span_builder("smtp send")
                .with_kind(SpanKind::Client)
                .with_attributes([
                    KeyValue::new("server.address", self.host.clone()),
                    KeyValue::new("server.port", i64::from(self.port)),
                ])
                .start_with_context(tracer, &parent);
            let cx = parent.with_span(span);
            let result = self.transport.send(message).await.map_err(|err| {
                // A 5xx reply refuses this message for good; 4xx replies, timeouts and lost
                // connections may pass on another attempt.
                if err.is_permanent() {
                    SendError::Permanent(format!("SMTP relay refused the message: {err}"))
                } else {
                    SendError::Transient(format!("SMTP relay unavailable: {err}"))
                }
            });
            let span = cx.span();
            if let Err(err) = &result {
                span.set_attribute(KeyValue::new(
                    "error.type",
                    if err.is_transient() { "transient" } else { "permanent" },
                ));
                span.set_status(Status::error(""));
            }
            span.end();
            result.map(|_| ())
        })
    }
}
