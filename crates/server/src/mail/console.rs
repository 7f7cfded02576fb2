//! The development mailer: each message, links included, goes to the log instead of a
//! recipient. In production (`EMAIL_PROVIDER=console` chosen explicitly) every `token=` value
//! is redacted, so no log line holds a usable one-time token.

use futures::future::BoxFuture;

use super::{Mailer, OutgoingEmail, SendError};

/// Writes messages to the log.
#[derive(Debug)]
pub struct ConsoleMailer {
    /// Replace the value of every `token=` parameter with `[REDACTED]`.
    pub redact_tokens: bool,
}

impl Mailer for ConsoleMailer {
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>> {
        Box::pin(async move {
            let text = if self.redact_tokens { redact_tokens(&email.text) } else { email.text };
            tracing::info!(
                mail.to = %email.to,
                mail.subject = %email.subject,
                mail.html_bytes = email.html.as_ref().map_or(0, String::len),
                "email (EMAIL_PROVIDER=console, not sent):\n{text}"
            );
            Ok(())
        })
    }
}

/// `value` with [`redact_tokens`] applied to every string in it, at any depth (a job's payload).
pub fn redact_tokens_in(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(redact_tokens(text)),
        Value::Array(items) => Value::Array(items.iter().map(redact_tokens_in).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), redact_tokens_in(v))).collect()),
        other => other.clone(),
    }
}

/// `text` with the value of every `token=` parameter (up to the next space, `&`, quote or
/// angle bracket) replaced by `[REDACTED]`.
pub fn redact_tokens(text: &str) -> String {
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
