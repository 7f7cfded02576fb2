//! Traces reach a real OTLP receiver (HTTP/protobuf, inside this test) from the running
//! binary; metrics are in the Prometheus format and move with traffic.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use omnistack_testkit::idp::FakeIdp;
use omnistack_testkit::{TestApp, WsClient};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::json;

use crate::binary::{free_port, omnistack, wait_until_up};

/// A received span, flattened.
#[derive(Clone, Debug)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent_id: String,
    attributes: HashMap<String, String>,
    /// Span ids of the linked spans.
    links: Vec<String>,
    /// The resource's `service.name`.
    service: String,
}

/// The header a collector such as Honeycomb or Datadog checks, sent through
/// `OTEL_EXPORTER_OTLP_HEADERS`.
const COLLECTOR_KEY: (&str, &str) = ("x-api-key", "collector-key");

/// An OTLP/HTTP receiver on 127.0.0.1 collecting every span posted to `/v1/traces` with the
/// collector key and the protobuf content type (anything else is refused).
async fn start_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let store = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let header =
                    |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                if header(COLLECTOR_KEY.0) != COLLECTOR_KEY.1 || header("content-type") != "application/x-protobuf" {
                    return StatusCode::UNAUTHORIZED;
                }
                let request = ExportTraceServiceRequest::decode(body).expect("valid OTLP protobuf");
                let mut spans = store.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|r| &r.attributes)
                        .find(|kv| kv.key == "service.name")
                        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                            AnyValue::StringValue(name) => Some(name.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let attributes = span
                                .attributes
                                .iter()
                                .map(|kv| {
                                    let value = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                                        Some(AnyValue::StringValue(s)) => s,
                                        Some(AnyValue::IntValue(i)) => i.to_string(),
                                        Some(AnyValue::BoolValue(b)) => b.to_string(),
                                        Some(AnyValue::DoubleValue(d)) => d.to_string(),
                                        other => format!("{other:?}"),
                                    };
                                    (kv.key.clone(), value)
                                })
                                .collect();
                            spans.push(Span {
                                name: span.name,
                                trace_id: hex(&span.trace_id),
                                span_id: hex(&span.span_id),
                                parent_id: hex(&span.parent_span_id),
                                attributes,
                                links: span.links.iter().map(|link| hex(&link.span_id)).collect(),
                                service: service.clone(),
                            });
                        }
                    }
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_reach_the_collector_with_routes_children_and_propagated_context() {
    omnistack::install_crypto_provider();
    let (collector, spans) = start_receiver().await;
    let idp = FakeIdp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (port_text, key, issuer) = (port.to_string(), format!("{}={}", COLLECTOR_KEY.0, COLLECTOR_KEY.1), idp.issuer());
    let child = omnistack(
        dir.path(),
        &[
            ("PORT", &port_text),
            ("LOG_FORMAT", "json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector),
            ("OTEL_SERVICE_NAME", "omnistack-test"),
            ("OTEL_EXPORTER_OTLP_HEADERS", &key),
            ("CLERK_ISSUER_URL", &issuer),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&format!("{base}/api/v1/public/health")).await;
    let http = reqwest::Client::new();

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let res = http
        .post(format!("{base}/api/v1/public/auth/register"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"email": "traced@example.com", "password": "traced-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let session: serde_json::Value = res.json().await.unwrap();
    let token = session["access_token"].as_str().unwrap();
    let (socket, _) = WsClient::connected(&format!("ws://127.0.0.1:{port}/api/v1/app/ws?token={token}")).await;
    socket.close().await;
    let external = idp.token(idp.claims(json!({"email": "ext@example.com"})));
    let res = http.get(format!("{base}/api/v1/app/users/me")).bearer_auth(external).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(http.get(format!("{base}/api/v1/nope")).send().await.unwrap().status(), 404);
    let unsampled_trace = "0af7651916cd43dd8448eb211c80319c";
    let res = http
        .get(format!("{base}/api/v1/nope"))
        .header("traceparent", format!("00-{unsampled_trace}-b7ad6b7169203331-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // The sign-up's emails are jobs; give them a moment to run before the stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // SIGTERM: the server flushes its spans before exiting.
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let spans = spans.lock().unwrap().clone();

    let register = spans.iter().find(|s| s.name == "POST /api/v1/public/auth/register").expect("HTTP span");
    assert_eq!(register.trace_id, caller_trace, "continues the caller's trace");
    assert_eq!(register.parent_id, caller_span);
    assert_eq!(register.service, "omnistack-test");
    assert_eq!(register.attributes["http.route"], "/api/v1/public/auth/register");
    assert_eq!(register.attributes["http.response.status_code"], "201");
    assert_eq!(register.attributes["http.request.method"], "POST");
    assert_eq!(register.attributes["url.path"], "/api/v1/public/auth/register");
    assert!(register.attributes.contains_key("request.id") && register.attributes.contains_key("client.address"));

    let insert = spans
        .iter()
        .find(|s| s.name == "INSERT users" && s.parent_id == register.span_id)
        .expect("a child database span");
    assert_eq!(insert.trace_id, caller_trace);
    assert_eq!(insert.attributes["db.system"], "sqlite");
    assert!(insert.attributes["db.query.text"].contains("INSERT INTO users"));
    assert!(!insert.attributes["db.query.text"].contains("traced@example.com"), "no bound values");

    let job = spans.iter().find(|s| s.name == "job email").expect("a span per job run");
    assert_eq!(job.links, std::slice::from_ref(&register.span_id), "linked to the request that enqueued it");
    assert!(job.parent_id.is_empty() && job.trace_id != caller_trace, "a trace of its own");
    assert_eq!((job.attributes["job.kind"].as_str(), job.attributes["job.outcome"].as_str()), ("email", "succeeded"));

    let me = spans.iter().find(|s| s.name == "GET /api/v1/app/users/me").expect("users/me span");
    assert!(me.attributes.contains_key("user.id"));
    let fetch = spans.iter().find(|s| s.name == "GET" && s.trace_id == me.trace_id).expect("outbound JWKS span");
    let sent = idp.traceparents();
    assert!(
        sent.iter().any(|tp| tp.contains(&me.trace_id) && tp.contains(&fetch.span_id)),
        "the JWKS request carried this trace's traceparent: {sent:?}"
    );

    let upgrade = spans.iter().find(|s| s.name == "GET /api/v1/app/ws").expect("upgrade request span");
    let connection = spans.iter().find(|s| s.name == "WebSocket connection").expect("connection span");
    assert_eq!(connection.links, std::slice::from_ref(&upgrade.span_id), "linked to the upgrade request");
    assert!(connection.parent_id.is_empty() && connection.trace_id != upgrade.trace_id, "a trace of its own");
    assert_eq!(connection.attributes["user.id"], session["user"]["id"].as_str().unwrap());

    let not_found = spans.iter().find(|s| s.attributes.get("http.response.status_code").is_some_and(|c| c == "404"));
    assert_eq!(not_found.expect("404 span").attributes["error.type"], "NOT_FOUND");
    assert!(!spans.iter().any(|s| s.name.contains("/public/health")), "probes are not traced");
    assert!(!spans.iter().any(|s| s.trace_id == unsampled_trace), "the caller's decision not to sample is kept");

    let logs = String::from_utf8_lossy(&out.stdout);
    let line = logs
        .lines()
        .find(|l| l.contains("request completed") && l.contains("/api/v1/public/auth/register"))
        .expect("access log line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["trace_id"], caller_trace);
    assert_eq!(line["span_id"], register.span_id);
    // A line written while a request is served carries its ids too.
    let line = logs.lines().find(|l| l.contains("external account provisioned")).expect("provisioning log line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["trace_id"], me.trace_id);
    assert_eq!(line["span_id"], me.span_id);
    assert!(line["request.id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
    // The access log names the route template and the authenticated caller.
    let line = logs
        .lines()
        .find(|l| l.contains("request completed") && l.contains(&me.trace_id))
        .expect("users/me access log line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(line["http.route"], "/api/v1/app/users/me");
    assert_eq!(line["user.id"], me.attributes["user.id"], "{line}");
    let line =
        logs.lines().find(|l| l.contains("request completed") && l.contains("\"http.status\":404")).expect("404 line");
    let line: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!((line["http.route"].as_str(), line["user.id"].as_str()), (Some("unmatched"), Some("")), "{line}");
}

#[tokio::test]
async fn the_console_exporter_prints_one_line_per_span() {
    omnistack::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child =
        omnistack(dir.path(), &[("PORT", &port.to_string()), ("OTEL_EXPORTER", "console"), ("LOG_LEVEL", "warn")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    wait_until_up(&format!("http://127.0.0.1:{port}/api/v1/nope")).await;
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("span GET unmatched") && l.contains("error.type=NOT_FOUND")),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_dead_collector_neither_slows_nor_fails_requests() {
    // Nothing listens on port 1: every export attempt fails in the background.
    omnistack::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child =
        omnistack(dir.path(), &[("PORT", &port.to_string()), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/nope");
    wait_until_up(&url).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    for _ in 0..50 {
        assert_eq!(http.get(&url).send().await.unwrap().status(), 404);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "50 requests took {:?}", started.elapsed());
    let _ = child.kill();
    let _ = child.wait();
}

/// Parses the text format: `(name, labels, value)` per sample; panics on a malformed line.
fn samples(text: &str) -> Vec<(String, String, f64)> {
    text.lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("malformed line {line:?}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let (name, labels) = series.split_once('{').map_or((series, ""), |(n, l)| (n, l.trim_end_matches('}')));
            (name.to_owned(), labels.to_owned(), value)
        })
        .collect()
}

fn value(text: &str, name: &str, labels: &str) -> f64 {
    samples(text).into_iter().filter(|(n, l, _)| n == name && l.contains(labels)).map(|(_, _, v)| v).sum()
}

#[tokio::test]
async fn metrics_are_in_the_prometheus_format_and_counters_move() {
    let app = TestApp::spawn().await;
    let before = app.client.get("/metrics").await;
    assert_eq!(before.status, 200);
    assert!(before.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let route = r#"route="/api/v1/app/projects""#;
    let (client, _) = app.signed_in_client().await;
    for _ in 0..3 {
        client.post_json("/api/v1/app/projects", &json!({"name": "metered"})).await;
    }
    client.get("/api/v1/app/projects/not-a-uuid").await;
    app.client.get(&format!("/{}", "x".repeat(40))).await;
    let after = app.client.get("/api/v1/public/metrics").await.text;

    assert!(value(&after, "http_requests_total", &format!(r#"method="POST",{route},status="201""#)) >= 3.0);
    assert!(value(&after, "http_request_duration_seconds_count", route) >= 3.0);
    assert!(value(&after, "omnistack_projects_created_total", "") >= 3.0);
    assert!(value(&after, "omnistack_signups_total", r#"provider="password""#) >= 1.0);
    assert!(value(&after, "db_query_duration_seconds_count", r#"operation="INSERT",table="projects""#) >= 3.0);
    assert!(after.contains(r#"route="/api/v1/app/projects/{id}""#), "route templates, not raw paths");
    assert!(!after.contains("not-a-uuid") && !after.contains(&"x".repeat(40)), "raw paths never become labels");
    assert!(after.contains(r#"route="unmatched""#));
    for name in
        ["omnistack_build_info", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"]
    {
        assert!(samples(&after).iter().any(|(n, _, _)| n == name), "{name} missing");
    }
    if let Ok(output) = promtool_check(&after) {
        assert!(output.status.success(), "promtool: {}", String::from_utf8_lossy(&output.stdout));
    }
}

fn promtool_check(text: &str) -> std::io::Result<std::process::Output> {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("stdin").write_all(text.as_bytes())?;
    child.wait_with_output()
}

#[tokio::test]
async fn metrics_token_guards_the_scrape() {
    let app = TestApp::builder().env("METRICS_TOKEN", "scrape-secret").spawn().await;
    assert_eq!(app.client.get("/metrics").await.status, 401);
    assert_eq!(app.client.with_token("wrong").get("/metrics").await.status, 401);
    let ok = app.client.with_token("scrape-secret").get("/api/v1/public/metrics").await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("http_requests_total"));
}

#[tokio::test]
async fn sampled_gauges_report_pool_and_accounts() {
    let app = TestApp::spawn().await;
    app.signed_in_client().await;
    omnistack::app::samplers::sample_system(&app.state).await;
    omnistack::app::samplers::sample_accounts(&app.state).await;
    let text = app.client.get("/metrics").await.text;
    assert!(samples(&text).iter().any(|(n, l, _)| n == "db_pool_connections" && l.contains("idle")));
    assert!(value(&text, "db_pool_max_connections", "") >= 1.0);
    assert!(samples(&text).iter().any(|(n, l, _)| n == "omnistack_users" && l.contains("active")));
    assert!(samples(&text).iter().any(|(n, _, _)| n == "db_pool_acquire_duration_seconds_bucket"));
    if omnistack_testkit::redis_url().is_some() {
        assert!(samples(&text).iter().any(|(n, _, v)| n == "redis_up" && *v == 1.0));
    }
}
