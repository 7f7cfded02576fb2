//! Stripe Billing Meters against a stand-in `POST /v1/billing/meter_events` that keeps each
//! identifier once (as Stripe does) and can fail its first answers: every metered usage of an
//! account with a Stripe customer reaches it exactly once, across a restart and retries.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use omnistack::auth::Role;
use omnistack_testkit::{TestApp, TestAppBuilder};
use serde_json::json;
use uuid::Uuid;

use super::{account, quiet};

const SECRET_KEY: &str = "sk_test_usage_meters_0123456789";

#[derive(Default)]
struct Meter {
    /// Answers still to fail with a 500.
    failing: AtomicUsize,
    /// Every POST received: its form.
    received: Mutex<Vec<BTreeMap<String, String>>>,
    /// Accepted events by identifier.
    accepted: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
}

/// The stand-in meter endpoint; its base URL.
struct StandIn {
    meter: Arc<Meter>,
    base: String,
}

impl StandIn {
    async fn start(failing: usize) -> StandIn {
        let meter = Arc::new(Meter { failing: AtomicUsize::new(failing), ..Meter::default() });
        let app = Router::new().route("/v1/billing/meter_events", post(receive)).with_state(meter.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { meter, base }
    }

    fn received(&self) -> Vec<BTreeMap<String, String>> {
        self.meter.received.lock().unwrap().clone()
    }

    fn accepted(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.meter.accepted.lock().unwrap().clone()
    }

    fn builder(&self) -> TestAppBuilder {
        quiet(TestApp::builder())
            .env("STRIPE_SECRET_KEY", SECRET_KEY)
            .env("STRIPE_API_BASE", &self.base)
            .env("USAGE_STRIPE_METERS", "api_requests=api_calls,ai_tokens=llm_tokens")
            .env("JOBS_POLL_INTERVAL_MS", "20")
            .env("JOBS_RETRY_BASE_SECONDS", "0")
    }
}

async fn receive(State(meter): State<Arc<Meter>>, body: String) -> axum::response::Response {
    let form: BTreeMap<String, String> =
        body.split('&').filter_map(|pair| pair.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect();
    meter.received.lock().unwrap().push(form.clone());
    if meter.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({"error": {"type": "api_error"}})))
            .into_response();
    }
    let identifier = form.get("identifier").cloned().unwrap_or_default();
    let mut accepted = meter.accepted.lock().unwrap();
    if accepted.contains_key(&identifier) {
        let error = json!({"error": {"type": "invalid_request_error",
            "message": format!("An event with identifier {identifier} already exists.")}});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    accepted.insert(identifier.clone(), form.clone());
    axum::Json(json!({"object": "billing.meter_event", "identifier": identifier})).into_response()
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

async fn with_customer(app: &TestApp, user_id: Uuid, customer: &str) {
    assert!(omnistack_db::billing::set_stripe_customer(&app.state.db, user_id, customer).await.unwrap());
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn flushed_usage_reaches_the_meter_once_through_failing_answers() {
    let stand_in = StandIn::start(2).await;
    let app = stand_in.builder().spawn().await;
    let (client, ada, _) = account(&app).await;
    let (other, _, _) = account(&app).await;
    with_customer(&app, ada, "cus_meter_ada").await;
    for _ in 0..5 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
        assert_eq!(other.get("/api/v1/app/users/me").await.status, 200);
    }
    app.state.usage.flush().await.unwrap();
    eventually("the meter event was not accepted", async || stand_in.accepted().len() == 1).await;

    let accepted = stand_in.accepted();
    let (identifier, form) = accepted.iter().next().unwrap();
    assert!(identifier.starts_with("flush_") && identifier.len() <= 100, "{identifier}");
    assert_eq!(form["event_name"], "api_calls");
    assert_eq!(form["payload[stripe_customer_id]"], "cus_meter_ada");
    assert_eq!(form["payload[value]"], "5");
    let timestamp: i64 = form["timestamp"].parse().unwrap();
    assert!((omnistack_db::time::now().timestamp() - timestamp).abs() < 60);
    // Two failed answers, then the one accepted; every attempt carried the same identifier.
    let received = stand_in.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| &r["identifier"] == identifier));

    let admin = super::super::admin::account(&app, Role::Admin).await.client;
    let sync = admin.get("/api/v1/admin/usage/stripe-sync").await.json();
    assert_eq!((sync["pending"].as_i64(), sync["sent"].as_i64(), sync["failed"].as_i64()), (Some(0), Some(1), Some(0)));
    assert_eq!(sync["oldest_pending_at"], serde_json::Value::Null);

    // A second job for the same event (a retry from the job admin, a duplicate) sends nothing.
    let again = omnistack::usage::meters::MeterEventArgs { identifier: identifier.clone() };
    app.state
        .jobs
        .enqueue::<omnistack::usage::meters::SendMeterEvent>(&app.state.db, &again, Default::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stand_in.received().len(), 3);
}

