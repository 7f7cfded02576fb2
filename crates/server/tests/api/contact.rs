//! The public contact form through the real server: submissions stored and mailed through
//! jobs, every field rule, spam answered like success, the per-IP budget and its free status
//! route; the captcha, the CRM webhook and the admin routes in the modules below.

mod admin;
mod captcha;
mod webhook;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use omnistack_db::contact::{self as db_contact, ContactSubmission};
use omnistack_db::jobs::{self as db_jobs, Job, JobFilter};
use omnistack_testkit::{TestApp, TestResponse};
use serde_json::{Value, json};

pub const CONTACT: &str = "/api/v1/public/contact";
pub const STATUS: &str = "/api/v1/public/contact/status";
pub const ADMIN_INBOX: &str = "inbox@omnistack.test";

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A valid form, shown a minute ago.
pub fn form() -> Value {
    json!({
        "name": "Ada Lovelace",
        "email": "Ada@Example.com",
        "message": "Hello,\nI would like a demo of the team plan.",
        "subject": "Team plan",
        "company": "Analytical Engines",
        "source": "pricing-page",
        "form_started_at": now() - 60,
    })
}

/// `form()` with `changes` merged in (a `null` removes the field).
pub fn form_with(changes: Value) -> Value {
    let mut body = form();
    for (key, value) in changes.as_object().unwrap() {
        if value.is_null() {
            body.as_object_mut().unwrap().remove(key);
        } else {
            body[key] = value.clone();
        }
    }
    body
}

/// A server whose submissions are mailed to [`ADMIN_INBOX`], with `vars`.
pub async fn app_with(vars: &[(&str, &str)]) -> TestApp {
    let builder =
        vars.iter().fold(TestApp::builder().env("CONTACT_NOTIFY_EMAIL", ADMIN_INBOX), |builder, (name, value)| {
            builder.env(name, value)
        });
    builder.env("JOBS_POLL_INTERVAL_MS", "50").spawn().await
}

pub async fn submit(app: &TestApp, body: &Value) -> TestResponse {
    app.client.post_json(CONTACT, body).await
}

/// Every stored submission, newest first.
pub async fn stored(app: &TestApp) -> Vec<ContactSubmission> {
    db_contact::list_submissions(&app.state.db, None, 0, 100).await.unwrap().0
}

