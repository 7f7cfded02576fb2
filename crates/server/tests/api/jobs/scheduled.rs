//! The scheduled kinds: the daily report mails every super admin; the clean-up removes what
//! has expired. Sign-up mail goes through jobs.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::{Cleanup, DailyReport, Scheduled};
use omnistack_db::jobs::{JobState, find_job};
use omnistack_db::time;
use omnistack_testkit::TestApp;

use super::wait_for_state;

#[tokio::test]
async fn the_daily_report_mails_every_super_admin_once() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in_client().await;
    let root = session["user"]["email"].as_str().unwrap().to_owned();
    omnistack::users::set_role_by_email(&app.state.db, &root, omnistack::auth::Role::SuperAdmin).await.unwrap();
    app.signed_in_client().await;
    let tick = Scheduled { tick: time::now() };
    let key = || Enqueue { unique_key: Some("test:daily".into()), ..Enqueue::default() };
    let job = app.state.jobs.enqueue::<DailyReport>(&app.state.db, &tick, key()).await.unwrap().unwrap();
    let done = wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(done.output.unwrap().0["recipients"], 1);
    let mail = app.mail.wait_for(&root, "daily report").await;
    let body = mail.body();
    assert!(body.lines().any(|line| line.starts_with("Sign-ups:") && line.trim_end().ends_with('2')), "{body}");
    assert_eq!(app.mail.messages().iter().filter(|m| m.subject().contains("daily report")).count(), 1);
}

#[tokio::test]
async fn the_clean_up_reports_what_it_removed() {
    let app = TestApp::spawn().await;
    let tick = Scheduled { tick: time::now() };
    let job = app.state.jobs.enqueue::<Cleanup>(&app.state.db, &tick, Enqueue::default()).await.unwrap().unwrap();
    let done = wait_for_state(&app, job.id, JobState::Succeeded, Duration::from_secs(10)).await;
    let removed = done.output.unwrap().0;
    for what in ["sessions", "action_tokens", "exports", "jobs", "projects"] {
        assert!(removed[what].is_u64(), "{what} in {removed}");
    }
    assert!(find_job(&app.state.db, job.id).await.unwrap().is_some(), "a fresh job is kept");
}

#[tokio::test]
async fn registration_mails_a_welcome_and_a_verification_through_jobs() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    let welcome = app.mail.wait_for(email, "Welcome").await;
    let verify = app.mail.wait_for(email, "Confirm").await;
    assert!(verify.body().contains("verify-email?token="), "{}", verify.body());
    let (welcome_id, verify_id) = (welcome.header("Message-ID").unwrap(), verify.header("Message-ID").unwrap());
    assert_ne!(welcome_id, verify_id, "each message is its own job");
}

#[tokio::test]
async fn a_sent_verification_email_leaves_no_usable_token_in_its_job() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    let mail = app.mail.wait_for(email, "Confirm").await;
    let token = mail.token();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let emails = omnistack_db::jobs::JobFilter { state: Some(JobState::Succeeded), kind: Some("email") };
    loop {
        let (jobs, _) = omnistack_db::jobs::list_jobs(&app.state.db, emails, 0, 10).await.unwrap();
        let payloads: Vec<String> = jobs.iter().map(|job| job.payload.0.to_string()).collect();
        if payloads.iter().any(|p| p.contains("verify-email?token=[REDACTED]")) {
            assert!(payloads.iter().all(|p| !p.contains(&token)), "the token is still stored: {payloads:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the job's payload was not redacted: {payloads:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
