//! Every metric that every Grafana dashboard panel queries exists in a real scrape.

use std::collections::BTreeSet;

use std::process::Stdio;

use omnistack::app::samplers;
use omnistack_testkit::{TestApp, redis_url};
use serde_json::{Value, json};

use crate::binary::{free_port, omnistack, wait_until_up};

const DASHBOARDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/grafana/dashboards");

/// Metric names in a PromQL expression (every selector in the dashboards has braces).
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    for (i, _) in expr.match_indices('{') {
        let start =
            expr[..i].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')).map_or(0, |p| p + 1);
        if start < i && !bytes[start].is_ascii_digit() {
            names.push(expr[start..i].to_owned());
        }
    }
    names
}

fn exprs(panel: &Value, out: &mut Vec<(String, String)>) {
    for target in panel["targets"].as_array().into_iter().flatten() {
        if let Some(expr) = target["expr"].as_str() {
            out.push((panel["title"].as_str().unwrap_or_default().to_owned(), expr.to_owned()));
        }
    }
    for nested in panel["panels"].as_array().into_iter().flatten() {
        exprs(nested, out);
    }
}

#[tokio::test]
async fn every_metric_queried_by_every_dashboard_panel_is_exported() {
    // Redis unreachable on purpose: its gauges, latencies and errors are all recorded.
    let app =
        TestApp::builder().env("REDIS_URL", "redis://127.0.0.1:1").env("RATE_LIMIT_APP", "3/minute").spawn().await;
    let (client, session) = app.signed_in_client().await;
    let email = session["user"]["email"].as_str().unwrap();
    app.client
        .post_json("/api/v1/public/auth/login", &json!({"email": email, "password": "correct-horse-battery"}))
        .await;
    app.client.post_json("/api/v1/public/auth/login", &json!({"email": email, "password": "wrong-password"})).await;
    client.post_json("/api/v1/app/projects", &json!({"name": "dash"})).await;
    for _ in 0..3 {
        client.get("/api/v1/app/users/me").await;
    }
    samplers::sample_system(&app.state).await;
    samplers::sample_accounts(&app.state).await;
    app.state.db.close().await;
    client.get("/api/v1/app/users/me").await;
    let scrape = app.client.get("/metrics").await.text;
    let exported = exported(&scrape);
    let panels = dashboard_panels();
    let mut checked = BTreeSet::new();
    for (dashboard, title, name) in &panels {
        assert!(exported.contains(name.as_str()), "{dashboard}: panel {title:?} queries {name}, not exported");
        checked.insert(name.clone());
    }
    assert!(checked.len() >= 20, "{checked:?}");
}

/// A fresh process, before any traffic but one health probe, already exports every series a
/// panel queries (at zero), so no panel starts as "No data". Redis series need Redis.
#[tokio::test]
async fn every_queried_series_exists_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().to_string();
    let redis = redis_url();
    let mut vars = vec![("ENVIRONMENT", "test"), ("PORT", port.as_str()), ("DATA_DIR", ".")];
    if let Some(url) = &redis {
        vars.push(("REDIS_URL", url));
    }
    let mut child = omnistack(dir.path(), &vars).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    let scrape = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let exported = exported(&scrape);
    for (dashboard, title, name) in dashboard_panels() {
        if name.starts_with("redis_") && redis.is_none() {
            continue;
        }
        assert!(exported.contains(name.as_str()), "{dashboard}: panel {title:?} has no {name} series at start");
    }
}

/// Metric names with at least one sample in a scrape.
fn exported(scrape: &str) -> BTreeSet<&str> {
    scrape.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).filter_map(|l| l.split(['{', ' ']).next()).collect()
}

/// `(dashboard file, panel title, metric name)` for every metric every panel queries; checks
/// each dashboard's datasource variable on the way.
fn dashboard_panels() -> Vec<(String, String, String)> {
    let mut dashboards = 0;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(DASHBOARDS).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        dashboards += 1;
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["type"] == "datasource" && v["name"] == "datasource"),
            "{} has a datasource variable",
            path.display()
        );
        let mut panels = Vec::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{} panel {}", path.display(), panel["title"]);
            exprs(panel, &mut panels);
        }
        assert!(!panels.is_empty());
        for (title, expr) in panels {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "no metric found in {title:?}: {expr}");
            found.extend(names.into_iter().map(|name| (path.display().to_string(), title.clone(), name)));
        }
    }
    assert!(dashboards >= 4, "API, database & Redis, realtime, business");
    found
}

#[test]
fn metric_names_are_found_in_expressions() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{instance=~"$instance"}[5m]))) / clamp_min(sum(db_pool_max_connections{a="b"}), 1)"#;
    assert_eq!(metric_names(expr), ["http_request_duration_seconds_bucket", "db_pool_max_connections"]);
}
