//! Feature flags: admins manage them under `/api/v1/admin/feature-flags`, signed-in users read
//! their values at `/api/v1/app/feature-flags`, and every instance sees a change within 1 s.

use std::time::{Duration, Instant};

use omnistack_testkit::{TestApp, TestClient};
use serde_json::{Value, json};

use crate::jobs::admin_client;

mod ofrep;

pub const FLAGS: &str = "/api/v1/admin/feature-flags";

/// A signed-in user: its client and account id.
pub async fn user(app: &TestApp) -> (TestClient, String) {
    let (client, session) = app.signed_in_client().await;
    (client, session["user"]["id"].as_str().unwrap().to_owned())
}

pub async fn create(admin: &TestClient, body: Value) -> Value {
    let res = admin.post_json(FLAGS, &body).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.json()
}

async fn my_flags(client: &TestClient) -> Value {
    let res = client.get("/api/v1/app/feature-flags").await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["flags"].clone()
}

#[tokio::test]
async fn an_admin_creates_reads_changes_and_deletes_a_flag() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let (_, alice) = user(&app).await;
    let created = create(
        &admin,
        json!({"key": "new-editor", "description": "The new editor", "enabled": true, "rollout_percentage": 30,
               "user_ids": [alice], "plans": ["pro"]}),
    )
    .await;
    assert_eq!(created["key"], "new-editor");
    assert_eq!(created["group_id"], "new-editor", "the group defaults to the key");
    assert_eq!(created["user_ids"], json!([alice]));
    assert_eq!(created["plans"], json!(["pro"]));
    assert!(created["expires_at"].is_null() && created["created_at"].is_string());

    let twice = admin.post_json(FLAGS, &json!({"key": "new-editor"})).await;
    assert_eq!((twice.status.as_u16(), twice.error_code().as_str()), (409, "CONFLICT"));

    let listed = admin.get(FLAGS).await.json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["key"], "new-editor");
    assert_eq!(admin.get(&format!("{FLAGS}/new-editor")).await.json()["rollout_percentage"], 30);

    let changed = admin
        .patch_json(
            &format!("{FLAGS}/new-editor"),
            &json!({"rollout_percentage": null, "group_id": "editor", "description": null}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let changed = changed.json();
    assert!(changed["rollout_percentage"].is_null() && changed["description"].is_null());
    assert_eq!((changed["group_id"].as_str(), changed["enabled"].as_bool()), (Some("editor"), Some(true)));
    assert_eq!(changed["plans"], json!(["pro"]), "omitted fields stay");

    let deleted = admin.delete(&format!("{FLAGS}/new-editor")).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for res in [
        admin.get(&format!("{FLAGS}/new-editor")).await,
        admin.delete(&format!("{FLAGS}/new-editor")).await,
        admin.patch_json(&format!("{FLAGS}/new-editor"), &json!({"enabled": false})).await,
    ] {
        assert_eq!((res.status.as_u16(), res.error_code().as_str()), (404, "NOT_FOUND"), "{}", res.text);
    }
}

#[tokio::test]
async fn the_app_route_evaluates_every_flag_for_the_caller_by_the_one_rule() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let (alice_client, alice) = user(&app).await;
    let (bob_client, bob) = user(&app).await;
    omnistack_db::users::set_subscription(&app.state.db, bob.parse().unwrap(), "pro", "active").await.unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    create(&admin, json!({"key": "everyone", "enabled": true})).await;
    create(&admin, json!({"key": "off", "enabled": false, "user_ids": [alice]})).await;
    create(&admin, json!({"key": "expired", "enabled": true, "expires_at": past})).await;
    create(&admin, json!({"key": "until-soon", "enabled": true, "expires_at": soon})).await;
    create(&admin, json!({"key": "pro-only", "enabled": true, "plans": ["pro", "enterprise"]})).await;
    create(&admin, json!({"key": "alice-and-pro", "enabled": true, "plans": ["pro"], "user_ids": [alice]})).await;
    create(&admin, json!({"key": "nobody", "enabled": true, "rollout_percentage": 0})).await;
    create(&admin, json!({"key": "all-rolled", "enabled": true, "rollout_percentage": 100})).await;

    let alice_flags = my_flags(&alice_client).await;
    let bob_flags = my_flags(&bob_client).await;
    let expected_alice = json!({"everyone": true, "off": false, "expired": false, "until-soon": true,
        "pro-only": false, "alice-and-pro": true, "nobody": false, "all-rolled": true});
    let expected_bob = json!({"everyone": true, "off": false, "expired": false, "until-soon": true,
        "pro-only": true, "alice-and-pro": true, "nobody": false, "all-rolled": true});
    assert_eq!(alice_flags, expected_alice);
    assert_eq!(bob_flags, expected_bob);

    // An inactive subscription counts as free.
    omnistack_db::users::set_subscription(&app.state.db, bob.parse().unwrap(), "pro", "past_due").await.unwrap();
    assert_eq!(my_flags(&bob_client).await["pro-only"], false);

    let anonymous = app.client.get("/api/v1/app/feature-flags").await;
    assert_eq!((anonymous.status.as_u16(), anonymous.error_code().as_str()), (401, "AUTHENTICATION_ERROR"));
}

