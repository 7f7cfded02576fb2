//! `/api/v1/app/usage/…` and `/api/v1/admin/usage/…`: reports read from the per-day
//! aggregates, exact; levels reported as levels; bad input 422; each account sees only its own.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use omnistack_db::usage::{self, UsageDelta};
use omnistack_testkit::{TestApp, TestClient};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::jobs::admin_client;

/// A signed-in account: its client and id.
pub async fn member(app: &TestApp) -> (TestClient, Uuid) {
    let (client, session) = app.signed_in_client().await;
    (client, session["user"]["id"].as_str().unwrap().parse().unwrap())
}

/// Adds `value` of `metric` to `user_id` on `day`, split by `dimensions`.
pub async fn seed(app: &TestApp, user_id: Uuid, metric: &str, day: NaiveDate, value: i64, dimensions: &[(&str, &str)]) {
    let delta = UsageDelta {
        user_id,
        metric: metric.into(),
        day,
        value,
        dimensions: dimensions.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
    };
    let mut tx = app.state.db.begin().await.unwrap();
    usage::add(&mut tx, &[delta]).await.unwrap();
    tx.commit().await.unwrap();
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap()
}

fn metric<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|m| m["metric"] == name).unwrap_or_else(|| panic!("no {name} in {list}"))
}

#[tokio::test]
async fn the_catalogue_lists_every_metric_with_its_kind() {
    let app = TestApp::spawn().await;
    let (client, _) = member(&app).await;
    let res = client.get("/api/v1/app/usage/metrics").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let metrics = res.json()["metrics"].as_array().unwrap().clone();
    assert_eq!(metrics.len(), 9);
    let find = |name: &str| metrics.iter().find(|m| m["name"] == name).unwrap().clone();
    assert_eq!(find("ai_tokens")["limit_kind"], "hard");
    assert_eq!(find("api_requests")["limit_kind"], "soft");
    assert_eq!(find("storage_bytes")["aggregation"], "level");
    assert_eq!(find("storage_bytes")["unit"], "bytes");
    assert_eq!(find("emails_sent")["custom"], false);
}

#[tokio::test]
async fn the_current_period_shows_totals_limits_and_percentages() {
    let app = TestApp::builder().env("USAGE_PLAN_LIMITS", r#"{"free":{"ai_requests":40}}"#).spawn().await;
    let (client, id) = member(&app).await;
    let today = today();
    seed(&app, id, "ai_requests", today, 10, &[]).await;
    seed(&app, id, "api_requests", today, 250, &[]).await;
    // Last month's usage does not count in this period; a level carries over.
    let last_month = first_of_month(today) - Duration::days(1);
    seed(&app, id, "ai_requests", last_month, 1_000, &[]).await;
    seed(&app, id, "storage_bytes", last_month, 60_000_000, &[]).await;
    seed(&app, id, "storage_bytes", today, -10_000_000, &[]).await;

    let res = client.get("/api/v1/app/usage/current-period").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["period"], first_of_month(today).format("%Y-%m").to_string());
    assert_eq!(body["start"], first_of_month(today).to_string());
    assert_eq!(body["plan"], "free");
    let last = (first_of_month(today) + chrono::Months::new(1)) - Duration::days(1);
    assert_eq!(body["end"], last.to_string());
    assert_eq!(body["days_remaining"], (last - today).num_days() + 1);
    let metrics = &body["metrics"];
    assert_eq!(metric(metrics, "ai_requests")["used"], 10);
    assert_eq!(metric(metrics, "ai_requests")["limit"], 40);
    assert_eq!(metric(metrics, "ai_requests")["percent_used"], 25.0);
    assert_eq!(metric(metrics, "api_requests")["percent_used"], 25.0, "the default 1,000");
    assert_eq!(metric(metrics, "storage_bytes")["used"], 50_000_000, "a level: held now");
    assert_eq!(metric(metrics, "storage_bytes")["percent_used"], 50.0);
    assert_eq!(metric(metrics, "emails_sent")["used"], 0);
    assert_eq!(metric(metrics, "emails_sent")["limit"], Value::Null, "unlimited");
}

