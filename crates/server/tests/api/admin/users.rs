//! `/api/v1/admin/users`: listing, detail, the edit rules (every escalation path refused), and
//! deactivation that takes effect at once on tokens (own and external), refresh and sockets.

use std::time::Duration;

use omnistack::auth::Role;
use omnistack_testkit::idp::FakeIdp;
use omnistack_testkit::{TestApp, WsClient};
use serde_json::json;

use super::{PASSWORD, account, assert_refused, entries};

#[tokio::test]
async fn admins_search_filter_and_sort_users_and_nobody_else_can() {
    let app = TestApp::spawn().await;
    let admin = account(&app, Role::Admin).await;
    let ada = account(&app, Role::User).await;
    app.client.with_token(&ada.token).patch_json("/api/v1/app/users/me", &json!({"full_name": "Ada Lovelace"})).await;

    let found = admin.client.get("/api/v1/admin/users?q=LOVELACE").await;
    assert_eq!(found.status, 200, "{}", found.text);
    let body = found.json();
    assert_eq!((body["total"].as_i64(), body["skip"].as_i64(), body["limit"].as_i64()), (Some(1), Some(0), Some(20)));
    let item = &body["items"][0];
    assert_eq!(item["id"], ada.id.as_str());
    for field in [
        "email",
        "full_name",
        "role",
        "is_active",
        "email_verified",
        "subscription_plan",
        "subscription_status",
        "created_at",
        "last_login_at",
        "login_count",
    ] {
        assert!(item.get(field).is_some(), "{field} in {item}");
    }
    let by_email = admin.client.get(&format!("/api/v1/admin/users?q={}", &ada.email[..12])).await.json();
    assert_eq!(by_email["items"][0]["id"], ada.id.as_str());
    let admins = admin.client.get("/api/v1/admin/users?role=admin&is_active=true").await.json();
    assert_eq!((admins["total"].as_i64(), admins["items"][0]["id"].as_str()), (Some(1), Some(admin.id.as_str())));
    let sorted = admin.client.get("/api/v1/admin/users?sort=created_at&limit=1&skip=1").await.json();
    assert_eq!((sorted["items"][0]["id"].as_str(), sorted["total"].as_i64()), (Some(ada.id.as_str()), Some(2)));
    for sort in ["-created_at", "email", "-email", "last_login_at", "-last_login_at"] {
        assert_eq!(admin.client.get(&format!("/api/v1/admin/users?sort={sort}")).await.status, 200, "{sort}");
    }

    for bad in ["role=root", "sort=name", "limit=0", "limit=101", "skip=-1", "is_active=maybe", "q=%00"] {
        let res = admin.client.get(&format!("/api/v1/admin/users?{bad}")).await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text);
    }
    let long = admin.client.get(&format!("/api/v1/admin/users?q={}", "é".repeat(101))).await;
    assert_refused(&long, 422, "VALIDATION_ERROR");

    assert_refused(&app.client.get("/api/v1/admin/users").await, 401, "AUTHENTICATION_ERROR");
    assert_refused(&ada.client.get("/api/v1/admin/users").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&ada.client.get(&format!("/api/v1/admin/users/{}", ada.id)).await, 403, "AUTHORIZATION_ERROR");
}

#[tokio::test]
async fn a_users_detail_shows_linked_identities_and_live_sessions() {
    let idp = FakeIdp::start().await;
    let app = TestApp::builder().env("CLERK_ISSUER_URL", &idp.issuer()).spawn().await;
    let admin = account(&app, Role::Admin).await;
    let token = idp.token(idp.claims(json!({"email": "ext-admin-view@example.com", "email_verified": true})));
    let me = app.client.with_token(&token).get("/api/v1/app/users/me").await.json();
    let external = me["id"].as_str().unwrap();

    let detail = admin.client.get(&format!("/api/v1/admin/users/{external}")).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    let detail = detail.json();
    assert_eq!(detail["identities"][0]["provider"], "clerk");
    assert!(detail["identities"][0]["subject"].is_string());
    assert_eq!(detail["active_sessions"], 0);
    let own = admin.client.get(&format!("/api/v1/admin/users/{}", admin.id)).await.json();
    assert_eq!((own["active_sessions"].as_i64(), own["identities"].as_array().map(Vec::len)), (Some(1), Some(0)));

    let unknown = admin.client.get(&format!("/api/v1/admin/users/{}", uuid::Uuid::now_v7())).await;
    assert_refused(&unknown, 404, "NOT_FOUND");
    assert_refused(&admin.client.get("/api/v1/admin/users/not-a-uuid").await, 404, "NOT_FOUND");
}

