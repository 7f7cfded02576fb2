//! A server killed with SIGKILL while jobs are queued and running: after a restart every job
//! is done, and every email was delivered under one Message-ID per job (a job repeated after
//! the crash is recognisable as the same message).

use std::collections::HashSet;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use omnistack::mail::{MailMessage, Notification};
use omnistack_db::jobs::{self, JobFilter, JobState, NewJob};
use omnistack_db::testing::TestDatabase;
use omnistack_db::{Db, DbOptions, time};
use omnistack_testkit::MailSink;

use crate::binary::{free_port, omnistack, wait_until_up};

const JOBS: usize = 300;

fn start(database: &TestDatabase, sink: &MailSink, command: &str) -> (Child, String) {
    let port = free_port().to_string();
    let smtp_port = sink.port.to_string();
    let data_dir = database.data_dir().display().to_string();
    let vars = [
        ("ENVIRONMENT", "test"),
        ("PORT", port.as_str()),
        ("DATA_DIR", data_dir.as_str()),
        ("DATABASE_URL", database.url()),
        ("SECRET_KEY", "crash-test-secret-key-0123456789abcdef"),
        ("EMAIL_PROVIDER", "smtp"),
        ("SMTP_HOST", "127.0.0.1"),
        ("SMTP_PORT", smtp_port.as_str()),
        ("SMTP_TLS", "false"),
        ("JOBS_WORKERS", "4"),
        ("JOBS_LEASE_SECONDS", "2"),
        ("JOBS_POLL_INTERVAL_MS", "50"),
        ("JOBS_SCHEDULE_DAILY_REPORT", "off"),
        ("JOBS_SCHEDULE_CLEANUP", "off"),
        ("JOBS_SCHEDULE_FILES_CLEANUP", "off"),
    ];
    let child =
        omnistack(database.data_dir(), &vars).arg(command).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    (child, format!("http://127.0.0.1:{port}/api/v1/public/health"))
}

async fn email_job(db: &Db, n: usize) -> uuid::Uuid {
    let data = Notification { title: format!("Notice {n}"), body: "Queued before the crash.".into(), link: None };
    let payload = serde_json::to_value(MailMessage::new(format!("user{n}@example.com"), &data)).unwrap();
    let new = NewJob {
        kind: "email",
        payload: &payload,
        max_attempts: 5,
        run_at: time::now(),
        unique_key: None,
        user_id: None,
        traceparent: None,
    };
    jobs::enqueue(db, &new).await.unwrap().unwrap().id
}

async fn count(db: &Db, state: JobState) -> i64 {
    jobs::list_jobs(db, JobFilter { state: Some(state), kind: None }, 0, 1).await.unwrap().1
}

#[tokio::test]
async fn killed_with_jobs_queued_and_running_a_restarted_server_finishes_each_once() {
    omnistack::install_crypto_provider();
    let database = TestDatabase::create().await;
    let db = Db::connect(database.url(), &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    let sink = MailSink::start().await;
    let mut ids = HashSet::new();
    for n in 0..JOBS {
        ids.insert(email_job(&db, n).await);
    }

    let (mut first, health) = start(&database, &sink, "serve");
    wait_until_up(&health).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while sink.messages().len() < JOBS / 3 {
        assert!(Instant::now() < deadline, "the first server sent {} emails", sink.messages().len());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let (running, queued) = (count(&db, JobState::Running).await, count(&db, JobState::Queued).await);
    assert!(queued > 0, "jobs were still queued at the kill");

    let (mut second, health) = start(&database, &sink, "serve");
    wait_until_up(&health).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&db, JobState::Succeeded).await < JOBS as i64 {
        assert!(Instant::now() < deadline, "after the restart not every job finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let message_ids: HashSet<String> =
        sink.messages().iter().map(|mail| mail.header("Message-ID").expect("a Message-ID")).collect();
    assert_eq!(message_ids.len(), JOBS, "one message per job ({running} were running at the kill)");
    for id in &ids {
        assert!(message_ids.iter().any(|m| m.contains(&id.to_string())), "job {id} delivered");
    }
    assert_eq!(count(&db, JobState::Dead).await + count(&db, JobState::Failed).await, 0);
    db.close().await;
}

#[tokio::test]
async fn omnistack_worker_runs_jobs_without_the_api_and_stops_cleanly_on_sigterm() {
    omnistack::install_crypto_provider();
    let database = TestDatabase::create().await;
    let db = Db::connect(database.url(), &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    let sink = MailSink::start().await;
    let (worker, health) = start(&database, &sink, "worker");
    let id = email_job(&db, 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while jobs::find_job(&db, id).await.unwrap().unwrap().state() != JobState::Succeeded {
        assert!(Instant::now() < deadline, "the worker did not run the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sink.find("user1@example.com", "Notice 1").is_some());
    assert!(reqwest::get(&health).await.is_err(), "a worker serves no HTTP");
    let term = std::process::Command::new("kill").args(["-TERM", &worker.id().to_string()]).status().unwrap();
    assert!(term.success());
    let out = worker.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    db.close().await;
}