#[tokio::test]
async fn a_summary_covers_any_range_of_days_exactly() {
    let app = TestApp::spawn().await;
    let (client, id) = member(&app).await;
    let (_, other) = member(&app).await;
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    seed(&app, id, "api_requests", day("2025-02-28"), 7, &[]).await;
    seed(&app, id, "api_requests", day("2025-03-01"), 11, &[]).await;
    seed(&app, id, "api_requests", day("2025-03-31"), 13, &[]).await;
    seed(&app, id, "api_requests", day("2025-04-01"), 17, &[]).await;
    seed(&app, id, "storage_bytes", day("2025-01-10"), 100, &[]).await;
    seed(&app, id, "storage_bytes", day("2025-03-05"), -30, &[]).await;
    seed(&app, other, "api_requests", day("2025-03-02"), 1_000, &[]).await;

    let res = client.get("/api/v1/app/usage/summary?from=2025-03-01&to=2025-03-31").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(
        (body["from"].as_str(), body["to"].as_str(), body["days"].as_i64()),
        (Some("2025-03-01"), Some("2025-03-31"), Some(31))
    );
    assert_eq!(metric(&body["metrics"], "api_requests")["total"], 24, "another account's usage is not counted");
    assert_eq!(metric(&body["metrics"], "storage_bytes")["total"], 70, "the level at the end of the range");
    assert_eq!(metric(&body["metrics"], "storage_bytes")["aggregation"], "level");
    let one_day = client.get("/api/v1/app/usage/summary?from=2025-02-28&to=2025-02-28").await.json();
    assert_eq!(metric(&one_day["metrics"], "api_requests")["total"], 7);
    let year = client.get("/api/v1/app/usage/summary?from=2024-05-01&to=2025-05-01").await;
    assert_eq!(year.status, 200, "366 days: {}", year.text);
    assert_eq!(metric(&year.json()["metrics"], "api_requests")["total"], 48);
}

#[tokio::test]
async fn the_daily_series_is_zero_filled_and_levels_carry_over() {
    let app = TestApp::spawn().await;
    let (client, id) = member(&app).await;
    let today = today();
    seed(&app, id, "file_uploads", today, 4, &[]).await;
    seed(&app, id, "file_uploads", today - Duration::days(2), 9, &[]).await;
    seed(&app, id, "storage_bytes", today - Duration::days(10), 50, &[]).await;
    seed(&app, id, "storage_bytes", today - Duration::days(1), 100, &[]).await;
    seed(&app, id, "storage_bytes", today, -30, &[]).await;

    let res = client.get("/api/v1/app/usage/daily?metric=file_uploads&days=3").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    let values: Vec<i64> = body["days"].as_array().unwrap().iter().map(|d| d["value"].as_i64().unwrap()).collect();
    assert_eq!(values, vec![9, 0, 4]);
    assert_eq!(body["days"][2]["date"], today.to_string());
    assert_eq!(body["from"], (today - Duration::days(2)).to_string());

    let storage = client.get("/api/v1/app/usage/daily?metric=storage_bytes&days=3").await.json();
    let levels: Vec<i64> = storage["days"].as_array().unwrap().iter().map(|d| d["value"].as_i64().unwrap()).collect();
    assert_eq!(levels, vec![50, 150, 120]);
    let default = client.get("/api/v1/app/usage/daily?metric=file_uploads").await.json();
    assert_eq!(default["days"].as_array().unwrap().len(), 30);
}

#[tokio::test]
async fn a_breakdown_lists_the_top_twenty_values_and_the_rest_as_other() {
    let app = TestApp::spawn().await;
    let (client, id) = member(&app).await;
    let today = today();
    for n in 1..=25_i64 {
        let endpoint = format!("/api/v1/app/r{n:02}");
        seed(&app, id, "api_requests", today, n, &[("endpoint", &endpoint)]).await;
    }
    seed(&app, id, "ai_tokens", today, 70, &[("model", "gpt"), ("provider", "openai")]).await;
    seed(&app, id, "ai_tokens", today, 30, &[("model", "claude"), ("provider", "anthropic")]).await;

    let res = client.get("/api/v1/app/usage/breakdown?metric=api_requests&days=1").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["dimension"], "endpoint");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0], json!({"value": "/api/v1/app/r25", "total": 25}));
    assert_eq!(body["other"], 1 + 2 + 3 + 4 + 5);
    assert_eq!(body["total"], 25 * 26 / 2);

    let models = client.get("/api/v1/app/usage/breakdown?metric=ai_tokens&days=7").await.json();
    assert_eq!(models["dimension"], "model", "{models}");
    assert_eq!(models["dimensions"], json!(["model", "provider"]));
    let providers = client.get("/api/v1/app/usage/breakdown?metric=ai_tokens&dimension=provider").await.json();
    assert_eq!(providers["items"][0], json!({"value": "openai", "total": 70}));
    assert_eq!(providers["other"], 0);
    let none = client.get("/api/v1/app/usage/breakdown?metric=emails_sent").await.json();
    assert_eq!((none["dimension"].clone(), none["total"].clone()), (Value::Null, json!(0)));
}

