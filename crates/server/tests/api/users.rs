//! `/app/users/me`, deactivation, and bootstrap of admins.

use omnistack_testkit::TestApp;
use serde_json::json;

#[tokio::test]
async fn me_returns_the_v1_user_shape() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let res = client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 200);
    let me = res.json();
    let mut keys: Vec<&str> = me.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "avatar_url",
            "created_at",
            "email",
            "email_verified",
            "full_name",
            "id",
            "is_active",
            "role",
            "subscription_plan",
            "subscription_status"
        ]
    );
    assert_eq!(me["id"], session["user"]["id"]);
    assert_eq!(me["subscription_plan"], "free");
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));
    let id = uuid::Uuid::parse_str(me["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
}

#[tokio::test]
async fn patch_me_updates_clears_and_validates() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let res = client
        .patch_json(
            "/api/v1/app/users/me",
            &json!({"full_name": "  Grace Hopper ", "avatar_url": "https://cdn.example.com/g.png"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["full_name"], "Grace Hopper");
    assert_eq!(res.json()["avatar_url"], "https://cdn.example.com/g.png");

    let res = client.patch_json("/api/v1/app/users/me", &json!({"avatar_url": null})).await;
    assert_eq!(res.json()["avatar_url"], json!(null));
    assert_eq!(res.json()["full_name"], "Grace Hopper", "omitted fields stay");

    let res = client
        .patch_json("/api/v1/app/users/me", &json!({"avatar_url": "javascript:alert(1)", "full_name": "x".repeat(256)}))
        .await;
    assert_eq!(res.status, 422);
    assert_eq!(res.json()["error"]["details"]["fields"].as_array().unwrap().len(), 2);
    assert_eq!(client.get("/api/v1/app/users/me").await.json()["full_name"], "Grace Hopper", "nothing half-written");
}

#[tokio::test]
async fn deleting_me_deactivates_erases_and_locks_out_even_a_live_token() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();
    assert_eq!(client.delete("/api/v1/app/users/me").await.status, 204);

    let res = client.get("/api/v1/app/users/me").await;
    assert_eq!(res.status, 403);
    assert_eq!(res.error_code(), "AUTHORIZATION_ERROR");
    assert_eq!(client.get("/api/v1/app/projects").await.status, 403);

    let id = uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap();
    let row = omnistack_db::users::find_user(&app.state.db, id).await.unwrap().unwrap();
    assert!(!row.is_active && row.deactivated_at.is_some());
    assert_eq!((row.email, row.full_name, row.hashed_password), (None, None, None));

    let login = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": email, "password": "correct-horse-battery"}))
        .await;
    assert_eq!(login.status, 401);
    let refresh =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(refresh.status, 401);
}

#[tokio::test]
async fn a_user_deactivated_elsewhere_gets_403_with_a_still_valid_token() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let id = uuid::Uuid::parse_str(session["user"]["id"].as_str().unwrap()).unwrap();
    omnistack_db::users::deactivate_and_erase(&app.state.db, id).await.unwrap();
    for path in ["/api/v1/app/users/me", "/api/v2/app/users/me", "/api/v1/app/projects"] {
        assert_eq!(client.get(path).await.status, 403, "{path}");
    }
}

#[tokio::test]
async fn roles_come_from_the_database_and_are_reflected_immediately() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    omnistack::users::set_role_by_email(&app.state.db, email, omnistack::auth::Role::Admin).await.unwrap();
    assert_eq!(client.get("/api/v1/app/users/me").await.json()["role"], "admin");
}

#[tokio::test]
async fn admin_email_and_password_create_a_super_admin_at_first_start() {
    let app = TestApp::builder()
        .env("ADMIN_EMAIL", "Root@Example.com")
        .env("ADMIN_PASSWORD", "bootstrap-password")
        .spawn()
        .await;
    let res = app
        .client
        .post_json("/api/v1/public/auth/login", &json!({"email": "root@example.com", "password": "bootstrap-password"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["user"]["role"], "super_admin");
    assert_eq!(res.json()["user"]["email_verified"], true);
}
