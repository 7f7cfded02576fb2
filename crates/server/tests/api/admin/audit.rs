//! `/api/v1/admin/audit-logs`: what is recorded (admin writes, job and contact actions, auth
//! events), listing and filters, the streamed CSV export, and the hash chain: one valid chain
//! from two instances writing at once, and a row edited or deleted in the database reported.

use omnistack::auth::Role;
use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::Noop;
use omnistack_db::testing::execute_unchecked;
use omnistack_testkit::TestApp;
use serde_json::json;

use super::{PASSWORD, account, assert_refused, entries, verify};

#[tokio::test]
async fn a_row_edited_or_deleted_in_the_database_makes_verify_report_it() {
    let app = TestApp::spawn().await;
    let root = account(&app, Role::SuperAdmin).await;
    let user = account(&app, Role::User).await;
    for name in ["One", "Two", "Three", "Four"] {
        let res =
            root.client.patch_json(&format!("/api/v1/admin/users/{}", user.id), &json!({"full_name": name})).await;
        assert_eq!(res.status, 200, "{}", res.text);
    }
    let verdict = verify(&root.client).await;
    assert_eq!(verdict, json!({"valid": true, "checked": verdict["checked"], "first_invalid_id": null}));
    let checked = verdict["checked"].as_i64().unwrap();
    assert!(checked >= 4, "{verdict}");

    let chain = root.client.get("/api/v1/admin/audit-logs?limit=100").await.json()["items"].as_array().unwrap().clone();
    let by_seq = |seq: i64| chain.iter().find(|e| e["seq"] == seq).unwrap()["id"].as_str().unwrap().to_owned();
    let edited = execute_unchecked(
        &app.state.db,
        r#"UPDATE audit_log SET details = '{"full_name":{"from":null,"to":"Zero"}}' WHERE seq = 2"#,
    )
    .await
    .unwrap();
    assert_eq!(edited, 1);
    let verdict = verify(&root.client).await;
    assert_eq!(
        (verdict["valid"].as_bool(), verdict["first_invalid_id"].as_str()),
        (Some(false), Some(by_seq(2).as_str()))
    );
    assert_eq!(verdict["checked"], 1);

    // Restoring the text does not help if it differs; deleting a row breaks the next link.
    execute_unchecked(&app.state.db, "DELETE FROM audit_log WHERE seq = 2").await.unwrap();
    let verdict = verify(&root.client).await;
    assert_eq!(
        (verdict["valid"].as_bool(), verdict["first_invalid_id"].as_str()),
        (Some(false), Some(by_seq(3).as_str()))
    );

    // Deleting the newest entries leaves the chain head pointing past the end.
    let fresh = TestApp::spawn().await;
    let root = account(&fresh, Role::SuperAdmin).await;
    let user = account(&fresh, Role::User).await;
    for name in ["A", "B"] {
        root.client.patch_json(&format!("/api/v1/admin/users/{}", user.id), &json!({"full_name": name})).await;
    }
    let newest = root.client.get("/api/v1/admin/audit-logs?limit=2").await.json();
    let top = newest["items"][0]["seq"].as_i64().unwrap();
    execute_unchecked(&fresh.state.db, &format!("DELETE FROM audit_log WHERE seq = {top}")).await.unwrap();
    let verdict = verify(&root.client).await;
    assert_eq!(
        (verdict["valid"].as_bool(), verdict["first_invalid_id"].as_str()),
        (Some(false), newest["items"][1]["id"].as_str())
    );
}

#[tokio::test]
async fn two_instances_writing_at_once_produce_one_valid_chain() {
    let app = TestApp::spawn().await;
    let second = TestApp::builder().sharing(&app).spawn().await;
    let root = account(&app, Role::SuperAdmin).await;
    let targets: Vec<String> = {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(account(&app, Role::User).await.id);
        }
        ids
    };
    let mut writers = Vec::new();
    for (i, instance) in [&app, &second].into_iter().enumerate() {
        for (j, target) in targets.iter().enumerate() {
            for k in 0..3 {
                let client = instance.client.with_token(&root.token);
                let path = format!("/api/v1/admin/users/{target}");
                let name = format!("n{i}{j}{k}");
                writers.push(tokio::spawn(async move {
                    client.patch_json(&path, &json!({"full_name": name})).await.status
                }));
            }
        }
    }
    for writer in writers {
        assert_eq!(writer.await.unwrap(), 200);
    }
    let verdict = verify(&second.client.with_token(&root.token)).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    let total = root.client.get("/api/v1/admin/audit-logs?action=user.updated").await.json()["total"].as_i64().unwrap();
    assert_eq!(total, 24);
    assert!(verdict["checked"].as_i64().unwrap() >= 24);
}

