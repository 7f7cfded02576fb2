//! In-app purchases through the real server: App Store notifications signed by a test CA's
//! chain, Google Play pushes with a test JWKS and a fake Publisher API and token endpoint, and
//! the link routes.

mod apple;
mod google;

use omnistack_testkit::{TestApp, TestAppBuilder};
use serde_json::Value;

pub use crate::webhooks::{assert_refused, post, stored, wait_for};

/// Jobs retried at once and polled often.
pub fn quick() -> TestAppBuilder {
    TestApp::builder().env("JOBS_RETRY_BASE_SECONDS", "0").env("JOBS_POLL_INTERVAL_MS", "50")
}

/// The caller's billing status.
pub async fn status(client: &omnistack_testkit::TestClient) -> Value {
    let res = client.get("/api/v1/app/billing/status").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

/// How many `billing.subscription_changed` entries the account has.
pub async fn changes(app: &TestApp, user_id: &str) -> i64 {
    let filter = omnistack_db::audit::AuditFilter {
        action: Some("billing.subscription_changed"),
        resource_id: Some(user_id),
        ..Default::default()
    };
    omnistack_db::audit::list_entries(&app.state.db, &filter, 0, 100).await.unwrap().1
}

/// An impersonation token for `user_id`, started by a new admin.
pub async fn impersonation_token(app: &TestApp, user_id: &str) -> String {
    let admin = crate::admin::account(app, omnistack::auth::Role::Admin).await;
    let res = admin
        .client
        .post_json(
            "/api/v1/admin/impersonations",
            &serde_json::json!({"user_id": user_id, "reason": "support ticket #1: billing", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()["access_token"].as_str().unwrap().to_owned()
}
