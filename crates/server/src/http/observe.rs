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
use crate::config::SamplerSettings;
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
    /// When spans are exported: which requests are traced. Decided here, before any span
    /// exists, so an unsampled request costs no span work at all.
    pub sampling: Option<SamplerSettings>,
}

/// Whether this request is traced: the caller's `traceparent` decides under a parent-based
/// sampler, otherwise a draw against the ratio.
fn is_sampled(headers: &HeaderMap, sampling: SamplerSettings) -> bool {
    if sampling.parent_based
        && let Some(flags) = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() == 55)
            .and_then(|v| u8::from_str_radix(&v[53..], 16).ok())
    {
        return flags & 1 == 1;
    }
    sampling.ratio >= 1.0 || (sampling.ratio > 0.0 && unit_draw() < sampling.ratio)
}

/// A uniform draw in [0, 1) from a per-thread xorshift generator (seeded once from the OS).
fn unit_draw() -> f64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed) | 1
        });
    }
    STATE.with(|state| {
        let mut x = state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        state.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

/// Assigns the request id, runs the request in its scope and span, records metrics, tags the
/// response and logs one line.
pub async fn track_request(State(observe): State<Observe>, request: Request, next: Next) -> Response {
    let log_ids = observe.log_ids;
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();
    let traced =
        !is_untraced(&route) && observe.sampling.is_none_or(|sampling| is_sampled(request.headers(), sampling));
    let span = if traced { server_span(&request, &route, &id, log_ids) } else { Span::none() };

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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(traceparent: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().unwrap());
        headers
    }

    #[test]
    fn the_callers_decision_wins_under_a_parent_based_sampler() {
        let never = SamplerSettings { ratio: 0.0, parent_based: true };
        let always = SamplerSettings { ratio: 1.0, parent_based: true };
        assert!(is_sampled(&headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), never));
        assert!(!is_sampled(&headers("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), always));
        assert!(is_sampled(&HeaderMap::new(), always));
        assert!(!is_sampled(&HeaderMap::new(), never));
    }

    #[test]
    fn the_ratio_is_honoured_without_a_parent() {
        let tenth = SamplerSettings { ratio: 0.1, parent_based: false };
        let kept = (0..100_000).filter(|_| is_sampled(&HeaderMap::new(), tenth)).count();
        assert!((9_000..11_000).contains(&kept), "{kept}");
    }
}