#[tokio::test]
async fn auth_events_job_and_contact_actions_are_recorded() {
    let app = TestApp::builder().env("RATE_LIMIT_AUTH", "100/minute").spawn().await;
    let root = account(&app, Role::SuperAdmin).await;
    let user = account(&app, Role::User).await;

    let ok =
        app.client.post_json("/api/v1/public/auth/login", &json!({"email": user.email, "password": PASSWORD})).await;
    assert_eq!(ok.status, 200);
    let bad = app
        .client
        .request(reqwest::Method::POST, "/api/v1/public/auth/login")
        .header("user-agent", "=HYPERLINK(\"http://evil\")")
        .header("x-request-id", "req-login-failed-1")
        .json(&json!({"email": user.email, "password": "wrong-password"}));
    assert_eq!(app.client.send(bad).await.status, 401);
    let login = &entries(&root.client, "auth.login").await[0];
    assert_eq!(
        (login["actor_id"].as_str(), login["actor_email"].as_str()),
        (Some(user.id.as_str()), Some(user.email.as_str()))
    );
    assert!(login["ip"].is_string());
    let failed = &entries(&root.client, "auth.login_failed").await[0];
    assert!(failed["actor_id"].is_null());
    assert_eq!(
        (failed["details"]["email"].as_str(), failed["request_id"].as_str()),
        (Some(user.email.as_str()), Some("req-login-failed-1"))
    );

    // A reused refresh token revokes its session, and says so in the log.
    let session = ok.json();
    let rotated =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(rotated.status, 200);
    let reused =
        app.client.post_json("/api/v1/public/auth/refresh", &json!({"refresh_token": session["refresh_token"]})).await;
    assert_eq!(reused.status, 401);
    assert_eq!(entries(&root.client, "auth.refresh_reuse_detected").await.len(), 1);

    // A password reset.
    app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": user.email})).await;
    let token = app.mail.wait_for(&user.email, "Reset").await.token();
    let reset = app
        .client
        .post_json(
            "/api/v1/public/auth/password/reset",
            &json!({"token": token, "new_password": "another-good-password"}),
        )
        .await;
    assert_eq!(reset.status, 204, "{}", reset.text);
    let reset_entry = &entries(&root.client, "auth.password_reset").await[0];
    assert_eq!(reset_entry["resource_id"], user.id.as_str());

    // Admin actions on jobs and contact submissions.
    let later = Enqueue { delay: std::time::Duration::from_secs(600), ..Enqueue::default() };
    let job = app.state.jobs.enqueue::<Noop>(&app.state.db, &serde_json::Value::Null, later).await.unwrap().unwrap();
    assert_eq!(root.client.delete(&format!("/api/v1/admin/jobs/{}", job.id)).await.status, 200);
    assert_eq!(root.client.post_json(&format!("/api/v1/admin/jobs/{}/retry", job.id), &json!({})).await.status, 200);
    assert_eq!(entries(&root.client, "job.cancelled").await[0]["resource_id"], job.id.to_string());
    assert_eq!(entries(&root.client, "job.retried").await[0]["details"]["kind"], "noop");
    let refused = root.client.delete(&format!("/api/v1/admin/jobs/{}", uuid::Uuid::now_v7())).await;
    assert_eq!(refused.status, 404);
    assert_eq!(entries(&root.client, "job.cancelled").await.len(), 1, "nothing recorded for what did not happen");

    let new = omnistack_db::contact::NewContactSubmission {
        reference_id: "CNT-AUDIT001",
        name: "Ada",
        email: "ada@example.com",
        message: "Hello there, a demo please.",
        status: "new",
        ..Default::default()
    };
    let submission = omnistack_db::contact::insert_submission(&app.state.db, &new).await.unwrap();
    let triaged =
        root.client.patch_json(&format!("/api/v1/admin/contact/{}", submission.id), &json!({"status": "spam"})).await;
    assert_eq!(triaged.status, 200, "{}", triaged.text);
    let contact = &entries(&root.client, "contact.status_changed").await[0];
    assert_eq!(contact["details"], json!({"reference_id": "CNT-AUDIT001", "from": "new", "to": "spam"}));
    assert_eq!(contact["resource_type"], "contact_submission");

    let by_ip = app.client.get("/api/v1/admin/audit-logs").await;
    assert_refused(&by_ip, 401, "AUTHENTICATION_ERROR");
    assert_eq!(verify(&root.client).await["valid"], true);

    // The CSV export: every entry, formulas defused, quoted cells.
    let csv = root.client.get("/api/v1/admin/audit-logs/export").await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let mut lines = csv.text.lines();
    assert!(lines.next().unwrap().starts_with("id,seq,occurred_at,actor_id"));
    let rows: Vec<&str> = lines.collect();
    let total = root.client.get("/api/v1/admin/audit-logs").await.json()["total"].as_i64().unwrap();
    assert_eq!(rows.len() as i64, total);
    assert!(csv.text.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""), "{}", csv.text);
    assert!(!csv.text.contains(",=HYPERLINK"));
    let only_failed = root.client.get("/api/v1/admin/audit-logs/export?action=auth.login_failed").await;
    assert_eq!(only_failed.text.lines().count(), 2);
}

