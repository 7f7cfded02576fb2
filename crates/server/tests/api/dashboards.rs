//! Every metric that every Grafana dashboard panel queries exists in a real scrape.

use std::collections::BTreeSet;

use omnistack::telemetry::samplers;
use omnistack_testkit::TestApp;
use serde_json::{Value, json};

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
    let exported: BTreeSet<&str> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();

    let mut dashboards = 0;
    let mut checked = BTreeSet::new();
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
            for name in names {
                assert!(
                    exported.contains(name.as_str()),
                    "{}: panel {title:?} queries {name}, not exported",
                    path.display()
                );
                checked.insert(name);
            }
        }
    }
    assert!(dashboards >= 4, "API, database & Redis, realtime, business");
    assert!(checked.len() >= 20, "{checked:?}");
}

#[test]
fn metric_names_are_found_in_expressions() {
    let expr = r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{instance=~"$instance"}[5m]))) / clamp_min(sum(db_pool_max_connections{a="b"}), 1)"#;
    assert_eq!(metric_names(expr), ["http_request_duration_seconds_bucket", "db_pool_max_connections"]);
}
