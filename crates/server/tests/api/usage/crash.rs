//! The real `omnistack serve` under load: SIGTERM loses no counted request; SIGKILL loses at
//! most the interval not yet flushed, and nothing is ever counted twice (also after a restart).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use omnistack_db::testing::TestDatabase;
use omnistack_db::{Db, DbOptions};
use serde_json::json;
use uuid::Uuid;

use crate::binary::{free_port, omnistack, wait_until_up};

fn start(database: &TestDatabase, flush_seconds: &str) -> (Child, String) {
    let port = free_port().to_string();
    let data_dir = database.data_dir().display().to_string();
    let vars = [
        ("ENVIRONMENT", "test"),
        ("PORT", port.as_str()),
        ("DATA_DIR", data_dir.as_str()),
        ("DATABASE_URL", database.url()),
        ("SECRET_KEY", "usage-crash-test-secret-key-0123456789"),
        ("RATE_LIMIT_ENABLED", "false"),
        ("USAGE_FLUSH_SECONDS", flush_seconds),
        ("SHUTDOWN_TIMEOUT_SECONDS", "10"),
        ("JOBS_SCHEDULE_DAILY_REPORT", "off"),
        ("JOBS_SCHEDULE_CLEANUP", "off"),
    ];
    let child =
        omnistack(database.data_dir(), &vars).arg("serve").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    (child, format!("http://127.0.0.1:{port}"))
}

