//! Prometheus metrics through the `metrics` facade: every name the service records is
//! described here, rendered at `/metrics` and `/api/v1/public/metrics`.
//!
//! Application code adds its own in one line, anywhere:
//! `metrics::counter!("omnistack_projects_created_total").increment(1);`
//! (describe it in [`describe`] to give it a `# HELP` line).

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets (seconds) for every `*_seconds` histogram: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (the `metrics` facade is global by design), installed
/// on first use.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = match builder.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS) {
                Ok(builder) => builder,
                Err(err) => {
                    tracing::warn!(error = %err, "histogram buckets rejected; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            metrics::gauge!("omnistack_build_info", "version" => env!("CARGO_PKG_VERSION"), "rustc" => RUSTC).set(1.0);
            handle
        })
        .clone()
}

/// The compiler that built this binary (set by the build environment when known).
const RUSTC: &str = match option_env!("OMNISTACK_RUSTC_VERSION") {
    Some(version) => version,
    None => "unknown",
};

/// `# HELP` and unit of every metric the service records.
fn describe() {
    describe_gauge!("omnistack_build_info", "Build information; the value is always 1.");
    describe_counter!("http_requests_total", "HTTP requests completed, by method, route template and status.");
    describe_histogram!("http_request_duration_seconds", Unit::Seconds, "HTTP request latency by method and route.");
    describe_gauge!("http_requests_in_flight", "HTTP requests being served.");
    describe_gauge!("omnistack_users", "Accounts by status (active, deactivated).");
    describe_gauge!("omnistack_active_users", "Distinct accounts seen in the window (24h, 30d).");
    describe_counter!("omnistack_signups_total", "Accounts created, by identity provider.");
    describe_counter!("omnistack_logins_total", "Sign-ins, by identity provider.");
    describe_counter!("omnistack_auth_failures_total", "Rejected credentials, by reason and provider.");
    describe_counter!("omnistack_rate_limit_rejections_total", "Requests answered 429, by limit class.");
    describe_counter!("omnistack_projects_created_total", "Projects created (an example business metric).");
    describe_counter!(
        "omnistack_emails_sent_total",
        "Templated email delivery attempts, by template and outcome (sent, failed)."
    );
    describe_gauge!("db_pool_connections", "Database pool connections by state (idle, in_use).");
    describe_gauge!("db_pool_max_connections", "Configured maximum database pool size.");
    describe_histogram!(
        "db_pool_acquire_duration_seconds",
        Unit::Seconds,
        "Time to get a pooled connection, sampled every 15 s."
    );
    describe_histogram!("db_query_duration_seconds", Unit::Seconds, "Database query latency by operation and table.");
    describe_counter!("db_query_errors_total", "Failed database queries by operation and table.");
    describe_gauge!("realtime_connections", "WebSockets open on this instance.");
    describe_counter!("realtime_connections_opened_total", "WebSockets accepted (authenticated).");
    describe_counter!(
        "realtime_messages_total",
        "WebSocket messages by direction (in: from clients, out: to clients)."
    );
    describe_counter!("realtime_published_total", "Channel messages published from this instance.");
    describe_counter!(
        "realtime_dropped_total",
        "Messages not delivered, by reason (queue_full, slow_consumer, rate_limited)."
    );
    describe_counter!("realtime_redis_errors_total", "Failed Redis operations of the realtime hub.");
    describe_gauge!("redis_up", "1 when Redis answered the last probe, 0 when it did not (absent without Redis).");
    describe_histogram!("redis_command_duration_seconds", Unit::Seconds, "Redis command latency by command.");
    describe_counter!("redis_command_errors_total", "Failed Redis commands by command.");
    describe_counter!("omnistack_jobs_enqueued_total", "Background jobs enqueued, by kind.");
    describe_counter!(
        "omnistack_jobs_finished_total",
        "Background job runs finished, by kind and outcome (succeeded, failed: will retry, dead)."
    );
    describe_histogram!("omnistack_jobs_duration_seconds", Unit::Seconds, "Background job run time, by kind.");
    describe_gauge!("omnistack_jobs_queued", "Background jobs waiting to run (queued or awaiting a retry), by kind.");
    describe_counter!(
        "omnistack_webhooks_received_total",
        "Verified inbound webhooks, by provider and outcome (stored, duplicate: a redelivery)."
    );
    describe_counter!(
        "omnistack_webhooks_rejected_total",
        "Inbound webhooks refused by their signature or bearer check, by provider (nothing stored)."
    );
    describe_counter!(
        "omnistack_ai_calls_total",
        "AI provider calls, by provider, configured model and outcome (ok, failed, refused, skipped: circuit open)."
    );
    describe_counter!("omnistack_ai_tokens_total", "Tokens AI providers reported, by provider and configured model.");
    describe_histogram!(
        "omnistack_ai_upstream_duration_seconds",
        Unit::Seconds,
        "Time from an AI call to its complete answer, by provider and model."
    );
    describe_counter!(
        "omnistack_webhooks_processed_total",
        "Inbound webhook processing attempts, by provider and outcome (processed, failed: retried)."
    );
}

