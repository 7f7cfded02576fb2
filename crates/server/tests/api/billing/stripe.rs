//! Stripe end to end: the server talks to `FakeStripe` (Checkout, Billing Portal and
//! idempotency keys) in front of a real localstripe (customers, subscriptions, invoices), and
//! receives signed events through `POST /api/v1/public/webhooks/stripe`.

mod events;
mod routes;

use omnistack_testkit::stripe::{FakeStripe, TEST_SECRET_KEY};
use omnistack_testkit::{TestApp, TestAppBuilder, TestClient, TestResponse};
use serde_json::{Value, json};

use crate::webhooks::{STRIPE_SECRET, now, post_stripe, wait_for};

pub const FRONTEND: &str = "https://app.example.test";

/// The server and its Stripe.
pub struct Stand {
    pub app: TestApp,
    pub stripe: FakeStripe,
}

/// Stripe configured with two prices, webhooks signed with [`STRIPE_SECRET`], retries at once.
pub async fn stand() -> Stand {
    stand_with(|builder| builder).await
}

/// [`stand`] with more configuration.
pub async fn stand_with(more: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> Stand {
    let stripe = FakeStripe::start().await;
    stripe.create_price("price_pro", 1200).await;
    stripe.create_price("price_ent", 9900).await;
    let builder = configured(&stripe.base_url());
    let app = more(builder).spawn().await;
    Stand { app, stripe }
}

/// A builder with Stripe at `base`.
pub fn configured(base: &str) -> TestAppBuilder {
    TestApp::builder()
        .env("STRIPE_SECRET_KEY", TEST_SECRET_KEY)
        .env("STRIPE_API_BASE", base)
        .env("STRIPE_PRICES", "pro_monthly=price_pro,enterprise_monthly=price_ent")
        .env("STRIPE_WEBHOOK_SECRETS", STRIPE_SECRET)
        .env("FRONTEND_URL", FRONTEND)
        .env("BILLING_REDIRECT_ORIGINS", "https://billing.example.test")
        .env("JOBS_RETRY_BASE_SECONDS", "0")
        .env("JOBS_POLL_INTERVAL_MS", "50")
}

/// A checkout body.
pub fn purchase(price: &str) -> Value {
    json!({"price": price, "success_url": format!("{FRONTEND}/billing/done"), "cancel_url": format!("{FRONTEND}/billing")})
}

pub async fn checkout(client: &TestClient, price: &str) -> TestResponse {
    client.post_json("/api/v1/app/billing/checkout", &purchase(price)).await
}

/// Delivers `event` signed, and waits until it is processed.
pub async fn deliver(app: &TestApp, event: &Value) {
    let res = post_stripe(app, serde_json::to_vec(event).unwrap(), STRIPE_SECRET, now()).await;
    assert_eq!(res.status, 200, "{}", res.text);
    wait_for(app, event["id"].as_str().unwrap(), "processed").await;
}

/// The caller's billing status.
pub async fn status(client: &TestClient) -> Value {
    let res = client.get("/api/v1/app/billing/status").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

/// A signed-in account that bought `price_id` through Checkout, with the completion delivered:
/// its client, id, and the subscription at Stripe.
pub async fn subscriber(stand: &Stand, price_key: &str) -> (TestClient, String, Value) {
    let (client, session) = stand.app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let res = checkout(&client, price_key).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let session = stand.stripe.checkout_sessions().into_iter().find(|s| s["id"] == res.json()["session_id"]).unwrap();
    let subscription = stand.stripe.pay_checkout(&session).await;
    let mut completed = session.clone();
    completed["status"] = json!("complete");
    completed["subscription"] = subscription["id"].clone();
    deliver(&stand.app, &FakeStripe::event("checkout.session.completed", &completed)).await;
    (client, user_id, subscription)
}