/// Every job of `kind`.
pub async fn jobs_of(app: &TestApp, kind: &str) -> Vec<Job> {
    db_jobs::list_jobs(&app.state.db, JobFilter { state: None, kind: Some(kind) }, 0, 100).await.unwrap().0
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts a 201 with the success shape; returns the reference id.
pub fn assert_received(res: &TestResponse) -> String {
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    assert_eq!(body["success"], true);
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    let reference = body["reference_id"].as_str().unwrap().to_owned();
    assert!(omnistack::contact::reference::is_reference(&reference), "{reference}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
    reference
}

/// Asserts a 422 naming `field`.
pub fn assert_invalid(res: &TestResponse, field: &str) {
    assert_eq!(res.status, 422, "{field}: {}", res.text);
    assert_eq!(res.error_code(), "VALIDATION_ERROR");
    let fields = res.json()["error"]["details"]["fields"].clone();
    assert!(fields.as_array().unwrap().iter().any(|f| f["field"] == field), "{field} not in {fields}");
}

/// One request as an in-test HTTP server received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }
}

/// An HTTP server on 127.0.0.1 that records every request and answers the queued
/// `(status, body)` pairs in turn, then `fallback`.
#[derive(Clone)]
pub struct FakeServer {
    seen: Arc<Mutex<Vec<Seen>>>,
    answers: Arc<Mutex<VecDeque<(u16, String)>>>,
    fallback: Arc<Mutex<(u16, String)>>,
    pub url: String,
}

impl FakeServer {
    pub async fn start(answers: &[(u16, &str)], fallback: (u16, &str)) -> FakeServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeServer {
            seen: Arc::default(),
            answers: Arc::new(Mutex::new(answers.iter().map(|(s, b)| (*s, (*b).to_owned())).collect())),
            fallback: Arc::new(Mutex::new((fallback.0, fallback.1.to_owned()))),
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
        };
        let state = fake.clone();
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                state.seen.lock().unwrap().push(Seen { headers, body });
                let queued = state.answers.lock().unwrap().pop_front();
                let (status, body) = queued.unwrap_or_else(|| state.fallback.lock().unwrap().clone());
                (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn answer_from_now_on(&self, status: u16, body: &str) {
        *self.fallback.lock().unwrap() = (status, body.to_owned());
    }
}

#[tokio::test]
async fn a_valid_submission_is_stored_and_mailed_to_the_admin_through_a_job() {
    let app = app_with(&[]).await;
    let res = app
        .client
        .send(app.client.request(reqwest::Method::POST, CONTACT).header("user-agent", "Form/1.0").json(&form()))
        .await;
    let reference = assert_received(&res);

    let rows = stored(&app).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!((row.reference_id.as_str(), row.status.as_str()), (reference.as_str(), "new"));
    assert_eq!((row.email.as_str(), row.subject.as_deref()), ("ada@example.com", Some("Team plan")));
    assert_eq!(row.ip_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.user_agent.as_deref(), Some("Form/1.0"));

    let mail = app.mail.wait_for(ADMIN_INBOX, &reference).await;
    assert!(mail.body().contains("I would like a demo of the team plan."), "{}", mail.body());
    let emails = jobs_of(&app, "email").await;
    assert_eq!(emails.len(), 1, "no confirmation unless CONTACT_SEND_CONFIRMATION=true");
    assert_eq!(emails[0].payload.0["to"], ADMIN_INBOX);
    assert!(jobs_of(&app, "contact_webhook").await.is_empty(), "no webhook unless configured");

    let second = assert_received(&submit(&app, &form()).await);
    assert_ne!(second, reference, "each submission has its own reference");
}

#[tokio::test]
async fn the_sender_gets_a_confirmation_when_it_is_enabled() {
    let app = app_with(&[("CONTACT_SEND_CONFIRMATION", "true")]).await;
    let reference = assert_received(&submit(&app, &form()).await);
    let receipt = app.mail.wait_for("ada@example.com", &reference).await;
    assert!(receipt.body().contains("Ada Lovelace"));
    app.mail.wait_for(ADMIN_INBOX, &reference).await;
}

#[tokio::test]
async fn admin_email_is_the_default_recipient_and_without_any_nothing_is_sent() {
    let app = TestApp::builder()
        .env("ADMIN_EMAIL", "boss@omnistack.test")
        .env("ADMIN_PASSWORD", "bootstrap-pass-1")
        .spawn()
        .await;
    let reference = assert_received(&submit(&app, &form()).await);
    app.mail.wait_for("boss@omnistack.test", &reference).await;

    let unattended = TestApp::spawn().await;
    assert_received(&submit(&unattended, &form()).await);
    assert_eq!(stored(&unattended).await.len(), 1, "stored all the same");
    assert!(jobs_of(&unattended, "email").await.is_empty(), "nobody to mail");
}

#[tokio::test]
async fn every_field_rule_answers_422_naming_the_field() {
    let app = app_with(&[]).await;
    let cases = [
        (json!({"name": null}), "name"),
        (json!({"name": "A"}), "name"),
        (json!({"name": "x".repeat(101)}), "name"),
        (json!({"email": null}), "email"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"email": "ada@example"}), "email"),
        (json!({"message": "too short"}), "message"),
        (json!({"message": "m".repeat(5001)}), "message"),
        (json!({"subject": "s".repeat(201)}), "subject"),
        (json!({"phone": "p".repeat(51)}), "phone"),
        (json!({"phone": "call me maybe"}), "phone"),
        (json!({"company": "c".repeat(201)}), "company"),
        (json!({"source": "s".repeat(101)}), "source"),
        (json!({"captcha_token": "t".repeat(4097)}), "captcha_token"),
        (json!({"name": "Ada\u{0}Lovelace"}), "name"),
        (json!({"message": "Hello there,\u{0} friend"}), "message"),
        (json!({"name": "Ada \u{202E}ecalevoL"}), "name"),
        (json!({"company": "Acme\u{200B}Corp"}), "company"),
        (json!({"subject": "Hi\r\nBcc: victim@example.com"}), "subject"),
        (json!({"is_admin": true}), "is_admin"),
        (json!({"form_started_at": "yesterday"}), "form_started_at"),
        (json!({"name": 42}), "name"),
    ];
    for (change, field) in cases {
        assert_invalid(&submit(&app, &form_with(change)).await, field);
    }
    let everything_wrong = submit(&app, &json!({"name": "A", "email": "nope", "message": "short"})).await;
    for field in ["name", "email", "message"] {
        assert_invalid(&everything_wrong, field);
    }
    assert!(stored(&app).await.is_empty(), "nothing invalid is stored");
    let accented =
        submit(&app, &form_with(json!({"name": "Zoë Łukasiewicz 李", "message": "Merci beaucoup ! 👩‍💻 שלום"}))).await;
    assert_received(&accented);
}

