//! Per-request bookkeeping at the outermost layer: the request id, the server span (continuing
//! an incoming W3C `traceparent`), the request metrics, and one access-log line.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::request_id;
use crate::auth::guard::CallerId;
use crate::telemetry::metrics::RequestMetrics;

/// The label used for requests that matched no route, so log and metric cardinality stays bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Routes probed so often that tracing them would drown the traces that matter.
fn is_untraced(route: &str) -> bool {
    route == "/metrics"
        || route.ends_with("/public/health")
        || route.ends_with("/public/health/ready")
        || route.ends_with("/public/metrics")
}

/// What the outermost layer needs.
#[derive(Clone, Debug)]
pub struct Observe {
    /// Whether log lines carry the trace and span ids (only JSON lines print them, and looking
    /// them up costs time on every request).
    pub log_ids: bool,
    /// The request metrics' handles.
    pub metrics: Arc<RequestMetrics>,
}

/// Assigns the request id, runs the request in its scope and span, records metrics, tags the
/// response and logs one line.
pub async fn track_request(State(observe): State<Observe>, request: Request, next: Next) -> Response {
    let log_ids = observe.log_ids;
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let span = if is_untraced(&route) { Span::none() } else { server_span(&request, &route, &id, log_ids) };

    let in_flight = &observe.metrics.in_flight;
    in_flight.increment(1.0);
    let mut response = request_id::scope(id.clone(), next.run(request)).instrument(span.clone()).await;
    in_flight.decrement(1.0);

    let status = response.status().as_u16();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    let elapsed = started.elapsed();
    observe.metrics.record(&method, &route, status, elapsed.as_secs_f64());

    let user = response.extensions().get::<CallerId>().map(|caller| caller.0.to_string()).unwrap_or_default();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
    span.in_scope(|| {
        tracing::info!(
            http.method = %method,
            http.route = %route,
            http.status = status,
            latency_ms = format_args!("{:.2}", elapsed.as_secs_f64() * 1000.0),
            request.id = %id,
            user.id = %user,
            "request completed"
        );
    });
    response
}

/// The server span, named `"{method} {route}"`, child of the caller's trace when a valid
/// `traceparent` arrived.
fn server_span(request: &Request, route: &str, id: &str, log_ids: bool) -> Span {
    let headers = request.headers();
    let client = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip().to_string());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format_args!("{} {}", request.method(), route),
        otel.kind = "server",
        otel.status_code = field::Empty,
        http.request.method = %request.method(),
        http.route = route,
        url.path = request.uri().path(),
        user_agent.original = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default(),
        client.address = client.as_deref().unwrap_or_default(),
        http.response.status_code = field::Empty,
        error.type = field::Empty,
        user.id = field::Empty,
        request.id = id,
        trace_id = field::Empty,
        span_id = field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    if log_ids {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        if span_context.is_valid() {
            span.record("trace_id", field::display(span_context.trace_id()));
            span.record("span_id", field::display(span_context.span_id()));
        }
    }
    span
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
