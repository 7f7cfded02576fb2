use std::sync::Mutex;

use serde_json::json;

use super::*;

/// Records what it is asked to send.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<OutgoingEmail>>);

impl Mailer for Recorder {
    fn send(&self, email: OutgoingEmail) -> BoxFuture<'_, Result<(), SendError>> {
        self.0.lock().unwrap().push(email);
        Box::pin(async { Ok(()) })
    }
}

fn ctx() -> TemplateContext {
    TemplateContext { project_name: "OmniStack".into(), frontend_url: "http://localhost:3000".into() }
}

#[test]
fn a_mail_message_is_plain_json_that_round_trips() {
    let message =
        MailMessage::new("ada@example.com", &VerifyEmail { link: "https://x.test/v".into(), valid_for: None });
    let json = serde_json::to_value(&message).unwrap();
    assert_eq!(
        json,
        json!({"template": "verify_email", "to": "ada@example.com", "data": {"link": "https://x.test/v"}})
    );
    assert_eq!(serde_json::from_value::<MailMessage>(json).unwrap(), message);
}

#[tokio::test]
async fn deliver_renders_and_hands_the_provider_both_bodies_and_the_key() {
    let recorder = Recorder::default();
    let message = MailMessage::new("ada@example.com", &Welcome { name: "Ada".into() });
    deliver(&recorder, &ctx(), &message, "job-1").await.unwrap();
    let sent = recorder.0.lock().unwrap().pop().unwrap();
    assert_eq!((sent.to.as_str(), sent.subject.as_str()), ("ada@example.com", "Welcome to OmniStack"));
    assert_eq!(sent.idempotency_key, "job-1");
    assert!(sent.text.contains("Hi Ada,") && sent.html.unwrap().contains("Hi Ada,"));
}

#[tokio::test]
async fn bad_data_or_a_bad_address_fails_permanently_without_calling_the_provider() {
    let recorder = Recorder::default();
    let missing = MailMessage { template: TemplateName::PasswordReset, to: "ada@example.com".into(), data: json!({}) };
    let err = deliver(&recorder, &ctx(), &missing, "job-2").await.unwrap_err();
    assert!(!err.is_transient() && err.to_string().contains("link"), "{err}");
    let bad_to = MailMessage::new("not an address", &Welcome { name: "Ada".into() });
    let err = deliver(&recorder, &ctx(), &bad_to, "job-3").await.unwrap_err();
    assert!(matches!(err, SendError::Permanent(_)), "{err}");
    assert!(recorder.0.lock().unwrap().is_empty());
}

#[test]
fn idempotency_keys_are_kept_when_safe_and_hashed_otherwise() {
    assert_eq!(normalized_key("0193a5f2-7c1e-7b3a-9f4e-2d8c6b1a0e57"), "0193a5f2-7c1e-7b3a-9f4e-2d8c6b1a0e57");
    for unsafe_key in ["", "a b", "<x>@y", "welcome/123", "..", &"k".repeat(201)] {
        let normalized = normalized_key(unsafe_key);
        assert_eq!(normalized.len(), 64, "{unsafe_key:?}");
        assert_eq!(normalized, normalized_key(unsafe_key), "stable");
    }
}
