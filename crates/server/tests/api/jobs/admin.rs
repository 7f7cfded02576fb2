//! `/api/v1/admin/jobs`: admins list, inspect, retry and cancel jobs; nobody else can.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::Noop;
use omnistack_db::jobs::JobState;
use omnistack_testkit::TestApp;
use serde_json::json;

use super::{Flaky, admin_client, enqueue, wait_for_state};

#[tokio::test]
async fn a_dead_job_is_retried_by_an_admin_and_then_succeeds() {
    let flaky = Flaky { failures: 2, ..Flaky::default() };
    let app = TestApp::builder()
        .env("JOBS_RETRY_BASE_SECONDS", "0")
        .env("JOBS_MAX_ATTEMPTS", "2")
        .job_kind(flaky.clone())
        .spawn()
        .await;
    let admin = admin_client(&app).await;
    let job = enqueue::<Flaky>(&app, Enqueue::default()).await;
    wait_for_state(&app, job.id, JobState::Dead, Duration::from_secs(10)).await;

    let listed = admin.get("/api/v1/admin/jobs?state=dead&kind=test_flaky").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let body = listed.json();
    assert_eq!((body["total"].as_i64(), body["skip"].as_i64(), body["limit"].as_i64()), (Some(1), Some(0), Some(20)));
    let item = &body["items"][0];
    assert_eq!((item["id"].as_str(), item["state"].as_str()), (Some(job.id.to_string().as_str()), Some("dead")));
    assert_eq!(item["last_error"], "failure 2 of 2");
    assert!(item.get("payload").is_none(), "payloads only on the single-job route");

    let retried = admin.post_json(&format!("/api/v1/admin/jobs/{}/retry", job.id), &json!({})).await;
    assert_eq!(retried.status, 200, "{}", retried.text);
    assert_eq!(retried.json()["state"], "queued");
    let done = wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(flaky.runs_of(job.id), 3);
    assert_eq!(done.attempts, 1, "a retry starts a fresh set of attempts");
    let again = admin.post_json(&format!("/api/v1/admin/jobs/{}/retry", job.id), &json!({})).await;
    assert_eq!((again.status.as_u16(), again.error_code().as_str()), (409, "CONFLICT"));
}

#[tokio::test]
async fn an_admin_cancels_a_queued_job_but_not_a_finished_one() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let admin = admin_client(&app).await;
    let later = enqueue::<Noop>(&app, Enqueue { delay: Duration::from_secs(600), ..Enqueue::default() }).await;
    let cancelled = admin.delete(&format!("/api/v1/admin/jobs/{}", later.id)).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json()["state"], "cancelled");
    let twice = admin.delete(&format!("/api/v1/admin/jobs/{}", later.id)).await;
    assert_eq!((twice.status.as_u16(), twice.error_code().as_str()), (409, "CONFLICT"));
    let detail = admin.get(&format!("/api/v1/admin/jobs/{}", later.id)).await.json();
    assert_eq!((detail["kind"].as_str(), detail["state"].as_str()), (Some("noop"), Some("cancelled")));
    assert!(detail["finished_at"].is_string());
}

#[tokio::test]
async fn job_stats_count_every_state_and_kind() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let admin = admin_client(&app).await;
    for _ in 0..2 {
        enqueue::<Noop>(&app, Enqueue::default()).await;
    }
    let stats = admin.get("/api/v1/admin/jobs/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    let stats = stats.json();
    for state in ["queued", "running", "succeeded", "failed", "dead", "cancelled"] {
        assert!(stats["by_state"][state].is_i64(), "{state} in {stats}");
    }
    assert_eq!(stats["by_kind"]["noop"]["queued"], 2);
}

#[tokio::test]
async fn a_queued_reset_email_shows_its_link_without_a_usable_token() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let admin = admin_client(&app).await;
    let (_, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    let res = app.client.post_json("/api/v1/public/auth/password/forgot", &json!({"email": email})).await;
    assert!(res.status.as_u16() < 300, "{}", res.text);
    let page = admin.get("/api/v1/admin/jobs?kind=email&limit=100").await.json();
    let ids: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_owned()).collect();
    let mut found = false;
    for id in ids {
        let detail = admin.get(&format!("/api/v1/admin/jobs/{id}")).await.json();
        if detail["payload"]["template"] == "password_reset" {
            let link = detail["payload"]["data"]["link"].as_str().unwrap();
            assert!(link.ends_with("reset-password?token=[REDACTED]"), "{link}");
            found = true;
        }
    }
    assert!(found, "the reset email is queued");
}

#[tokio::test]
async fn job_routes_refuse_outsiders_users_and_bad_input() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let job = enqueue::<Noop>(&app, Enqueue::default()).await;
    let (user, _) = app.signed_in_client().await;
    let admin = admin_client(&app).await;
    let paths = [
        ("GET", "/api/v1/admin/jobs".to_owned()),
        ("GET", "/api/v1/admin/jobs/stats".to_owned()),
        ("GET", format!("/api/v1/admin/jobs/{}", job.id)),
        ("POST", format!("/api/v1/admin/jobs/{}/retry", job.id)),
        ("DELETE", format!("/api/v1/admin/jobs/{}", job.id)),
    ];
    for (method, path) in &paths {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let anonymous = app.client.send(app.client.request(method.clone(), path).json(&json!({}))).await;
        assert_eq!(
            (anonymous.status.as_u16(), anonymous.error_code().as_str()),
            (401, "AUTHENTICATION_ERROR"),
            "{path}"
        );
        let refused = user.send(user.request(method, path).json(&json!({}))).await;
        assert_eq!((refused.status.as_u16(), refused.error_code().as_str()), (403, "AUTHORIZATION_ERROR"), "{path}");
    }
    for bad in ["/api/v1/admin/jobs/not-a-uuid", "/api/v1/admin/jobs/0190f0a4-0000-7000-8000-000000000000"] {
        assert_eq!(admin.get(bad).await.status, 404, "{bad}");
    }
    for query in ["state=exploded", "limit=0", "limit=101", "skip=-1", "limit=abc", "state=%00"] {
        let res = admin.get(&format!("/api/v1/admin/jobs?{query}")).await;
        assert_eq!(res.status, 422, "{query}: {}", res.text);
        assert_eq!(res.error_code(), "VALIDATION_ERROR");
    }
    let long_kind = "k".repeat(101);
    assert_eq!(admin.get(&format!("/api/v1/admin/jobs?kind={long_kind}")).await.status, 422);
    let retry_queued = admin.post_json(&format!("/api/v1/admin/jobs/{}/retry", job.id), &json!({})).await;
    assert_eq!(retry_queued.status, 409, "a queued job is not retried");
}
