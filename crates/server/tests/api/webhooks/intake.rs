//! Verification before storage, once-only storage and processing, the limits, and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use omnistack::jobs::JobError;
use omnistack::webhooks::clerk::ClerkUsers;
use omnistack::webhooks::{ProcessWebhookEvent, Processor, Processors, Provider, StoredEvent};
use omnistack_db::jobs::{self as db_jobs, JobFilter};
use omnistack_testkit::TestApp;
use serde_json::json;

use super::*;

async fn webhook_jobs(app: &TestApp) -> i64 {
    db_jobs::list_jobs(&app.state.db, JobFilter { state: None, kind: Some("webhook_event") }, 0, 100).await.unwrap().1
}

#[tokio::test]
async fn a_stripe_event_is_stored_once_and_processed_once_however_often_it_is_delivered() {
    let app = configured().spawn().await;
    let body = stripe_event("evt_once", "customer.subscription.updated");
    let first = post_stripe(&app, body.clone(), STRIPE_SECRET, now()).await;
    assert_eq!(
        (first.status.as_u16(), first.json()),
        (200, json!({"received": true, "duplicate": false})),
        "{}",
        first.text
    );
    let again = post_stripe(&app, body.clone(), STRIPE_SECRET, now()).await;
    assert_eq!((again.status.as_u16(), again.json()["duplicate"].clone()), (200, json!(true)));
    let event = wait_for(&app, "evt_once", "processed").await;
    assert_eq!((event.provider.as_str(), event.event_type.as_str()), ("stripe", "customer.subscription.updated"));
    assert_eq!(event.attempts, 1, "an event nobody acts on is processed (ignored) once");
    assert_eq!(event.payload.as_bytes(), body.as_slice(), "the body as received");
    let third = post_stripe(&app, body, STRIPE_SECRET, now()).await;
    assert_eq!(third.json()["duplicate"], true, "a redelivery after processing");
    assert_eq!(stored(&app).await.len(), 1);
    assert_eq!(webhook_jobs(&app).await, 1, "one job, however many deliveries");
}

#[tokio::test]
async fn forged_stale_future_and_re_signed_stripe_events_are_refused_and_nothing_is_stored() {
    let app = configured().spawn().await;
    let body = stripe_event("evt_forged", "invoice.paid");
    let signature = omnistack::webhooks::stripe::sign(STRIPE_SECRET, now(), &body);
    let tampered = stripe_event("evt_forged", "invoice.payment_failed");
    let cases = [
        ("a changed body", post(&app, "stripe", &[("stripe-signature", signature.clone())], tampered).await),
        ("stale", post_stripe(&app, body.clone(), STRIPE_SECRET, now() - 301).await),
        ("from the future", post_stripe(&app, body.clone(), STRIPE_SECRET, now() + 301).await),
        ("another key", post_stripe(&app, body.clone(), "whsec_an_attackers_own_secret", now()).await),
        ("no signature", post(&app, "stripe", &[], body.clone()).await),
        ("garbage", post(&app, "stripe", &[("stripe-signature", "t=1,v1=zz".into())], body.clone()).await),
    ];
    for (case, res) in &cases {
        assert_eq!(res.error_code(), "INVALID_SIGNATURE", "{case}: {}", res.text);
        assert_eq!(res.status, 400, "{case}");
    }
    assert!(stored(&app).await.is_empty(), "nothing stored on refusal");
    assert_eq!(webhook_jobs(&app).await, 0);
}