#[tokio::test]
async fn the_listing_filters_pages_and_refuses_bad_input_and_verify_is_for_super_admins() {
    let app = TestApp::spawn().await;
    let root = account(&app, Role::SuperAdmin).await;
    let admin = account(&app, Role::Admin).await;
    let user = account(&app, Role::User).await;
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    for name in ["a", "b", "c"] {
        admin.client.patch_json(&format!("/api/v1/admin/users/{}", user.id), &json!({"full_name": name})).await;
    }

    let page = admin
        .client
        .get(&format!(
            "/api/v1/admin/audit-logs?actor_id={}&resource_type=user&resource_id={}&limit=2",
            admin.id, user.id
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let page = page.json();
    assert_eq!((page["total"].as_i64(), page["items"].as_array().unwrap().len()), (Some(3), 2));
    assert_eq!(page["items"][0]["details"]["full_name"]["to"], "c", "newest first");
    let since = before.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let windowed =
        admin.client.get(&format!("/api/v1/admin/audit-logs?action=user.updated&since={since}")).await.json();
    assert_eq!(windowed["total"], 3);
    let until = before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let empty = admin.client.get(&format!("/api/v1/admin/audit-logs?action=user.updated&until={until}")).await.json();
    assert_eq!(empty["total"], 0);

    let id = page["items"][0]["id"].as_str().unwrap();
    let one = admin.client.get(&format!("/api/v1/admin/audit-logs/{id}")).await;
    assert_eq!((one.status.as_u16(), one.json()["hash"].as_str().map(str::len)), (200, Some(64)));
    assert_refused(
        &admin.client.get(&format!("/api/v1/admin/audit-logs/{}", uuid::Uuid::now_v7())).await,
        404,
        "NOT_FOUND",
    );
    assert_refused(&admin.client.get("/api/v1/admin/audit-logs/nope").await, 404, "NOT_FOUND");

    for bad in [
        "actor_id=nope",
        "since=yesterday",
        "until=2026-13-01",
        "limit=0",
        "limit=101",
        "skip=-1",
        "action=%00",
        &format!("action={}", "a".repeat(101)),
        &format!("resource_id={}", "r".repeat(201)),
    ] {
        let res = admin.client.get(&format!("/api/v1/admin/audit-logs?{bad}")).await;
        assert_eq!(res.status, 422, "{bad}: {}", res.text);
        let export = admin.client.get(&format!("/api/v1/admin/audit-logs/export?{bad}")).await;
        assert!(export.status == 422 || bad.starts_with("limit") || bad.starts_with("skip"), "{bad}: {}", export.text);
    }

    assert_refused(&admin.client.get("/api/v1/admin/audit-logs/verify").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&user.client.get("/api/v1/admin/audit-logs/verify").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&user.client.get("/api/v1/admin/audit-logs").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&user.client.get("/api/v1/admin/audit-logs/export").await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&app.client.get("/api/v1/admin/audit-logs/export").await, 401, "AUTHENTICATION_ERROR");
    assert_eq!(verify(&root.client).await["valid"], true);
    // Append-only: no route changes or deletes an entry.
    assert_eq!(root.client.delete(&format!("/api/v1/admin/audit-logs/{id}")).await.status, 405);
    assert_eq!(root.client.patch_json(&format!("/api/v1/admin/audit-logs/{id}"), &json!({})).await.status, 405);
}
