//! The admin console end to end: user management with its escalation rules, impersonation
//! and its limits, and the audit log (what it records, listing, export, tamper detection).

mod audit;
mod impersonation;
mod users;

use omnistack::auth::Role;
use omnistack_testkit::{TestApp, TestClient};
use serde_json::Value;

pub const PASSWORD: &str = "correct-horse-battery";

/// A signed-in account with `role`.
pub struct Account {
    pub client: TestClient,
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

pub async fn account(app: &TestApp, role: Role) -> Account {
    let (client, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();
    if role != Role::User {
        omnistack::users::set_role_by_email(&app.state.db, &email, role).await.unwrap();
    }
    Account {
        client,
        id: session["user"]["id"].as_str().unwrap().to_owned(),
        email,
        token: session["access_token"].as_str().unwrap().to_owned(),
        refresh_token: session["refresh_token"].as_str().unwrap().to_owned(),
    }
}

/// The audit entries with `action`, newest first (through the API, as a super admin).
pub async fn entries(admin: &TestClient, action: &str) -> Vec<Value> {
    let res = admin.get(&format!("/api/v1/admin/audit-logs?action={action}&limit=100")).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["items"].as_array().unwrap().clone()
}

/// The chain's verdict.
pub async fn verify(super_admin: &TestClient) -> Value {
    let res = super_admin.get("/api/v1/admin/audit-logs/verify").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

/// Asserts a status and an error code.
pub fn assert_refused(res: &omnistack_testkit::TestResponse, status: u16, code: &str) {
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (status, code), "{}", res.text);
}