#[tokio::test]
async fn evaluate_reports_the_value_and_reason_for_any_user_id() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let (_, alice) = user(&app).await;
    create(&admin, json!({"key": "split", "group_id": "gr1", "enabled": true, "rollout_percentage": 73})).await;
    create(&admin, json!({"key": "pro", "enabled": true, "plans": ["pro"], "user_ids": [alice]})).await;
    create(&admin, json!({"key": "off", "enabled": false})).await;

    let split = eval(&admin, "split", "123").await;
    assert_eq!(split.status, 200, "{}", split.text);
    assert_eq!(split.json(), json!({"key": "split", "value": true, "reason": "SPLIT"}), "bucket 73 of gr1");
    admin.patch_json(&format!("{FLAGS}/split"), &json!({"rollout_percentage": 72})).await;
    assert_eq!(eval(&admin, "split", "123").await.json()["value"], false);
    assert_eq!(
        eval(&admin, "pro", &alice).await.json(),
        json!({"key": "pro", "value": true, "reason": "TARGETING_MATCH"})
    );
    let stranger = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        eval(&admin, "pro", &stranger).await.json(),
        json!({"key": "pro", "value": false, "reason": "TARGETING_MATCH"})
    );
    assert_eq!(eval(&admin, "off", "anyone").await.json(), json!({"key": "off", "value": false, "reason": "DISABLED"}));

    assert_eq!(eval(&admin, "missing", "123").await.status, 404);
    for bad in ["", "%00", "a%0Ab"] {
        let res = eval(&admin, "split", bad).await;
        assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{bad:?}");
    }
    let long = eval(&admin, "split", &"u".repeat(256)).await;
    assert_eq!(long.status, 422);
    let missing = admin.get(&format!("{FLAGS}/split/evaluate")).await;
    assert_eq!(missing.status, 422);
}

async fn eval(admin: &TestClient, key: &str, user: &str) -> omnistack_testkit::TestResponse {
    admin.get(&format!("{FLAGS}/{key}/evaluate?user_id={user}")).await
}

#[tokio::test]
async fn bad_flags_are_refused_with_the_field_that_is_wrong() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let too_many: Vec<String> = (0..10_001).map(|_| uuid::Uuid::now_v7().to_string()).collect();
    let cases = [
        (json!({"key": "Bad Key"}), "key"),
        (json!({"key": ""}), "key"),
        (json!({"key": "k".repeat(101)}), "key"),
        (json!({"key": "a\u{0}"}), "key"),
        (json!({"key": "ok", "description": "d".repeat(1001)}), "description"),
        (json!({"key": "ok", "description": "evil \u{202E} text"}), "description"),
        (json!({"key": "ok", "rollout_percentage": 101}), "rollout_percentage"),
        (json!({"key": "ok", "rollout_percentage": -1}), "rollout_percentage"),
        (json!({"key": "ok", "group_id": "Not A Group"}), "group_id"),
        (json!({"key": "ok", "user_ids": ["not-a-uuid"]}), "user_ids[0]"),
        (json!({"key": "ok", "user_ids": too_many}), "user_ids"),
        (json!({"key": "ok", "plans": ["platinum"]}), "plans[0]"),
        (json!({"key": "ok", "expires_at": "tomorrow"}), "expires_at"),
        (json!({"key": "ok", "expires_at": format!("2030-01-01T00:00:00.{}Z", "0".repeat(20))}), "expires_at"),
    ];
    for (body, field) in cases {
        let res = admin.post_json(FLAGS, &body).await;
        assert_eq!((res.status.as_u16(), res.error_code().as_str()), (422, "VALIDATION_ERROR"), "{body}: {}", res.text);
        let fields = res.json()["error"]["details"]["fields"].clone();
        assert!(fields.as_array().unwrap().iter().any(|f| f["field"] == field), "{field}: {fields}");
    }
    let unknown = admin.post_json(FLAGS, &json!({"key": "ok", "enabeld": true})).await;
    assert_eq!(unknown.status, 422, "unknown fields are refused: {}", unknown.text);

    create(&admin, json!({"key": "ok"})).await;
    let res = admin.patch_json(&format!("{FLAGS}/ok"), &json!({"plans": ["gold"]})).await;
    assert_eq!(res.status, 422, "{}", res.text);
    assert_eq!(admin.get(&format!("{FLAGS}/ok")).await.json()["plans"], json!([]), "a refused change writes nothing");
    assert_eq!(admin.get(&format!("{FLAGS}/{}", "k".repeat(300))).await.status, 404);
}