#[tokio::test]
async fn a_phone_number_needs_5_to_20_digits_and_maximum_lengths_count_the_value_as_sent() {
    let app = app_with(&[("RATE_LIMIT_CONTACT", "100/hour")]).await;
    for phone in ["1234", &"1".repeat(21), &"0".repeat(49), "+44 (20) 7946-0958 x123456789", "١٢٣٤٥"] {
        assert_invalid(&submit(&app, &form_with(json!({"phone": phone}))).await, "phone");
    }
    assert_invalid(&submit(&app, &form_with(json!({"name": format!("{} ", "a".repeat(100))}))).await, "name");
    assert_invalid(&submit(&app, &form_with(json!({"name": " \tA\n "}))).await, "name");
    assert!(stored(&app).await.is_empty(), "nothing invalid is stored");
    for phone in ["12345", &"1".repeat(20), " +44 (20) 7946-0958 x12345678\t", "  "] {
        assert_received(&submit(&app, &form_with(json!({"phone": phone}))).await);
    }
    assert_received(&submit(&app, &form_with(json!({"name": format!(" {} ", "a".repeat(98))}))).await);
    let mut phones: Vec<Option<String>> = stored(&app).await.into_iter().map(|s| s.phone).collect();
    phones.sort();
    let mut expected = vec![None, None, Some("+44 (20) 7946-0958 x12345678".to_owned())];
    expected.extend(["1".repeat(20), "12345".to_owned()].map(Some));
    expected.sort();
    assert_eq!(phones, expected, "phones are stored trimmed, a blank one as none");
}

#[tokio::test]
async fn required_subject_and_phone_follow_the_configuration_and_the_status_route() {
    let app = app_with(&[("CONTACT_REQUIRE_SUBJECT", "true"), ("CONTACT_REQUIRE_PHONE", "true")]).await;
    let status = app.client.get(STATUS).await.json();
    assert_eq!((status["require_subject"].clone(), status["require_phone"].clone()), (json!(true), json!(true)));
    assert_invalid(&submit(&app, &form_with(json!({"subject": null}))).await, "subject");
    assert_invalid(&submit(&app, &form()).await, "phone");
    assert_received(&submit(&app, &form_with(json!({"phone": "+44 20 7946 0958"}))).await);
}

