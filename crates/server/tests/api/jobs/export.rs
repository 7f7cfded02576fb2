//! `POST /api/v1/app/users/me/export`: a job builds the export; the owner polls it, is told on
//! its socket and by email; nobody else can read it.

use std::time::{Duration, Instant};

use omnistack_testkit::{TestApp, TestClient, WsClient};
use serde_json::{Value, json};

async fn poll_export(client: &TestClient, job_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = client.get(&format!("/api/v1/app/users/me/export/{job_id}")).await;
        match res.status.as_u16() {
            200 => return res.json(),
            202 => assert_eq!(res.json()["job_id"], job_id),
            other => panic!("unexpected {other}: {}", res.text),
        }
        assert!(Instant::now() < deadline, "the export never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_export_is_built_by_a_job_pushed_to_the_owner_and_mailed() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let token = session["access_token"].as_str().unwrap();
    let user_id = session["user"]["id"].as_str().unwrap();
    let email = session["user"]["email"].as_str().unwrap();
    client.post_json("/api/v1/app/projects", &json!({"name": "alpha", "description": "first"})).await;
    client.post_json("/api/v1/app/projects", &json!({"name": "beta"})).await;
    let (mut socket, _) = WsClient::connected(&app.ws_url(&format!("/api/v1/app/ws?token={token}"))).await;

    let started = client.post_json("/api/v1/app/users/me/export", &json!({})).await;
    assert_eq!(started.status, 202, "{}", started.text);
    let job_id = started.json()["job_id"].as_str().unwrap().to_owned();
    let again = client.post_json("/api/v1/app/users/me/export", &json!({})).await;
    assert_eq!(again.json()["job_id"], job_id.as_str(), "one export per hour");

    let export = poll_export(&client, &job_id).await;
    assert_eq!(export["account"]["id"], user_id);
    assert_eq!(export["account"]["email"], email);
    let names: Vec<&str> = export["projects"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert!(export["account"].get("hashed_password").is_none());

    let ready = socket.next_of_type_within("export.ready", Duration::from_secs(5)).await;
    assert_eq!(ready["data"]["job_id"], job_id.as_str());
    assert_eq!(ready["channel"], format!("user:{user_id}"));
    let mail = app.mail.wait_for(email, "export").await;
    assert!(mail.body().contains(&job_id), "{}", mail.body());
}

#[tokio::test]
async fn another_account_cannot_read_an_export() {
    let app = TestApp::spawn().await;
    let (owner, _) = app.signed_in_client().await;
    let (other, _) = app.signed_in_client().await;
    let job_id =
        owner.post_json("/api/v1/app/users/me/export", &json!({})).await.json()["job_id"].as_str().unwrap().to_owned();
    poll_export(&owner, &job_id).await;
    let path = format!("/api/v1/app/users/me/export/{job_id}");
    let res = other.get(&path).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (404, "NOT_FOUND"));
    assert_eq!(app.client.get(&path).await.status, 401);
    for bad in ["not-a-uuid", "0190f0a4-0000-7000-8000-000000000000", "%00"] {
        assert_eq!(owner.get(&format!("/api/v1/app/users/me/export/{bad}")).await.status, 404, "{bad}");
    }
    // Another kind of job is not an export, even for its own account.
    let stranger =
        app.state.jobs.enqueue::<omnistack::jobs::kinds::Noop>(&app.state.db, &Value::Null, Default::default());
    let job = stranger.await.unwrap().unwrap();
    assert_eq!(owner.get(&format!("/api/v1/app/users/me/export/{}", job.id)).await.status, 404);
}

#[tokio::test]
async fn a_deactivated_account_cannot_export() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    assert_eq!(client.delete("/api/v1/app/users/me").await.status, 204);
    let res = client.post_json("/api/v1/app/users/me/export", &json!({})).await;
    assert!(res.status.as_u16() == 401 || res.status.as_u16() == 403, "{}", res.status);
}

#[tokio::test]
async fn asking_again_after_a_failed_export_runs_it_again() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").spawn().await;
    let (client, _) = app.signed_in_client().await;
    let job_id =
        client.post_json("/api/v1/app/users/me/export", &json!({})).await.json()["job_id"].as_str().unwrap().to_owned();
    let id = uuid::Uuid::parse_str(&job_id).unwrap();
    omnistack_db::jobs::cancel_job(&app.state.db, id).await.unwrap().unwrap();
    let gone = client.get(&format!("/api/v1/app/users/me/export/{job_id}")).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let again = client.post_json("/api/v1/app/users/me/export", &json!({})).await;
    assert_eq!((again.status.as_u16(), again.json()["job_id"].as_str()), (202, Some(job_id.as_str())));
    let job = omnistack_db::jobs::find_job(&app.state.db, id).await.unwrap().unwrap();
    assert_eq!(job.state(), omnistack_db::jobs::JobState::Queued);
    assert_eq!(client.get(&format!("/api/v1/app/users/me/export/{job_id}")).await.status, 202);
}