#[tokio::test]
async fn trends_compare_this_period_with_the_last() {
    let app = TestApp::spawn().await;
    let (client, id) = member(&app).await;
    let first = first_of_month(today());
    let previous_first = first_of_month(first - Duration::days(1));
    seed(&app, id, "ai_tokens", first, 10, &[]).await;
    seed(&app, id, "ai_tokens", previous_first, 5, &[]).await;
    seed(&app, id, "ai_tokens", first - Duration::days(1), 95, &[]).await;

    let res = client.get("/api/v1/app/usage/trends?metric=ai_tokens").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["current"]["total"], 10);
    assert_eq!(body["current"]["peak_day"], json!({"date": first.to_string(), "value": 10}));
    assert_eq!(body["previous"]["total"], 100);
    assert_eq!(body["previous"]["peak_day"]["value"], 95);
    let elapsed = (today() - first).num_days() + 1;
    let previous_days = (first - previous_first).num_days();
    let expected_to_date = if elapsed >= previous_days { 100 } else { 5 };
    assert_eq!(body["previous_to_date"], expected_to_date);
    let growth = (10.0 - expected_to_date as f64) * 100.0 / expected_to_date as f64;
    assert!((body["growth_percent"].as_f64().unwrap() - growth).abs() < 0.01, "{body}");
    let average = body["current"]["daily_average"].as_f64().unwrap();
    assert!((average - 10.0 / elapsed as f64).abs() < 0.01, "{body}");
}

#[tokio::test]
async fn bad_metrics_ranges_and_odd_input_are_422() {
    let app = TestApp::spawn().await;
    let (client, _) = member(&app).await;
    let long = "a".repeat(5_000);
    for path in [
        "/api/v1/app/usage/daily".to_owned(),
        "/api/v1/app/usage/daily?metric=bogus".to_owned(),
        "/api/v1/app/usage/daily?metric=api_requests&days=0".to_owned(),
        "/api/v1/app/usage/daily?metric=api_requests&days=367".to_owned(),
        "/api/v1/app/usage/daily?metric=api_requests&days=abc".to_owned(),
        "/api/v1/app/usage/daily?metric=api_requests%00".to_owned(),
        "/api/v1/app/usage/daily?metric=api_requests%E2%80%AE".to_owned(),
        format!("/api/v1/app/usage/daily?metric={long}"),
        "/api/v1/app/usage/trends?metric=API_REQUESTS".to_owned(),
        "/api/v1/app/usage/breakdown?metric=api_requests&dimension=".to_owned(),
        format!("/api/v1/app/usage/breakdown?metric=api_requests&dimension={long}"),
        "/api/v1/app/usage/summary?from=2025-03-02&to=2025-03-01".to_owned(),
        "/api/v1/app/usage/summary?from=2024-01-01&to=2025-01-01".to_owned(),
        "/api/v1/app/usage/summary?from=2025-02-30".to_owned(),
        "/api/v1/app/usage/summary?from=25-02-01".to_owned(),
        "/api/v1/app/usage/summary?to=%00".to_owned(),
        "/api/v1/app/usage/summary?from=%EF%BC%92025-01-01".to_owned(),
    ] {
        let res = client.get(&path).await;
        assert_eq!(res.status, 422, "{path}: {}", res.text);
        assert_eq!(res.error_code(), "VALIDATION_ERROR", "{path}");
    }
}

#[tokio::test]
async fn custom_metrics_are_listed_and_reported() {
    let app = TestApp::builder().env("USAGE_CUSTOM_METRICS", "widgets").spawn().await;
    let (client, _) = member(&app).await;
    let metrics = client.get("/api/v1/app/usage/metrics").await.json()["metrics"].as_array().unwrap().clone();
    assert_eq!(metrics.len(), 10);
    let widgets = metrics.iter().find(|m| m["name"] == "widgets").unwrap();
    assert_eq!((widgets["custom"].clone(), widgets["limit_kind"].clone()), (Value::Bool(true), Value::from("soft")));
    assert_eq!(client.get("/api/v1/app/usage/daily?metric=widgets&days=3").await.status, 200);
    assert_eq!(client.get("/api/v1/app/usage/daily?metric=gadgets&days=3").await.status, 422);
}

