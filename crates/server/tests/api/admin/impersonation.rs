//! `/api/v1/admin/impersonations`: an admin acts as a user with a bound, audited token that
//! can never escalate, and that dies on every instance when stopped.

use base64::Engine;
use omnistack::auth::Role;
use omnistack_testkit::{TestApp, WsClient, refused_handshake};
use serde_json::{Value, json};

use super::{account, assert_refused, entries, verify};

fn reason() -> &'static str {
    "support ticket #4521: cannot see invoices"
}

async fn start(admin: &omnistack_testkit::TestClient, user_id: &str) -> Value {
    let res = admin
        .post_json(
            "/api/v1/admin/impersonations",
            &json!({"user_id": user_id, "reason": reason(), "duration_minutes": 5}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn an_admin_acts_as_a_user_with_an_audited_token_until_it_is_stopped_on_every_instance() {
    let app = TestApp::spawn().await;
    let second = TestApp::builder().sharing(&app).spawn().await;
    let admin = account(&app, Role::Admin).await;
    let root = account(&app, Role::SuperAdmin).await;
    let user = account(&app, Role::User).await;

    let started = start(&admin.client, &user.id).await;
    assert_eq!((started["token_type"].as_str(), started["expires_in"].as_u64()), (Some("bearer"), Some(300)));
    assert_eq!(
        (started["user"]["id"].as_str(), started["user"]["email"].as_str()),
        (Some(user.id.as_str()), Some(user.email.as_str()))
    );
    assert_eq!(started["impersonator_id"], admin.id.as_str());
    let token = started["access_token"].as_str().unwrap();
    let claims = claims(token);
    assert_eq!(
        (claims["sub"].as_str(), claims["act"]["sub"].as_str()),
        (Some(user.id.as_str()), Some(admin.id.as_str()))
    );
    assert_eq!(claims["imp"], started["id"]);

    let acting = app.client.with_token(token);
    let me = acting.get("/api/v1/app/users/me").await;
    assert_eq!((me.status.as_u16(), me.json()["id"].as_str()), (200, Some(user.id.as_str())));
    assert_eq!(me.header("x-impersonated-by"), Some(admin.id.as_str()));
    let created = acting.post_json("/api/v1/app/projects", &json!({"name": "made while impersonating"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("x-impersonated-by"), Some(admin.id.as_str()));
    let refused = acting.post_json("/api/v1/app/projects", &json!({"name": ""})).await;
    assert_eq!(refused.header("x-impersonated-by"), Some(admin.id.as_str()), "errors carry it too");
    assert!(user.client.get("/api/v1/app/users/me").await.header("x-impersonated-by").is_none());

    let requests = entries(&root.client, "impersonation.request").await;
    assert_eq!(requests.len(), 2, "every write, refused or not, and no read: {requests:?}");
    let last = &requests[1];
    assert_eq!(
        (last["actor_id"].as_str(), last["impersonated_user_id"].as_str()),
        (Some(admin.id.as_str()), Some(user.id.as_str()))
    );
    assert_eq!(last["details"]["method"], "POST");
    assert_eq!(last["details"]["route"], "/api/v1/app/projects");
    assert_eq!(last["details"]["status"], 201);
    let started_entry = &entries(&root.client, "impersonation.started").await[0];
    assert_eq!(started_entry["details"]["reason"], reason());
    assert_eq!(started_entry["resource_id"], started["id"]);

    let listed = admin.client.get("/api/v1/admin/impersonations?active=true").await.json();
    assert_eq!((listed["total"].as_i64(), listed["items"][0]["reason"].as_str()), (Some(1), Some(reason())));
    assert_eq!(listed["items"][0]["active"], true);
    assert_eq!(second.client.with_token(token).get("/api/v1/app/users/me").await.status, 200);

    let stop = admin
        .client
        .post_json(&format!("/api/v1/admin/impersonations/{}/stop", started["id"].as_str().unwrap()), &json!({}))
        .await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    assert_eq!(
        (stop.json()["active"].as_bool(), stop.json()["ended_by"].as_str()),
        (Some(false), Some(admin.id.as_str()))
    );
    for instance in [&app, &second] {
        assert_refused(
            &instance.client.with_token(token).get("/api/v1/app/users/me").await,
            401,
            "AUTHENTICATION_ERROR",
        );
    }
    let again = admin
        .client
        .post_json(&format!("/api/v1/admin/impersonations/{}/stop", started["id"].as_str().unwrap()), &json!({}))
        .await;
    assert_refused(&again, 409, "CONFLICT");
    let unknown = admin
        .client
        .post_json(&format!("/api/v1/admin/impersonations/{}/stop", uuid::Uuid::now_v7()), &json!({}))
        .await;
    assert_refused(&unknown, 404, "NOT_FOUND");
    assert_eq!(entries(&root.client, "impersonation.stopped").await.len(), 1);
    let ended = admin.client.get("/api/v1/admin/impersonations?active=false").await.json();
    assert_eq!(ended["total"], 1);
    assert_eq!(verify(&root.client).await["valid"], true);
}

#[tokio::test]
async fn an_impersonation_token_never_escalates() {
    let app = TestApp::spawn().await;
    let admin = account(&app, Role::Admin).await;
    let other_admin = account(&app, Role::Admin).await;
    let user = account(&app, Role::User).await;
    let bystander = account(&app, Role::User).await;
    let started = start(&admin.client, &user.id).await;
    let token = started["access_token"].as_str().unwrap();
    let acting = app.client.with_token(token);

    // Never an admin, never oneself, never a deactivated account.
    let body = |id: &str| json!({"user_id": id, "reason": reason()});
    assert_refused(
        &admin.client.post_json("/api/v1/admin/impersonations", &body(&other_admin.id)).await,
        403,
        "AUTHORIZATION_ERROR",
    );
    assert_refused(
        &admin.client.post_json("/api/v1/admin/impersonations", &body(&admin.id)).await,
        403,
        "AUTHORIZATION_ERROR",
    );
    assert_refused(
        &user.client.post_json("/api/v1/admin/impersonations", &body(&bystander.id)).await,
        403,
        "AUTHORIZATION_ERROR",
    );
    assert_refused(
        &app.client.post_json("/api/v1/admin/impersonations", &body(&bystander.id)).await,
        401,
        "AUTHENTICATION_ERROR",
    );
    let unknown =
        admin.client.post_json("/api/v1/admin/impersonations", &body(&uuid::Uuid::now_v7().to_string())).await;
    assert_refused(&unknown, 404, "NOT_FOUND");

    // Nesting, the admin API, the account's erasure and sockets are closed to the token.
    assert_refused(
        &acting.post_json("/api/v1/admin/impersonations", &body(&bystander.id)).await,
        403,
        "AUTHORIZATION_ERROR",
    );
    for path in
        ["/api/v1/admin/users", "/api/v1/admin/audit-logs", "/api/v1/admin/impersonations", "/api/v1/admin/jobs"]
    {
        let res = acting.get(path).await;
        assert_refused(&res, 403, "AUTHORIZATION_ERROR");
        assert_eq!(res.header("x-impersonated-by"), Some(admin.id.as_str()), "{path}");
    }
    assert_refused(&acting.delete("/api/v1/app/users/me").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&acting.post_json("/api/v1/app/ws/ticket", &json!({})).await, 403, "AUTHORIZATION_ERROR");
    let (status, _) = refused_handshake(&app.ws_url(&format!("/api/v1/app/ws?token={token}"))).await;
    assert_eq!(status, 403);
    let mut socket = WsClient::connect(&app.ws_url("/api/v1/app/ws")).await;
    socket.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(socket.close_code(std::time::Duration::from_secs(5)).await, 4003);
    assert_eq!(acting.get("/api/v1/app/users/me").await.status, 200, "the user's own reads still work");

    // A demoted admin's impersonations end with their role.
    omnistack::users::set_role_by_email(&app.state.db, &admin.email, Role::User).await.unwrap();
    assert_refused(&acting.get("/api/v1/app/users/me").await, 401, "AUTHENTICATION_ERROR");
    // A forged `act` claim needs the secret; a token whose `imp` names no session is refused.
    let mut forged = claims(token);
    forged["imp"] = json!(uuid::Uuid::now_v7().to_string());
    let key = jsonwebtoken::EncodingKey::from_secret(b"not-the-secret");
    let forged = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &forged, &key).unwrap();
    assert_refused(&app.client.with_token(&forged).get("/api/v1/app/users/me").await, 401, "AUTHENTICATION_ERROR");
}

#[tokio::test]
async fn impersonation_requests_are_checked() {
    let app = TestApp::spawn().await;
    let admin = account(&app, Role::Admin).await;
    let user = account(&app, Role::User).await;
    let post = |body: Value| {
        let client = admin.client.clone();
        async move { client.post_json("/api/v1/admin/impersonations", &body).await }
    };
    for bad in [
        json!({"user_id": user.id, "reason": "too short"}),
        json!({"user_id": user.id, "reason": "x".repeat(501)}),
        json!({"user_id": user.id, "reason": "          spaces    "}),
        json!({"user_id": user.id, "reason": reason(), "duration_minutes": 0}),
        json!({"user_id": user.id, "reason": reason(), "duration_minutes": 61}),
        json!({"user_id": "nope", "reason": reason()}),
        json!({"user_id": user.id, "reason": "null byte \u{0} inside the reason"}),
        json!({"user_id": user.id, "reason": reason(), "extra": true}),
        json!({"user_id": user.id, "reason": "zero\u{200B}width characters hide text"}),
        json!({"reason": reason()}),
    ] {
        assert_eq!(post(bad.clone()).await.status, 422, "{bad}");
    }
    let default = post(json!({"user_id": user.id, "reason": reason()})).await;
    assert_eq!((default.status.as_u16(), default.json()["expires_in"].as_u64()), (201, Some(900)));
    for bad in ["active=maybe", "limit=0", "limit=101", "skip=-1"] {
        assert_eq!(admin.client.get(&format!("/api/v1/admin/impersonations?{bad}")).await.status, 422, "{bad}");
    }
    let user_off = admin.client.post_json(&format!("/api/v1/admin/users/{}/deactivate", user.id), &json!({})).await;
    assert_eq!(user_off.status, 200);
    assert_refused(&post(json!({"user_id": user.id, "reason": reason()})).await, 409, "CONFLICT");
    let token = default.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.client.with_token(&token).get("/api/v1/app/users/me").await.status, 403, "deactivated user");
}