#[tokio::test]
async fn during_a_rotation_either_stripe_secret_is_accepted() {
    let app = configured().env("STRIPE_WEBHOOK_SECRETS", &format!("{STRIPE_SECRET},{STRIPE_ROTATED}")).spawn().await;
    let res = post_stripe(&app, stripe_event("evt_old_key", "invoice.paid"), STRIPE_SECRET, now()).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let res = post_stripe(&app, stripe_event("evt_new_key", "invoice.paid"), STRIPE_ROTATED, now()).await;
    assert_eq!(res.status, 200, "{}", res.text);
    // Stripe sends one v1 per secret during its own rotation: any one matching is enough.
    let body = stripe_event("evt_two_sigs", "invoice.paid");
    let t = now();
    let foreign = omnistack::webhooks::stripe::sign("whsec_an_attackers_own_secret", t, &body);
    let ours = omnistack::webhooks::stripe::sign(STRIPE_ROTATED, t, &body);
    let header = format!("{foreign},{}", ours.split(',').nth(1).unwrap());
    let res = post(&app, "stripe", &[("stripe-signature", header)], body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(stored(&app).await.len(), 3);
}

#[tokio::test]
async fn svix_deliveries_verify_any_listed_signature_and_refuse_the_rest() {
    let app = configured().spawn().await;
    let event = json!({"type": "session.created", "object": "event", "data": {"id": "sess_1"}});
    let body = serde_json::to_vec(&event).unwrap();
    let key = omnistack::config::webhook_key(CLERK_SECRET).unwrap();
    let t = now();
    let good = omnistack::webhooks::svix::sign(&key, "msg_multi", t, &body);
    let foreign = omnistack::webhooks::svix::sign(b"an attacker's own key", "msg_multi", t, &body);
    let headers = |id: &str, t: i64, signature: String| {
        vec![("svix-id", id.to_owned()), ("svix-timestamp", t.to_string()), ("svix-signature", signature)]
    };
    let res = post(&app, "clerk", &headers("msg_multi", t, format!("{foreign} {good}")), body.clone()).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let stale = omnistack::webhooks::svix::sign(&key, "msg_stale", t - 301, &body);
    let future = omnistack::webhooks::svix::sign(&key, "msg_future", t + 301, &body);
    for (case, res) in [
        ("foreign key alone", post(&app, "clerk", &headers("msg_x", t, foreign.clone()), body.clone()).await),
        ("stale", post(&app, "clerk", &headers("msg_stale", t - 301, stale), body.clone()).await),
        ("future", post(&app, "clerk", &headers("msg_future", t + 301, future), body.clone()).await),
        ("another id", post(&app, "clerk", &headers("msg_other", t, good.clone()), body.clone()).await),
        ("no headers", post(&app, "clerk", &[], body.clone()).await),
    ] {
        assert_refused(&res, 400, "INVALID_SIGNATURE");
        assert!(!case.is_empty());
    }
    let events = stored(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].event_id.as_str(), events[0].event_type.as_str()), ("msg_multi", "session.created"));
}

#[tokio::test]
async fn a_supabase_delivery_needs_the_exact_bearer() {
    let app = configured().spawn().await;
    let payload =
        json!({"type": "UPDATE", "schema": "public", "table": "profiles", "record": {"id": 1}, "old_record": null});
    let body = serde_json::to_vec(&payload).unwrap();
    for bearer in [
        None,
        Some("Bearer wrong-secret-wrong-secret"),
        Some(&format!("Bearer {SUPABASE_SECRET}x")[..]),
        Some(SUPABASE_SECRET),
    ] {
        let headers: Vec<(&str, String)> = bearer.map(|b| ("authorization", b.to_owned())).into_iter().collect();
        assert_refused(&post(&app, "supabase", &headers, body.clone()).await, 401, "AUTHENTICATION_ERROR");
    }
    assert!(stored(&app).await.is_empty());
    let res = post_supabase(&app, &payload).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let event = wait_for(&app, stored(&app).await[0].event_id.as_str(), "processed").await;
    assert_eq!(event.event_type, "public.profiles.UPDATE", "another table is ignored");
    assert!(event.event_id.starts_with("sha256:"));
    assert_eq!(post_supabase(&app, &payload).await.json()["duplicate"], true, "the same body is the same event");
}

#[tokio::test]
async fn unconfigured_providers_answer_503_and_unknown_ones_404() {
    let app = TestApp::spawn().await;
    let body = stripe_event("evt_1", "invoice.paid");
    for provider in ["stripe", "clerk", "supabase", "apple", "google"] {
        let res = post(
            &app,
            provider,
            &[("stripe-signature", omnistack::webhooks::stripe::sign(STRIPE_SECRET, now(), &body))],
            body.clone(),
        )
        .await;
        assert_refused(&res, 503, "SERVICE_UNAVAILABLE");
    }
    assert_refused(&post(&app, "paypal", &[], body.clone()).await, 404, "NOT_FOUND");
    assert_refused(&post(&app, "STRIPE", &[], body).await, 404, "NOT_FOUND");
    assert!(stored(&app).await.is_empty());
}

#[tokio::test]
async fn oversized_and_unusable_bodies_are_refused_without_storing() {
    let app = configured().spawn().await;
    let padding = "x".repeat(omnistack::webhooks::MAX_BODY_BYTES);
    let big = serde_json::to_vec(&json!({"id": "evt_big", "type": "invoice.paid", "pad": padding})).unwrap();
    assert_refused(&post_stripe(&app, big, STRIPE_SECRET, now()).await, 413, "PAYLOAD_TOO_LARGE");
    let no_id = serde_json::to_vec(&json!({"type": "invoice.paid"})).unwrap();
    assert_refused(&post_stripe(&app, no_id, STRIPE_SECRET, now()).await, 422, "VALIDATION_ERROR");
    let odd_id = serde_json::to_vec(&json!({"id": "evt\u{202e}1", "type": "invoice.paid"})).unwrap();
    assert_refused(&post_stripe(&app, odd_id, STRIPE_SECRET, now()).await, 422, "VALIDATION_ERROR");
    let form = b"id=evt_form&type=invoice.paid".to_vec();
    let signature = omnistack::webhooks::stripe::sign(STRIPE_SECRET, now(), &form);
    let request = app
        .client
        .request(reqwest::Method::POST, "/api/v1/public/webhooks/stripe")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("stripe-signature", signature)
        .body(form);
    assert_refused(&app.client.send(request).await, 415, "UNSUPPORTED_MEDIA_TYPE");
    let not_json = b"id=evt_1&type=invoice.paid".to_vec();
    assert_refused(&post_stripe(&app, not_json, STRIPE_SECRET, now()).await, 422, "VALIDATION_ERROR");
    // A NUL is stored as JSON escapes it, and processed.
    let nul = serde_json::to_vec(&json!({"id": "evt_nul", "type": "invoice.paid", "note": "a\u{0}b"})).unwrap();
    assert_eq!(post_stripe(&app, nul, STRIPE_SECRET, now()).await.status, 200);
    wait_for(&app, "evt_nul", "processed").await;
    assert_eq!(stored(&app).await.len(), 1);
}

