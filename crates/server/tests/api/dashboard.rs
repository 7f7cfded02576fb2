//! `GET /api/v1/admin/dashboard/stats` and the `admin:dashboard` realtime channel.

use std::time::Duration;

use omnistack::jobs::Enqueue;
use omnistack::jobs::kinds::Noop;
use omnistack_testkit::TestApp;
use serde_json::{Value, json};

use crate::jobs::{admin_client, enqueue};
use crate::realtime::{account, admin_account, assert_error, connect};

const STATS: &str = "/api/v1/admin/dashboard/stats";

#[tokio::test]
async fn the_dashboard_counts_accounts_subscriptions_jobs_requests_and_reports_health() {
    let app = TestApp::builder().env("JOBS_WORKERS", "0").routes(crate::probes::routes()).spawn().await;
    let admin = admin_client(&app).await;
    let (_, session) = app.signed_in_client().await;
    let paid = session["user"]["id"].as_str().unwrap().parse().unwrap();
    omnistack_db::users::set_subscription(&app.state.db, paid, "pro", "active").await.unwrap();
    let (gone, _) = app.signed_in_client().await;
    assert_eq!(gone.delete("/api/v1/app/users/me").await.status, 204);
    enqueue::<Noop>(&app, Enqueue::default()).await;
    assert_eq!(app.client.get("/probe/panic").await.status, 500);
    let event = omnistack_db::webhook_events::NewWebhookEvent {
        provider: "clerk",
        event_id: "msg_1",
        event_type: "user.created",
        headers: "{}",
        payload: "{}",
    };
    omnistack_db::webhook_events::insert_event(&app.state.db, &event).await.unwrap();

    let res = admin.get(STATS).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let stats = res.json();
    assert_eq!(stats["users"], json!({"total": 3, "active": 2, "inactive": 1, "admins": 1, "new_7d": 3, "new_30d": 3}));
    assert_eq!(stats["subscriptions"]["by_plan"], json!({"free": 2, "pro": 1}));
    assert_eq!(stats["subscriptions"]["by_status"], json!({"inactive": 2, "active": 1}));
    let by_state = &stats["jobs"]["by_state"];
    assert!(by_state["queued"].as_i64().unwrap() >= 1, "{by_state}");
    assert_eq!(by_state["dead"], 0, "every state is listed");
    assert_eq!(stats["webhooks"]["by_provider"], json!({"clerk": {"received": 1}}));
    let requests = &stats["requests"];
    let (total, errors) = (requests["total"].as_u64().unwrap(), requests["errors_5xx"].as_u64().unwrap());
    assert!(total >= 5 && errors == 1, "{requests}");
    let rate = requests["error_rate"].as_f64().unwrap();
    assert!((rate - errors as f64 / total as f64).abs() < 1e-9, "{requests}");
    assert_eq!(stats["realtime"], json!({"connections": 0, "users_online": 0}));
    let system = &stats["system"];
    assert_eq!(system["database"]["status"], "healthy");
    assert!(system["database"]["latency_ms"].as_f64().is_some());
    if omnistack_testkit::redis_url().is_some() {
        assert_eq!(system["redis"]["status"], "healthy", "{system}");
    } else {
        assert_eq!(system["redis"], "not_configured");
    }
    assert_eq!(system["version"], env!("CARGO_PKG_VERSION"));
    assert!(system["uptime_seconds"].as_u64().is_some());

    // A reading is served for 5 s; then it is served while a new one is taken in the background.
    let again = admin.get(STATS).await.json();
    assert_eq!(again["requests"], stats["requests"], "the cached reading");
    tokio::time::sleep(omnistack::admin::dashboard::CACHE_TTL + Duration::from_millis(100)).await;
    let stale = admin.get(STATS).await.json();
    assert_eq!(stale["requests"], stats["requests"], "served while the new reading is taken");
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let later = admin.get(STATS).await.json();
        if later["requests"]["total"].as_u64().unwrap() > total {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no new reading: {later}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_burst_of_dashboards_takes_one_reading() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let burst = (0..16).map(|_| {
        let admin = admin.clone();
        tokio::spawn(async move { admin.get(STATS).await.json() })
    });
    let mut readings: Vec<Value> = Vec::new();
    for reading in burst {
        readings.push(reading.await.unwrap());
    }
    assert!(readings.windows(2).all(|w| w[0] == w[1]), "every request got the same reading");
}

#[tokio::test]
async fn only_admins_see_the_dashboard() {
    let app = TestApp::spawn().await;
    let anonymous = app.client.get(STATS).await;
    assert_eq!((anonymous.status.as_u16(), anonymous.error_code().as_str()), (401, "AUTHENTICATION_ERROR"));
    let (user, _) = app.signed_in_client().await;
    let res = user.get(STATS).await;
    assert_eq!((res.status.as_u16(), res.error_code().as_str()), (403, "AUTHORIZATION_ERROR"));
    let admin = admin_client(&app).await;
    assert_eq!(admin.get(STATS).await.status, 200);
    let email = admin.get("/api/v1/app/users/me").await.json()["email"].as_str().unwrap().to_owned();
    omnistack::users::set_role_by_email(&app.state.db, &email, omnistack::auth::Role::User).await.unwrap();
    assert_eq!(admin.get(STATS).await.status, 403, "a demoted admin is refused at once");
}

#[tokio::test]
async fn admins_subscribed_to_admin_dashboard_receive_the_stats_every_five_seconds() {
    let app = TestApp::spawn().await;
    let (user_token, _) = account(&app).await;
    let mut user = connect(&app, &user_token).await;
    user.send(json!({"type": "subscribe", "channel": "admin:dashboard"})).await;
    assert_error(&user.next().await, "FORBIDDEN");

    let (admin_token, _) = admin_account(&app).await;
    let mut admin = connect(&app, &admin_token).await;
    admin.subscribe("admin:dashboard").await;
    let first = admin.next_of_type_within("dashboard.stats", Duration::from_secs(6)).await;
    assert_eq!(first["channel"], "admin:dashboard");
    let data = &first["data"];
    assert_eq!(data["users"]["admins"], 1, "{data}");
    assert_eq!(data["realtime"]["connections"], 2, "{data}");
    for key in ["subscriptions", "jobs", "requests", "system"] {
        assert!(data[key].is_object(), "{key} in {data}");
    }
    let second = admin.next_of_type_within("dashboard.stats", Duration::from_secs(6)).await;
    assert_eq!(second["type"], "dashboard.stats");
}