#[tokio::test]
async fn bodies_that_are_not_json_or_too_large_are_refused_in_the_one_error_shape() {
    let app = app_with(&[("MAX_BODY_BYTES", "4096")]).await;
    let plain = app.client.send(app.client.request(reqwest::Method::POST, CONTACT).body("name=Ada")).await;
    assert_eq!((plain.status.as_u16(), plain.error_code()), (415, "UNSUPPORTED_MEDIA_TYPE".to_owned()));
    let huge = submit(&app, &form_with(json!({"message": "m".repeat(10_000)}))).await;
    assert_eq!((huge.status.as_u16(), huge.error_code()), (413, "PAYLOAD_TOO_LARGE".to_owned()));
    let broken = app
        .client
        .send(app.client.request(reqwest::Method::POST, CONTACT).header("content-type", "application/json").body("{"))
        .await;
    assert_eq!((broken.status.as_u16(), broken.error_code()), (400, "BAD_REQUEST".to_owned()));
}

/// Spam is answered exactly like a submission; it is stored as spam and enqueues nothing
/// (the row and any jobs commit together before the answer, so an empty queue is final).
async fn assert_spam(app: &TestApp, body: &Value, reason: &str) {
    let reference = assert_received(&submit(app, body).await);
    let row = stored(app).await.into_iter().find(|r| r.reference_id == reference).expect("stored");
    assert_eq!((row.status.as_str(), row.spam_reason.as_deref()), ("spam", Some(reason)));
    let (jobs, total) = db_jobs::list_jobs(&app.state.db, JobFilter::default(), 0, 10).await.unwrap();
    assert_eq!(total, 0, "spam causes nothing: {jobs:?}");
    assert!(app.mail.messages().is_empty());
}

#[tokio::test]
async fn a_filled_honeypot_gets_the_same_answer_but_is_stored_as_spam_and_sends_nothing() {
    let app = app_with(&[("CONTACT_SEND_CONFIRMATION", "true")]).await;
    assert_spam(&app, &form_with(json!({"website": "http://buy-now.example"})), "honeypot").await;
    assert_spam(&app, &form_with(json!({"website": "x", "form_started_at": null})), "honeypot").await;
}

#[tokio::test]
async fn a_form_sent_too_fast_or_dated_in_the_future_is_spam() {
    let app = app_with(&[("CONTACT_MIN_FILL_SECONDS", "5")]).await;
    assert_spam(&app, &form_with(json!({"form_started_at": now() - 1})), "too_fast").await;
    assert_spam(&app, &form_with(json!({"form_started_at": now() + 600})), "too_fast").await;
    assert_eq!(stored(&app).await.len(), 2);
}

#[tokio::test]
async fn the_contact_budget_is_per_ip_counts_spam_and_reading_the_status_spends_none() {
    let app = app_with(&[("RATE_LIMIT_CONTACT", "2/hour")]).await;
    for _ in 0..3 {
        let status = app.client.get(STATUS).await;
        assert_eq!(status.status, 200, "{}", status.text);
        let body = status.json();
        assert_eq!(body["available"], true);
        assert_eq!(
            (body["rate_limit"]["limit"].clone(), body["rate_limit"]["remaining"].clone()),
            (json!(2), json!(2))
        );
        assert_eq!(body["captcha"], json!({"provider": null, "site_key": null}));
    }
    assert_invalid(&submit(&app, &form_with(json!({"name": "A"}))).await, "name");
    assert_received(&submit(&app, &form_with(json!({"website": "spam"}))).await);
    assert_eq!(
        app.client.get(STATUS).await.json()["rate_limit"]["remaining"],
        1,
        "invalid forms do not count, spam does"
    );
    assert_received(&submit(&app, &form()).await);

    let status = app.client.get(STATUS).await.json();
    assert_eq!((status["available"].clone(), status["rate_limit"]["remaining"].clone()), (json!(false), json!(0)));
    let reset = status["rate_limit"]["reset"].as_i64().unwrap();
    assert!((now() + 3500..=now() + 3601).contains(&reset), "{reset}");

    let denied = submit(&app, &form()).await;
    assert_eq!((denied.status.as_u16(), denied.error_code()), (429, "RATE_LIMIT_EXCEEDED".to_owned()));
    let retry_after: u64 = denied.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(stored(&app).await.len(), 2, "the denied form was not stored");
}