#[tokio::test]
async fn a_deployment_holds_at_most_a_thousand_flags() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    // Filled directly: a thousand requests would only measure the rate limiter.
    let mut tx = app.state.db.begin().await.unwrap();
    for i in 0..1_000 {
        let fields = omnistack_db::feature_flags::FlagFields::default();
        omnistack_db::feature_flags::insert_flag(&mut tx, &format!("flag-{i:04}"), &fields).await.unwrap();
    }
    tx.commit().await.unwrap();
    let res = admin.post_json(FLAGS, &json!({"key": "one-too-many"})).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (409, "CONFLICT"), "{}", res.text);
    assert_eq!(admin.delete(&format!("{FLAGS}/flag-0000")).await.status, 204);
    create(&admin, json!({"key": "one-too-many"})).await;
}

#[tokio::test]
async fn only_admins_reach_the_flag_routes() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    create(&admin, json!({"key": "guarded", "enabled": true})).await;
    let (user_client, _) = user(&app).await;
    let routes = [
        ("GET", FLAGS.to_owned()),
        ("POST", FLAGS.to_owned()),
        ("GET", format!("{FLAGS}/guarded")),
        ("PATCH", format!("{FLAGS}/guarded")),
        ("DELETE", format!("{FLAGS}/guarded")),
        ("GET", format!("{FLAGS}/guarded/evaluate?user_id=x")),
    ];
    for (method, path) in &routes {
        let method: reqwest::Method = method.parse().unwrap();
        let anonymous = app.client.send(app.client.request(method.clone(), path).json(&json!({"key": "x"}))).await;
        assert_eq!((anonymous.status.as_u16(), anonymous.error_code().as_str()), (401, "AUTHENTICATION_ERROR"));
        let plain = user_client.send(user_client.request(method, path).json(&json!({"key": "x"}))).await;
        assert_eq!((plain.status.as_u16(), plain.error_code().as_str()), (403, "AUTHORIZATION_ERROR"), "{path}");
    }
    assert_eq!(admin.get(&format!("{FLAGS}/guarded")).await.json()["enabled"], true, "nothing was changed");

    // Demoted: the same token is refused at once.
    let me = admin.get("/api/v1/app/users/me").await.json();
    let email = me["email"].as_str().unwrap();
    omnistack::users::set_role_by_email(&app.state.db, email, omnistack::auth::Role::User).await.unwrap();
    assert_eq!(admin.get(FLAGS).await.status, 403);
}

/// Polls `client`'s flags until `key` reads `want` (or is absent, for `None`); the time it took.
async fn until_seen(client: &TestClient, key: &str, want: Option<bool>) -> Duration {
    let started = Instant::now();
    loop {
        let flags = my_flags(client).await;
        if flags.get(key).and_then(Value::as_bool) == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(3), "{key} never became {want:?}: {flags}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_instance_is_seen_on_another_within_a_second() {
    let a = TestApp::spawn().await;
    let b = TestApp::builder().sharing(&a).spawn().await;
    let admin = admin_client(&a).await;
    let (_, session) = a.signed_in_client().await;
    let on_b = b.client.with_token(session["access_token"].as_str().unwrap());
    let on_a = a.client.with_token(session["access_token"].as_str().unwrap());

    create(&admin, json!({"key": "rollout", "enabled": true})).await;
    assert_eq!(my_flags(&on_a).await["rollout"], true, "the writing instance sees it at once");
    let created = until_seen(&on_b, "rollout", Some(true)).await;
    admin.patch_json(&format!("{FLAGS}/rollout"), &json!({"enabled": false})).await;
    assert_eq!(my_flags(&on_a).await["rollout"], false);
    let updated = until_seen(&on_b, "rollout", Some(false)).await;
    assert_eq!(admin.delete(&format!("{FLAGS}/rollout")).await.status, 204);
    assert!(my_flags(&on_a).await.get("rollout").is_none());
    let deleted = until_seen(&on_b, "rollout", None).await;
    for (what, took) in [("created", created), ("updated", updated), ("deleted", deleted)] {
        assert!(took < Duration::from_secs(1), "{what}: seen on the other instance after {took:?}");
    }
}
