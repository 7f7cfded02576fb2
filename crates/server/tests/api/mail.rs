//! Email providers against local fakes that speak their real wire formats: Resend and SendGrid
//! as in-test HTTP servers, SMTP through the test sink. `deliver` is what the `email` job runs.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use omnistack::config::{HttpApiSettings, MailProvider, MailSettings, Secret, SmtpSettings};
use omnistack::mail::{self, ContactAdmin, MailMessage, Mailer, SendError, TemplateContext, VerifyEmail, Welcome};
use omnistack_testkit::MailSink;
use serde_json::{Value, json};

/// One request as the fake provider received it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// An HTTP provider on 127.0.0.1: records every request, answers the queued statuses in turn
/// and then `200`.
#[derive(Clone, Default)]
struct FakeProvider {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

impl FakeProvider {
    async fn start(answers: &[u16]) -> (FakeProvider, String) {
        let fake =
            FakeProvider { answers: Arc::new(Mutex::new(answers.iter().copied().collect())), ..Default::default() };
        let state = fake.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                state.seen.lock().unwrap().push(Seen { method, path: uri.path().to_owned(), headers, body });
                let status = state.answers.lock().unwrap().pop_front().unwrap_or(200);
                (StatusCode::from_u16(status).unwrap(), r#"{"id":"4ef9a417","message":"fake answer"}"#)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, base)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn ctx() -> TemplateContext {
    TemplateContext { project_name: "OmniStack".into(), frontend_url: "http://localhost:3000".into() }
}

const FROM: &str = "OmniStack <noreply@omnistack.test>";

fn mailer(provider: MailProvider) -> Arc<dyn Mailer> {
    omnistack::install_crypto_provider();
    mail::from_settings(&MailSettings { from: FROM.into(), provider }).unwrap()
}

fn api(key: &str, base_url: &str) -> HttpApiSettings {
    HttpApiSettings { api_key: Secret::new(key), base_url: base_url.to_owned() }
}

fn verify_message() -> MailMessage {
    let link = "http://localhost:3000/verify-email?token=tok123".to_owned();
    MailMessage::new("ada@example.com", &VerifyEmail { link, valid_for: Some("48 hours".into()) })
}

#[tokio::test]
async fn resend_gets_its_wire_format_and_the_same_idempotency_key_on_every_retry() {
    let (fake, base) = FakeProvider::start(&[503]).await;
    let mailer = mailer(MailProvider::Resend(api("re_test_key", &base)));
    let message = verify_message();
    let first = mail::deliver(mailer.as_ref(), &ctx(), &message, "0193a5f2-7c1e-7b3a").await.unwrap_err();
    assert!(first.is_transient(), "{first}");
    mail::deliver(mailer.as_ref(), &ctx(), &message, "0193a5f2-7c1e-7b3a").await.unwrap();

    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/emails"));
        assert_eq!(request.header("authorization"), "Bearer re_test_key");
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(request.header("idempotency-key"), "0193a5f2-7c1e-7b3a");
        let body = &request.body;
        assert_eq!(body["from"], FROM);
        assert_eq!(body["to"], json!(["ada@example.com"]));
        assert_eq!(body["subject"], "Confirm your OmniStack email address");
        assert!(body["text"].as_str().unwrap().contains("http://localhost:3000/verify-email?token=tok123"));
        assert!(body["html"].as_str().unwrap().contains("href=\"http://localhost:3000/verify-email?token=tok123\""));
    }
}

#[tokio::test]
async fn sendgrid_gets_its_wire_format_with_the_key_in_custom_args() {
    let (fake, base) = FakeProvider::start(&[202]).await;
    let mailer = mailer(MailProvider::SendGrid(api("SG.test-key", &base)));
    let welcome = MailMessage::new("grace@example.com", &Welcome { name: "Grace <Hopper>".into() });
    mail::deliver(mailer.as_ref(), &ctx(), &welcome, "job-42").await.unwrap();

    let [request] = fake.seen().try_into().unwrap();
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v3/mail/send"));
    assert_eq!(request.header("authorization"), "Bearer SG.test-key");
    assert_eq!(request.header("content-type"), "application/json");
    let body = &request.body;
    assert_eq!(body["personalizations"], json!([{"to": [{"email": "grace@example.com"}]}]));
    assert_eq!(body["from"], json!({"email": "noreply@omnistack.test", "name": "OmniStack"}));
    assert_eq!(body["subject"], "Welcome to OmniStack");
    assert_eq!(body["custom_args"], json!({"idempotency_key": "job-42"}));
    let content = body["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "text/plain", "SendGrid wants text/plain first");
    assert!(content[0]["value"].as_str().unwrap().contains("Hi Grace <Hopper>,"));
    assert_eq!(content[1]["type"], "text/html");
    assert!(content[1]["value"].as_str().unwrap().contains("Hi Grace &lt;Hopper&gt;,"));
}

#[tokio::test]
async fn provider_refusals_are_permanent_while_throttling_outages_and_silence_are_transient() {
    for (status, transient) in [(500, true), (502, true), (429, true), (400, false), (401, false), (422, false)] {
        let (resend, resend_url) = FakeProvider::start(&[status]).await;
        let (sendgrid, sendgrid_url) = FakeProvider::start(&[status]).await;
        for (mailer, fake) in [
            (mailer(MailProvider::Resend(api("k", &resend_url))), &resend),
            (mailer(MailProvider::SendGrid(api("k", &sendgrid_url))), &sendgrid),
        ] {
            let err = mail::deliver(mailer.as_ref(), &ctx(), &verify_message(), "job-1").await.unwrap_err();
            assert_eq!(err.is_transient(), transient, "{status}: {err}");
            assert!(err.to_string().contains(&status.to_string()) && err.to_string().contains("fake answer"), "{err}");
            assert_eq!(fake.seen().len(), 1);
        }
    }
    // Nothing listening: a network failure is worth retrying.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    for provider in [MailProvider::Resend(api("k", &url)), MailProvider::SendGrid(api("k", &url))] {
        let err = mail::deliver(mailer(provider).as_ref(), &ctx(), &verify_message(), "job-1").await.unwrap_err();
        assert!(matches!(err, SendError::Transient(_)), "{err}");
    }
}

fn smtp(port: u16) -> MailProvider {
    MailProvider::Smtp(SmtpSettings { host: "127.0.0.1".into(), port, user: None, password: None, tls: false })
}

#[tokio::test]
async fn smtp_sends_multipart_alternative_with_a_message_id_fixed_by_the_idempotency_key() {
    let sink = MailSink::start().await;
    let mailer = mailer(smtp(sink.port));
    let contact = ContactAdmin {
        reference_id: "CNT-7Q2K9XHM".into(),
        name: "<script>alert(1)</script>".into(),
        email: "visitor@example.com".into(),
        message: "Line one\nLine two with a token=abc".into(),
        subject: None,
        phone: None,
        company: Some("Acme & Sons".into()),
        source: None,
    };
    let message = MailMessage::new("ops@example.com", &contact);
    for _ in 0..2 {
        mail::deliver(mailer.as_ref(), &ctx(), &message, "0193a5f2-7c1e-7b3a-9f4e-2d8c6b1a0e57").await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while sink.messages().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let sent = sink.messages();
    assert_eq!(sent.len(), 2);
    for mail in &sent {
        assert_eq!(mail.to, ["ops@example.com"]);
        assert_eq!(mail.header("Message-ID").unwrap(), "<0193a5f2-7c1e-7b3a-9f4e-2d8c6b1a0e57@omnistack.test>");
        assert!(mail.header("Content-Type").unwrap().starts_with("multipart/alternative"), "{}", mail.raw);
        assert!(mail.subject().starts_with("[OmniStack] Contact CNT-7Q2K9XHM from"), "{}", mail.subject());
        let text = mail.body();
        assert!(text.contains("Name:      <script>alert(1)</script>") && text.contains("Line two with a token=abc"));
        let html = mail.html().expect("an HTML part");
        assert!(!html.contains("<script>") && html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("Acme &amp; Sons"), "{html}");
    }
}

#[tokio::test]
async fn an_unreachable_smtp_relay_is_a_transient_failure() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = mail::deliver(mailer(smtp(port)).as_ref(), &ctx(), &verify_message(), "job-1").await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn every_delivery_is_counted_by_template_and_outcome() {
    let handle = omnistack::telemetry::metrics::handle();
    let count = |outcome: &str| -> f64 {
        let series = format!(r#"omnistack_emails_sent_total{{template="verify_email",outcome="{outcome}"}} "#);
        handle.render().lines().find_map(|l| l.strip_prefix(series.as_str())?.parse().ok()).unwrap_or(0.0)
    };
    let (_fake, base) = FakeProvider::start(&[400]).await;
    let mailer = mailer(MailProvider::Resend(api("k", &base)));
    let rendered = handle.render();
    for template in mail::TemplateName::ALL {
        let series = format!(r#"omnistack_emails_sent_total{{template="{template}",outcome="failed"}}"#);
        assert!(rendered.contains(&series), "{series} exists from the start");
    }
    let (sent, failed) = (count("sent"), count("failed"));
    assert!(mail::deliver(mailer.as_ref(), &ctx(), &verify_message(), "job-1").await.is_err());
    mail::deliver(mailer.as_ref(), &ctx(), &verify_message(), "job-1").await.unwrap();
    assert!(count("failed") > failed && count("sent") > sent);
}
