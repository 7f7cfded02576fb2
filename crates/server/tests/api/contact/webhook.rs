//! The CRM webhook against an in-test receiver that checks the Standard Webhooks signature
//! with its own HMAC computation.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use omnistack_db::jobs::Job;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{FakeServer, app_with, assert_received, eventually, form, form_with, jobs_of, submit};
use crate::realtime::admin_account;

/// 24 random bytes, as a Standard Webhooks secret.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What the receiver computes: base64 HMAC-SHA256 of `id.timestamp.body` under the decoded key.
fn expected_signature(id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(SECRET.trim_start_matches("whsec_")).unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

async fn webhook_app(receiver: &FakeServer) -> omnistack_testkit::TestApp {
    app_with(&[
        ("CONTACT_WEBHOOK_URL", &receiver.url),
        ("CONTACT_WEBHOOK_SECRET", SECRET),
        ("JOBS_RETRY_BASE_SECONDS", "0"),
    ])
    .await
}

async fn job_in(app: &omnistack_testkit::TestApp, state: &'static str) -> Job {
    eventually(Duration::from_secs(10), state, || async {
        jobs_of(app, "contact_webhook").await.into_iter().find(|job| job.state == state)
    })
    .await
}

#[tokio::test]
async fn a_submission_reaches_the_crm_signed_in_the_standard_webhooks_format() {
    let receiver = FakeServer::start(&[], (204, "")).await;
    let app = webhook_app(&receiver).await;
    let reference = assert_received(&submit(&app, &form_with(json!({"phone": "+1 555 0100"}))).await);
    let job = job_in(&app, "succeeded").await;
    assert_eq!(job.unique_key, Some(format!("contact_webhook:{}", super::stored(&app).await[0].id)));

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let delivery = &seen[0];
    let (id, timestamp) = (delivery.header("webhook-id"), delivery.header("webhook-timestamp"));
    assert!(id.starts_with("msg_"), "{id}");
    let sent_at: i64 = timestamp.parse().unwrap();
    assert!((super::now() - sent_at).abs() < 60, "unix seconds: {timestamp}");
    assert_eq!(delivery.header("webhook-signature"), expected_signature(&id, &timestamp, &delivery.body));
    let mut forged = delivery.body.to_vec();
    forged.extend_from_slice(b" ");
    assert_ne!(
        delivery.header("webhook-signature"),
        expected_signature(&id, &timestamp, &forged),
        "the body is signed"
    );
    assert_ne!(
        delivery.header("webhook-signature"),
        expected_signature(&id, &(sent_at + 1).to_string(), &delivery.body)
    );

    let event: Value = serde_json::from_slice(&delivery.body).unwrap();
    assert_eq!(delivery.header("content-type"), "application/json");
    assert_eq!(event["type"], "contact.submitted");
    assert!(event["timestamp"].as_str().unwrap().ends_with('Z'));
    let data = &event["data"];
    assert_eq!(data["reference_id"], reference);
    assert_eq!((data["name"].clone(), data["email"].clone()), (json!("Ada Lovelace"), json!("ada@example.com")));
    assert_eq!((data["phone"].clone(), data["source"].clone()), (json!("+1 555 0100"), json!("pricing-page")));
    assert_eq!(data["submitted_at"], event["timestamp"]);
    for key in ["subject", "message", "company"] {
        assert!(data.get(key).is_some(), "{key}");
    }
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_the_same_message_id_until_it_accepts() {
    let receiver = FakeServer::start(&[(500, "oops"), (429, "slow down")], (200, "{}")).await;
    let app = webhook_app(&receiver).await;
    assert_received(&submit(&app, &form()).await);
    let job = job_in(&app, "succeeded").await;
    assert_eq!(job.attempts, 3);
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    let ids: Vec<String> = seen.iter().map(|s| s.header("webhook-id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for delivery in &seen {
        let signature =
            expected_signature(&delivery.header("webhook-id"), &delivery.header("webhook-timestamp"), &delivery.body);
        assert_eq!(delivery.header("webhook-signature"), signature);
    }
}

#[tokio::test]
async fn a_refusing_receiver_leaves_a_dead_job_that_an_admin_retries() {
    let receiver = FakeServer::start(&[], (400, r#"{"error":"unknown field"}"#)).await;
    let app = webhook_app(&receiver).await;
    assert_received(&submit(&app, &form()).await);
    let dead = job_in(&app, "dead").await;
    assert_eq!(dead.attempts, 1, "a 4xx is not retried");
    assert!(dead.last_error.as_deref().unwrap_or_default().contains("400"), "{:?}", dead.last_error);

    receiver.answer_from_now_on(200, "{}");
    let (token, _) = admin_account(&app).await;
    let retried =
        app.client.with_token(&token).post_json(&format!("/api/v1/admin/jobs/{}/retry", dead.id), &json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    job_in(&app, "succeeded").await;
    let ids: Vec<String> = receiver.seen().iter().map(|s| s.header("webhook-id")).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "the retried delivery is the same message");
}