#[tokio::test]
async fn ingested_usage_is_metered_once_by_event_id_and_failures_are_visible() {
    let stand_in = StandIn::start(usize::MAX).await;
    let app = stand_in.builder().env("JOBS_MAX_ATTEMPTS", "2").spawn().await;
    let (_, ada, _) = account(&app).await;
    let (_, bob, _) = account(&app).await;
    with_customer(&app, ada, "cus_meter_ingest").await;
    let admin = super::super::admin::account(&app, Role::Admin).await.client;
    let batch = json!({"events": [
        {"id": "llm-call-1", "user_id": ada, "metric": "ai_tokens", "value": 900},
        {"id": "llm-call-2", "user_id": ada, "metric": "ai_tokens", "value": -100},
        {"id": "llm-call-3", "user_id": bob, "metric": "ai_tokens", "value": 50},
        {"id": "uploads-1", "user_id": ada, "metric": "file_uploads", "value": 2},
    ]});
    for _ in 0..2 {
        assert_eq!(admin.post_json("/api/v1/admin/usage/events", &batch).await.status, 200);
    }
    // Stripe fails every answer: the events are visible as failed, with the error.
    eventually("the failures were not recorded", async || {
        let sync = admin.get("/api/v1/admin/usage/stripe-sync").await.json();
        sync["failed"] == 2
    })
    .await;
    let sync = admin.get("/api/v1/admin/usage/stripe-sync").await.json();
    assert!(sync["oldest_pending_at"].is_string(), "{sync}");
    let failed = omnistack_db::usage::find_meter_event(
        &app.state.db,
        &omnistack::usage::meters::identifier("evt", "llm-call-1"),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(failed.status, "failed");
    assert!(failed.last_error.unwrap().contains("500"));

    // Once Stripe answers again, retrying the dead jobs through the job admin sends them.
    stand_in.meter.failing.store(0, Ordering::SeqCst);
    eventually("the jobs did not die", async || {
        let dead = admin.get("/api/v1/admin/jobs?state=dead&kind=usage_meter_event").await.json();
        dead["items"].as_array().is_some_and(|items| items.len() == 2)
    })
    .await;
    let dead = admin.get("/api/v1/admin/jobs?state=dead&kind=usage_meter_event").await.json();
    for job in dead["items"].as_array().unwrap() {
        let res =
            admin.post_json(&format!("/api/v1/admin/jobs/{}/retry", job["id"].as_str().unwrap()), &json!({})).await;
        assert!(res.status.is_success(), "{}", res.text);
    }
    eventually("the retried events were not accepted", async || stand_in.accepted().len() == 2).await;
    let values: Vec<String> = stand_in.accepted().values().map(|f| f["payload[value]"].clone()).collect();
    assert_eq!(values.iter().filter(|v| *v == "900").count(), 1);
    assert_eq!(values.iter().filter(|v| *v == "-100").count(), 1);
    eventually("the outbox did not settle", async || {
        let sync = admin.get("/api/v1/admin/usage/stripe-sync").await.json();
        sync["sent"] == 2 && sync["failed"] == 0 && sync["pending"] == 0
    })
    .await;
}

#[tokio::test]
async fn queued_meter_events_are_sent_once_after_a_restart() {
    let stand_in = StandIn::start(0).await;
    // The first instance queues the events but runs no jobs, then stops.
    let mut first = stand_in.builder().env("JOBS_WORKERS", "0").spawn().await;
    let (client, ada, _) = account(&first).await;
    with_customer(&first, ada, "cus_meter_restart").await;
    for _ in 0..3 {
        assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    }
    first.stop().await.unwrap();
    assert!(stand_in.received().is_empty());
    let pending = omnistack_db::usage::meter_sync(&first.state.db).await.unwrap();
    assert_eq!(pending.pending, 1);

    // The next instance of the same deployment sends them, once.
    let second = stand_in.builder().sharing(&first).spawn().await;
    eventually("the queued event was not sent", async || stand_in.accepted().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stand_in.received().len(), 1);
    assert_eq!(stand_in.accepted().values().next().unwrap()["payload[value]"], "3");
    let sync = omnistack_db::usage::meter_sync(&second.state.db).await.unwrap();
    assert_eq!((sync.pending, sync.sent, sync.failed), (0, 1, 0));
}

#[tokio::test]
async fn nothing_is_queued_without_stripe_a_customer_or_a_meter() {
    let app = quiet(TestApp::builder()).env("USAGE_STRIPE_METERS", "api_requests=api_calls").spawn().await;
    let (client, ada, _) = account(&app).await;
    with_customer(&app, ada, "cus_meter_none").await;
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    app.state.usage.flush().await.unwrap();
    app.state.usage.record(ada, "api_requests", 2, &[]).await.unwrap();
    assert_eq!(omnistack_db::usage::meter_sync(&app.state.db).await.unwrap(), Default::default());

    let stand_in = StandIn::start(0).await;
    let app = stand_in.builder().spawn().await;
    let (client, ada, _) = account(&app).await;
    let (_, bob, _) = account(&app).await;
    with_customer(&app, bob, "cus_meter_bob").await;
    assert_eq!(client.get("/api/v1/app/users/me").await.status, 200);
    // `file_uploads` has no meter; `ai_tokens` of Bob (a customer) through `record` has one.
    app.state.usage.record(bob, "file_uploads", 1, &[]).await.unwrap();
    app.state.usage.record(bob, "ai_tokens", 42, &[("model", "m")]).await.unwrap();
    app.state.usage.flush().await.unwrap();
    eventually("the recorded usage was not sent", async || stand_in.accepted().len() == 1).await;
    let form = stand_in.accepted().into_values().next().unwrap();
    assert_eq!((form["event_name"].as_str(), form["payload[value]"].as_str()), ("llm_tokens", "42"));
    assert_eq!(
        omnistack_db::usage::total(&app.state.db, ada, "api_requests", super::today(), super::today()).await.unwrap(),
        1
    );
}