#[tokio::test]
async fn usage_routes_need_a_token_and_admin_routes_an_admin() {
    let app = TestApp::spawn().await;
    let (client, id) = member(&app).await;
    for path in [
        "/api/v1/app/usage/metrics",
        "/api/v1/app/usage/current-period",
        "/api/v1/admin/usage/top-users?metric=ai_tokens",
    ] {
        assert_eq!(app.client.get(path).await.status, 401, "{path}");
    }
    let bad = client.with_token("not-a-token");
    assert_eq!(bad.get("/api/v1/app/usage/current-period").await.status, 401);
    for path in [
        format!("/api/v1/admin/usage/users/{id}/current-period"),
        format!("/api/v1/admin/usage/users/{id}/summary"),
        format!("/api/v1/admin/usage/users/{id}/daily?metric=ai_tokens"),
        format!("/api/v1/admin/usage/users/{id}/breakdown?metric=ai_tokens"),
        format!("/api/v1/admin/usage/users/{id}/trends?metric=ai_tokens"),
        "/api/v1/admin/usage/top-users?metric=ai_tokens".to_owned(),
    ] {
        let res = client.get(&path).await;
        assert_eq!(res.status, 403, "a user, even about itself: {path}: {}", res.text);
    }
    // No app route takes an account id: another account's usage is unreachable from them.
    let res = client.get(&format!("/api/v1/app/usage/users/{}/current-period", Uuid::new_v4())).await;
    assert_eq!(res.status, 404);

    // What grants access, taken away: a demoted admin, a deactivated account.
    let (admin, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();
    omnistack::users::set_role_by_email(&app.state.db, &email, omnistack::auth::Role::Admin).await.unwrap();
    let top = "/api/v1/admin/usage/top-users?metric=ai_tokens";
    assert_eq!(admin.get(top).await.status, 200);
    let res = admin.post_json(&format!("/api/v1/admin/users/{id}/deactivate"), &json!({})).await;
    assert!(res.status.is_success(), "{}", res.text);
    let gone = client.get("/api/v1/app/usage/current-period").await.status;
    assert!(gone == 401 || gone == 403, "a deactivated account: {gone}");
    omnistack::users::set_role_by_email(&app.state.db, &email, omnistack::auth::Role::User).await.unwrap();
    assert_eq!(admin.get(top).await.status, 403, "a demoted admin");
}

#[tokio::test]
async fn admins_read_any_account_and_the_busiest_accounts() {
    let app = TestApp::spawn().await;
    let admin = admin_client(&app).await;
    let (client, ada) = member(&app).await;
    let (_, bob) = member(&app).await;
    let today = today();
    seed(&app, ada, "ai_tokens", today, 300, &[("model", "gpt")]).await;
    seed(&app, bob, "ai_tokens", today, 500, &[("model", "gpt")]).await;
    seed(&app, bob, "ai_tokens", first_of_month(today) - Duration::days(1), 9_999, &[]).await;

    for report in
        ["current-period", "summary", "daily?metric=ai_tokens", "breakdown?metric=ai_tokens", "trends?metric=ai_tokens"]
    {
        let own = client.get(&format!("/api/v1/app/usage/{report}")).await;
        let theirs = admin.get(&format!("/api/v1/admin/usage/users/{ada}/{report}")).await;
        assert_eq!(theirs.status, 200, "{report}: {}", theirs.text);
        assert_eq!(own.json(), theirs.json(), "{report}");
    }
    for id in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let res = admin.get(&format!("/api/v1/admin/usage/users/{id}/current-period")).await;
        assert_eq!(res.status, 404, "{id}: {}", res.text);
        assert_eq!(res.error_code(), "NOT_FOUND");
    }

    let res = admin.get("/api/v1/admin/usage/top-users?metric=ai_tokens").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let body = res.json();
    assert_eq!(body["period"], first_of_month(today).format("%Y-%m").to_string());
    let users: Vec<(String, i64)> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["user_id"].as_str().unwrap().to_owned(), u["value"].as_i64().unwrap()))
        .collect();
    assert_eq!(users, vec![(bob.to_string(), 500), (ada.to_string(), 300)]);
    let one = admin.get("/api/v1/admin/usage/top-users?metric=ai_tokens&limit=1").await.json();
    assert_eq!(one["users"].as_array().unwrap().len(), 1);
    let last = (first_of_month(today) - Duration::days(1)).format("%Y-%m").to_string();
    let before = admin.get(&format!("/api/v1/admin/usage/top-users?metric=ai_tokens&period={last}")).await.json();
    assert_eq!(before["users"][0]["value"], 9_999);
    for query in [
        "metric=nope",
        "metric=ai_tokens&period=2026-13",
        "metric=ai_tokens&period=2026",
        "metric=ai_tokens&limit=0",
        "metric=ai_tokens&limit=101",
        "",
    ] {
        let res = admin.get(&format!("/api/v1/admin/usage/top-users?{query}")).await;
        assert_eq!(res.status, 422, "{query}: {}", res.text);
    }
}