#[tokio::test]
async fn every_escalation_path_is_refused_and_nothing_is_silently_ignored() {
    let app = TestApp::spawn().await;
    let root = account(&app, Role::SuperAdmin).await;
    let admin = account(&app, Role::Admin).await;
    let other_admin = account(&app, Role::Admin).await;
    let user = account(&app, Role::User).await;
    let patch = |client: &omnistack_testkit::TestClient, id: &str, body: serde_json::Value| {
        let (client, path) = (client.clone(), format!("/api/v1/admin/users/{id}"));
        async move { client.patch_json(&path, &body).await }
    };

    // user → admin: a plain user has no way in.
    assert_refused(&patch(&user.client, &user.id, json!({"role": "admin"})).await, 403, "AUTHORIZATION_ERROR");
    // An admin cannot grant admin or super_admin, edit another admin, or promote themselves.
    assert_refused(&patch(&admin.client, &user.id, json!({"role": "admin"})).await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&patch(&admin.client, &user.id, json!({"role": "super_admin"})).await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&patch(&admin.client, &other_admin.id, json!({"full_name": "X"})).await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&patch(&admin.client, &admin.id, json!({"role": "super_admin"})).await, 403, "AUTHORIZATION_ERROR");
    let deactivate_admin =
        admin.client.post_json(&format!("/api/v1/admin/users/{}/deactivate", other_admin.id), &json!({})).await;
    assert_refused(&deactivate_admin, 403, "AUTHORIZATION_ERROR");
    // Nobody changes their own role or deactivates themselves.
    assert_refused(&patch(&root.client, &root.id, json!({"role": "admin"})).await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&patch(&root.client, &root.id, json!({"is_active": false})).await, 403, "AUTHORIZATION_ERROR");
    let self_off = root.client.post_json(&format!("/api/v1/admin/users/{}/deactivate", root.id), &json!({})).await;
    assert_refused(&self_off, 403, "AUTHORIZATION_ERROR");
    // Unknown roles, empty or odd bodies.
    assert_refused(&patch(&root.client, &user.id, json!({"role": "root"})).await, 422, "VALIDATION_ERROR");
    assert_refused(&patch(&root.client, &user.id, json!({})).await, 422, "VALIDATION_ERROR");
    assert_refused(&patch(&root.client, &user.id, json!({"email": "x@example.com"})).await, 422, "VALIDATION_ERROR");
    assert_refused(&patch(&root.client, &user.id, json!({"full_name": "a\u{0}b"})).await, 422, "VALIDATION_ERROR");
    assert_refused(
        &patch(&root.client, &user.id, json!({"full_name": "x".repeat(256)})).await,
        422,
        "VALIDATION_ERROR",
    );
    assert_refused(&patch(&root.client, &user.id, json!({"full_name": "bell\u{7}"})).await, 422, "VALIDATION_ERROR");
    let bidi = patch(&root.client, &user.id, json!({"full_name": "evil\u{202E}gpj.exe"})).await;
    assert_refused(&bidi, 422, "VALIDATION_ERROR");
    let missing = patch(&root.client, &uuid::Uuid::now_v7().to_string(), json!({"full_name": "Y"})).await;
    assert_refused(&missing, 404, "NOT_FOUND");

    // A super admin may do what an admin may not, and each change is audited.
    let promoted = patch(&root.client, &user.id, json!({"role": "admin", "full_name": "Promoted"})).await;
    assert_eq!(promoted.status, 200, "{}", promoted.text);
    assert_eq!(
        (promoted.json()["role"].as_str(), promoted.json()["full_name"].as_str()),
        (Some("admin"), Some("Promoted"))
    );
    let changed = entries(&root.client, "user.role_changed").await;
    assert_eq!(changed[0]["details"], json!({"from": "user", "to": "admin"}));
    assert_eq!(
        (changed[0]["actor_id"].as_str(), changed[0]["resource_id"].as_str()),
        (Some(root.id.as_str()), Some(user.id.as_str()))
    );
    assert_eq!(entries(&root.client, "user.updated").await[0]["details"]["full_name"]["to"], "Promoted");
    // An admin's plain edits of a user are allowed.
    let third = account(&app, Role::User).await;
    assert_eq!(patch(&admin.client, &third.id, json!({"full_name": "Renamed"})).await.status, 200);

    // The last super admin demoting themselves is a self-edit.
    assert_refused(&patch(&root.client, &root.id, json!({"role": "user"})).await, 403, "AUTHORIZATION_ERROR");
}