/// Registers an account on the server at `base`: its id and access token.
async fn register(base: &str) -> (Uuid, String) {
    let body =
        json!({"email": format!("crash-{}@example.com", Uuid::now_v7().simple()), "password": "correct-horse-battery"});
    let res =
        reqwest::Client::new().post(format!("{base}/api/v1/public/auth/register")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let session: serde_json::Value = res.json().await.unwrap();
    (session["user"]["id"].as_str().unwrap().parse().unwrap(), session["access_token"].as_str().unwrap().to_owned())
}

/// Sends `GET /app/users/me` from `workers` tasks until `stop`; counts the 200s.
fn load(
    base: &str,
    token: &str,
    workers: usize,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicI64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|_| {
            let (url, token, stop, ok) =
                (format!("{base}/api/v1/app/users/me"), token.to_owned(), stop.clone(), ok.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(Ordering::SeqCst) {
                    match http.get(&url).bearer_auth(&token).send().await {
                        Ok(res) if res.status() == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            })
        })
        .collect()
}

async fn total(db: &Db, user_id: Uuid) -> i64 {
    let today = omnistack_db::time::now().date_naive();
    let yesterday = today.pred_opt().unwrap();
    omnistack_db::usage::total(db, user_id, "api_requests", yesterday, today).await.unwrap()
}

fn signal(child: &Child, name: &str) {
    assert!(Command::new("kill").args([name, &child.id().to_string()]).status().unwrap().success());
}

#[tokio::test]
async fn sigterm_under_load_loses_no_counted_request() {
    omnistack::install_crypto_provider();
    let database = TestDatabase::create().await;
    let (mut server, base) = start(&database, "3600");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    let (user_id, token) = register(&base).await;
    let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let tasks = load(&base, &token, 8, stop.clone(), ok.clone());
    while ok.load(Ordering::SeqCst) < 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    signal(&server, "-TERM");
    let status = tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    futures::future::join_all(tasks).await;
    assert_eq!(status.code(), Some(0));

    let db = Db::connect(database.url(), &DbOptions::default()).await.unwrap();
    assert_eq!(total(&db, user_id).await, ok.load(Ordering::SeqCst), "every answered request is counted, once");
    db.close().await;
}

#[tokio::test]
async fn sigkill_loses_at_most_the_unflushed_interval_and_never_counts_twice() {
    omnistack::install_crypto_provider();
    let database = TestDatabase::create().await;
    let db = Db::connect(database.url(), &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    let (mut server, base) = start(&database, "1");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    let (user_id, token) = register(&base).await;

    // A first load, then long enough for a flush: all of it is written.
    let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let tasks = load(&base, &token, 4, stop.clone(), ok.clone());
    while ok.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    futures::future::join_all(tasks).await;
    let flushed = ok.load(Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while total(&db, user_id).await < flushed {
        assert!(tokio::time::Instant::now() < deadline, "the periodic flush did not write the first load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(total(&db, user_id).await, flushed);

    // A second load cut by SIGKILL: what was not flushed yet may be lost, nothing counts twice.
    let (stop, more) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicI64::new(0)));
    let tasks = load(&base, &token, 4, stop.clone(), more.clone());
    while more.load(Ordering::SeqCst) < 100 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    stop.store(true, Ordering::SeqCst);
    futures::future::join_all(tasks).await;
    let after_kill = total(&db, user_id).await;
    let answered = flushed + more.load(Ordering::SeqCst);
    assert!((flushed..=answered).contains(&after_kill), "{flushed} ≤ {after_kill} ≤ {answered}");

    // A restarted server adds exactly what it answers.
    let (mut server, base) = start(&database, "1");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    let http = reqwest::Client::new();
    for _ in 0..25 {
        let res = http.get(format!("{base}/api/v1/app/users/me")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    signal(&server, "-TERM");
    tokio::task::spawn_blocking(move || server.wait().unwrap()).await.unwrap();
    assert_eq!(total(&db, user_id).await, after_kill + 25);
    db.close().await;
}

#[tokio::test]
async fn omnistack_worker_writes_the_jobs_it_counted_when_stopped() {
    omnistack::install_crypto_provider();
    let database = TestDatabase::create().await;
    let db = Db::connect(database.url(), &DbOptions::default()).await.unwrap();
    db.migrate().await.unwrap();
    let user =
        omnistack_db::users::NewUser { email: Some("worker-usage@example.com"), role: "user", ..Default::default() };
    let ada = omnistack_db::users::insert_user(&db, &user).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let new = omnistack_db::jobs::NewJob {
            kind: "noop",
            payload: &json!({}),
            max_attempts: 3,
            run_at: omnistack_db::time::now(),
            unique_key: None,
            user_id: Some(ada.id),
            traceparent: None,
        };
        ids.push(omnistack_db::jobs::enqueue(&db, &new).await.unwrap().unwrap().id);
    }
    let worker = {
        let port = free_port().to_string();
        let data_dir = database.data_dir().display().to_string();
        let vars = [
            ("ENVIRONMENT", "test"),
            ("PORT", port.as_str()),
            ("DATA_DIR", data_dir.as_str()),
            ("DATABASE_URL", database.url()),
            ("SECRET_KEY", "usage-crash-test-secret-key-0123456789"),
            ("USAGE_FLUSH_SECONDS", "3600"),
            ("JOBS_POLL_INTERVAL_MS", "50"),
            ("JOBS_SCHEDULE_DAILY_REPORT", "off"),
            ("JOBS_SCHEDULE_CLEANUP", "off"),
        ];
        omnistack(database.data_dir(), &vars).arg("worker").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for id in ids {
        while omnistack_db::jobs::find_job(&db, id).await.unwrap().unwrap().state()
            != omnistack_db::jobs::JobState::Succeeded
        {
            assert!(tokio::time::Instant::now() < deadline, "the worker did not run the jobs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let today = omnistack_db::time::now().date_naive();
    assert_eq!(omnistack_db::usage::total(&db, ada.id, "background_jobs", today, today).await.unwrap(), 0);
    signal(&worker, "-TERM");
    let status = tokio::task::spawn_blocking(move || {
        let mut worker = worker;
        worker.wait().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(omnistack_db::usage::total(&db, ada.id, "background_jobs", today, today).await.unwrap(), 3);
    db.close().await;
}
