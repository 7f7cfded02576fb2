//! Inbound webhooks through the real server: verification before anything is stored (Stripe,
//! Clerk's Svix, Supabase's bearer), once-only storage and processing through the job queue
//! with its retries, the Clerk and Supabase user sync, and the admin log.

mod admin;
mod intake;
mod sync;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use omnistack_db::webhook_events::{self, WebhookEvent, WebhookEventFilter};
use omnistack_testkit::{TestApp, TestAppBuilder, TestResponse};
use reqwest::Method;
use serde_json::{Value, json};

pub const STRIPE_SECRET: &str = "whsec_test_stripe_primary_secret";
pub const STRIPE_ROTATED: &str = "whsec_test_stripe_rotated_secret";
pub const CLERK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const SUPABASE_SECRET: &str = "supabase-webhook-bearer-secret-0123";

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A builder with every provider configured and retries at once.
pub fn configured() -> TestAppBuilder {
    TestApp::builder()
        .env("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
        .env("CLERK_WEBHOOK_SECRET", CLERK_SECRET)
        .env("SUPABASE_WEBHOOK_SECRET", SUPABASE_SECRET)
        .env("JOBS_RETRY_BASE_SECONDS", "0")
        .env("JOBS_POLL_INTERVAL_MS", "50")
}

/// A Stripe event body.
pub fn stripe_event(id: &str, kind: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"id": id, "object": "event", "type": kind, "data": {"object": {"id": "sub_1"}}}))
        .unwrap()
}

/// Posts `body` to `/public/webhooks/{provider}` with `headers`.
pub async fn post(app: &TestApp, provider: &str, headers: &[(&str, String)], body: Vec<u8>) -> TestResponse {
    let mut request = app
        .client
        .request(Method::POST, &format!("/api/v1/public/webhooks/{provider}"))
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    app.client.send(request.body(body)).await
}

/// Posts a Stripe event signed with `secret` at `timestamp`.
pub async fn post_stripe(app: &TestApp, body: Vec<u8>, secret: &str, timestamp: i64) -> TestResponse {
    let signature = omnistack::webhooks::stripe::sign(secret, timestamp, &body);
    post(app, "stripe", &[("stripe-signature", signature)], body).await
}

/// Posts a Clerk event with Svix headers signed by the configured secret.
pub async fn post_clerk(app: &TestApp, id: &str, event: &Value) -> TestResponse {
    let body = serde_json::to_vec(event).unwrap();
    let key = omnistack::config::webhook_key(CLERK_SECRET).unwrap();
    let timestamp = now();
    let signature = omnistack::webhooks::svix::sign(&key, id, timestamp, &body);
    let headers =
        [("svix-id", id.to_owned()), ("svix-timestamp", timestamp.to_string()), ("svix-signature", signature)];
    post(app, "clerk", &headers, body).await
}

/// Posts a Supabase database webhook with the configured bearer.
pub async fn post_supabase(app: &TestApp, payload: &Value) -> TestResponse {
    let headers = [("authorization", format!("Bearer {SUPABASE_SECRET}"))];
    post(app, "supabase", &headers, serde_json::to_vec(payload).unwrap()).await
}

/// Every stored event, newest first.
pub async fn stored(app: &TestApp) -> Vec<WebhookEvent> {
    let (items, _) = webhook_events::list_events(&app.state.db, WebhookEventFilter::default(), 0, 100).await.unwrap();
    let mut events = Vec::new();
    for item in items {
        events.push(webhook_events::find_event(&app.state.db, item.id).await.unwrap().unwrap());
    }
    events
}

/// Waits (at most 10 s) for the event with provider event id `event_id` to reach `status`.
pub async fn wait_for(app: &TestApp, event_id: &str, status: &str) -> WebhookEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let found = stored(app).await.into_iter().find(|e| e.event_id == event_id);
        if let Some(event) = &found
            && event.status == status
        {
            return event.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "event {event_id} never became {status}: {found:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts a status and an error code.
pub fn assert_refused(res: &TestResponse, status: u16, code: &str) {
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (status, code), "{}", res.text);
}