/// Creates, at zero, the series that dashboards query but that only move on rare events
/// (rejections, failures, sign-ups), so a panel shows 0 rather than "No data" from the start.
/// Series labelled by a database table or Redis command appear with their first call (see
/// `omnistack_db::observe` and `redis_pool::traced`); the email series are created with the
/// mailer (`mail::from_settings`).
pub fn register_rare_series(providers: &[&'static str]) {
    for class in crate::config::LimitClass::ALL {
        metrics::counter!("omnistack_rate_limit_rejections_total", "class" => class.as_str()).absolute(0);
    }
    for provider in std::iter::once("password").chain(providers.iter().copied()) {
        metrics::counter!("omnistack_signups_total", "provider" => provider).absolute(0);
        metrics::counter!("omnistack_logins_total", "provider" => provider).absolute(0);
    }
    metrics::counter!("omnistack_auth_failures_total", "reason" => "invalid_credentials", "provider" => "password")
        .absolute(0);
    metrics::counter!("omnistack_auth_failures_total", "reason" => "missing_token", "provider" => "none").absolute(0);
    metrics::counter!("omnistack_projects_created_total").absolute(0);
}

/// Creates the job series of every registered kind at zero (see [`register_rare_series`]).
pub fn register_job_series(kinds: &[&'static str]) {
    for &kind in kinds {
        metrics::counter!("omnistack_jobs_enqueued_total", "kind" => kind).absolute(0);
        for outcome in ["succeeded", "failed", "dead"] {
            metrics::counter!("omnistack_jobs_finished_total", "kind" => kind, "outcome" => outcome).absolute(0);
        }
        metrics::gauge!("omnistack_jobs_queued", "kind" => kind).set(0.0);
    }
}

/// Folds recorded histogram samples into their buckets every few seconds; without it they
/// pile up in memory until the next scrape (or forever, when nothing scrapes).
pub fn spawn_upkeep() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_err() {
        return;
    }
    let handle = handle();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            ticks.tick().await;
            handle.run_upkeep();
        }
    });
}

/// Per-route handles of the request metrics, so the hot path neither rebuilds nor hashes label
/// sets (nor allocates their strings) on every request. Keyed by route template, whose number
/// is bounded by the router.
#[derive(Debug)]
pub struct RequestMetrics {
    /// `http_requests_in_flight`.
    pub in_flight: metrics::Gauge,
    routes: std::sync::RwLock<std::collections::HashMap<String, Vec<RouteHandles>>>,
}

impl Default for RequestMetrics {
    /// Handles from the recorder installed now (build the router after [`handle`]).
    fn default() -> Self {
        RequestMetrics { in_flight: metrics::gauge!("http_requests_in_flight"), routes: Default::default() }
    }
}

#[derive(Clone, Debug)]
struct RouteHandles {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    duration: metrics::Histogram,
}

impl RequestMetrics {
    /// Counts one finished request and its duration. `route` must come from a bounded set (the
    /// router's templates), `method` from [`method_label`].
    pub fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        let count = |handles: &RouteHandles| {
            handles.requests.increment(1);
            handles.duration.record(seconds);
        };
        // The usual case: the handles exist, and are used under the read lock (no clones).
        let found = self.routes.read().ok().is_some_and(|routes| {
            routes
                .get(route)
                .and_then(|handles| handles.iter().find(|h| h.status == status && h.method == method))
                .map(count)
                .is_some()
        });
        if found {
            return;
        }
        let handles = RouteHandles {
            method,
            status,
            requests: metrics::counter!("http_requests_total", "method" => method, "route" => route.to_owned(), "status" => status.to_string()),
            duration: metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route.to_owned()),
        };
        count(&handles);
        if let Ok(mut routes) = self.routes.write() {
            let known = routes.entry(route.to_owned()).or_default();
            if !known.iter().any(|h| h.status == status && h.method == method) {
                known.push(handles);
            }
        }
    }
}

/// The method as a metric label or log field: one of the nine standard methods, or `OTHER`.
/// A client may send any token as a method, so it never becomes a label as sent.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// The scrape: every recorded metric, then the process metrics, in the text format.
pub fn render() -> String {
    let handle = handle();
    handle.run_upkeep();
    let mut text = handle.render();
    text.push_str(&super::process::render());
    text
}