/// Fails its first `failures` runs (a database write that fails), then acts as Clerk's.
#[derive(Clone, Default)]
struct FailingFirst {
    failures: usize,
    runs: Arc<AtomicUsize>,
}

impl Processor for FailingFirst {
    fn process<'a>(
        &'a self,
        ctx: &'a omnistack::jobs::JobContext,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let run = self.runs.fetch_add(1, Ordering::SeqCst);
            if run < self.failures {
                return Err(JobError::Retry(anyhow::anyhow!("the users table write failed ({})", run + 1)));
            }
            ClerkUsers.process(ctx, event).await
        })
    }
}

#[tokio::test]
async fn a_processing_failure_is_recorded_and_retried_by_the_queue_to_success() {
    let processor = FailingFirst { failures: 2, ..FailingFirst::default() };
    let kind = ProcessWebhookEvent::new(Processors::standard().with(Provider::Clerk, processor.clone()));
    let app = configured().job_kind(kind).spawn().await;
    let event = json!({"type": "user.updated", "object": "event", "data": {
        "id": "user_retry", "first_name": "Ada", "last_name": "Lovelace",
        "primary_email_address_id": "idn_1",
        "email_addresses": [{"id": "idn_1", "email_address": "ada@example.com", "verification": {"status": "verified"}}],
    }});
    assert_eq!(post_clerk(&app, "msg_retry", &event).await.status, 200);
    let done = wait_for(&app, "msg_retry", "processed").await;
    assert_eq!((done.attempts, done.last_error), (3, None), "two failures, then the success");
    assert_eq!(processor.runs.load(Ordering::SeqCst), 3);
    let user =
        omnistack_db::identities::find_user_by_identity(&app.state.db, "clerk", "user_retry").await.unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("ada@example.com"));

    // Out of attempts: the event stays failed with its error, and the job is dead.
    let always = FailingFirst { failures: usize::MAX, ..FailingFirst::default() };
    let kind = ProcessWebhookEvent::new(Processors::standard().with(Provider::Clerk, always));
    let app = configured().env("JOBS_MAX_ATTEMPTS", "2").job_kind(kind).spawn().await;
    assert_eq!(post_clerk(&app, "msg_dead", &event).await.status, 200);
    let failed = wait_for(&app, "msg_dead", "failed").await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let job = loop {
        let (jobs, _) = db_jobs::list_jobs(&app.state.db, JobFilter { state: None, kind: Some("webhook_event") }, 0, 1)
            .await
            .unwrap();
        if jobs[0].state == "dead" {
            break jobs[0].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the job never died: {jobs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(job.attempts, 2);
    let failed = webhook_events::find_event(&app.state.db, failed.id).await.unwrap().unwrap();
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 2));
    assert_eq!(failed.last_error.as_deref(), Some("the users table write failed (2)"));
}

#[tokio::test]
async fn deliveries_are_limited_per_client_ip_by_the_webhooks_class() {
    let app = configured().env("RATE_LIMIT_WEBHOOKS", "2/minute").env("RATE_LIMIT_PUBLIC", "100/minute").spawn().await;
    for n in 0..2 {
        let res = post_stripe(&app, stripe_event(&format!("evt_rl_{n}"), "invoice.paid"), STRIPE_SECRET, now()).await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    let res = post_stripe(&app, stripe_event("evt_rl_2", "invoice.paid"), STRIPE_SECRET, now()).await;
    assert_refused(&res, 429, "RATE_LIMIT_EXCEEDED");
    // Forgeries spend the same budget: a flood of them cannot be sent faster than real events.
    assert_refused(&post(&app, "stripe", &[], stripe_event("evt_rl_3", "x")).await, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(app.client.get("/api/v1/public/health").await.status, 200, "another class is untouched");
    assert_eq!(stored(&app).await.len(), 2);
}