#[tokio::test]
async fn the_last_active_super_admin_cannot_be_demoted_or_deactivated_even_by_a_racing_peer() {
    use omnistack::admin::audit::AuditContext;
    use omnistack::admin::users::{self, UserPatch};
    let app = TestApp::spawn().await;
    let a = account(&app, Role::SuperAdmin).await;
    let b = account(&app, Role::SuperAdmin).await;
    // `b` authenticated (as a super admin) before `a` demoted them: the two requests raced.
    let stale_b = omnistack::auth::guard::authenticate_token(&app.state, &b.token).await.unwrap();
    let res = a.client.patch_json(&format!("/api/v1/admin/users/{}", b.id), &json!({"role": "admin"})).await;
    assert_eq!(res.status, 200, "{}", res.text);

    let context = AuditContext::default();
    let demote = UserPatch { role: Some("user".into()), ..UserPatch::default() };
    let refused = users::update_user(&app.state.db, &stale_b, &context, &a.id, demote).await.unwrap_err();
    assert_eq!(refused.status_and_code().1, "CONFLICT", "{refused}");
    let refused = users::deactivate_user(&app.state.db, &stale_b, &context, &a.id).await.unwrap_err();
    assert_eq!(refused.status_and_code().1, "CONFLICT", "{refused}");
    let off = UserPatch { is_active: Some(false), ..UserPatch::default() };
    let refused = users::update_user(&app.state.db, &stale_b, &context, &a.id, off).await.unwrap_err();
    assert_eq!(refused.status_and_code().1, "CONFLICT", "{refused}");
    let me = a.client.get(&format!("/api/v1/admin/users/{}", a.id)).await.json();
    assert_eq!((me["role"].as_str(), me["is_active"].as_bool()), (Some("super_admin"), Some(true)));
    // `b`'s token now carries the admin role: the admin guard lets it in, the rules do not.
    let res = b.client.patch_json(&format!("/api/v1/admin/users/{}", a.id), &json!({"role": "user"})).await;
    assert_refused(&res, 403, "AUTHORIZATION_ERROR");
}

#[tokio::test]
async fn deactivation_refuses_own_and_external_tokens_and_refresh_and_closes_sockets_at_once() {
    let idp = FakeIdp::start().await;
    let app = TestApp::builder().env("CLERK_ISSUER_URL", &idp.issuer()).spawn().await;
    let admin = account(&app, Role::Admin).await;
    let user = account(&app, Role::User).await;
    let external_token = idp.token(idp.claims(json!({"email": "ext-deact@example.com", "email_verified": true})));
    let external = app.client.with_token(&external_token).get("/api/v1/app/users/me").await.json();
    let external_id = external["id"].as_str().unwrap().to_owned();
    let (mut socket, _) = WsClient::connected(&app.ws_url(&format!("/api/v1/app/ws?token={}", user.token))).await;
    let (mut external_socket, _) =
        WsClient::connected(&app.ws_url(&format!("/api/v1/app/ws?token={external_token}"))).await;

    for id in [&user.id, &external_id] {
        let res = admin.client.post_json(&format!("/api/v1/admin/users/{id}/deactivate"), &json!({})).await;
        assert_eq!(res.status, 200, "{}", res.text);
        assert_eq!(res.json()["is_active"], false);
    }
    assert_refused(&user.client.get("/api/v1/app/users/me").await, 403, "AUTHORIZATION_ERROR");
    let external_me = app.client.with_token(&external_token).get("/api/v1/app/users/me").await;
    assert_refused(&external_me, 403, "AUTHORIZATION_ERROR");
    let refresh =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(refresh.status, 401, "{}", refresh.text);
    let login =
        app.client.post_json("/api/v1/public/auth/login", &json!({"email": user.email, "password": PASSWORD})).await;
    assert_refused(&login, 403, "AUTHORIZATION_ERROR");
    for socket in [&mut socket, &mut external_socket] {
        let frame = socket.closed_within(Duration::from_millis(1500)).await.expect("a close frame");
        assert_eq!((u16::from(frame.code), frame.reason.as_str()), (4003, "account deactivated"));
    }

    let again = admin.client.post_json(&format!("/api/v1/admin/users/{}/deactivate", user.id), &json!({})).await;
    assert_refused(&again, 409, "CONFLICT");
    let audited = entries(&admin.client, "user.deactivated").await;
    assert_eq!(audited.len(), 2);
    assert_eq!(audited[1]["details"]["email"], user.email.as_str());

    let back = admin.client.post_json(&format!("/api/v1/admin/users/{}/activate", user.id), &json!({})).await;
    assert_eq!((back.status.as_u16(), back.json()["is_active"].as_bool()), (200, Some(true)));
    let twice = admin.client.post_json(&format!("/api/v1/admin/users/{}/activate", user.id), &json!({})).await;
    assert_refused(&twice, 409, "CONFLICT");
    let login =
        app.client.post_json("/api/v1/public/auth/login", &json!({"email": user.email, "password": PASSWORD})).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(entries(&admin.client, "user.activated").await.len(), 1);
    let patched =
        admin.client.patch_json(&format!("/api/v1/admin/users/{}", user.id), &json!({"is_active": false})).await;
    assert_eq!(patched.json()["is_active"], false);
    assert_eq!(entries(&admin.client, "user.deactivated").await.len(), 3);
    let missing =
        admin.client.post_json(&format!("/api/v1/admin/users/{}/activate", uuid::Uuid::now_v7()), &json!({})).await;
    assert_refused(&missing, 404, "NOT_FOUND");
}
