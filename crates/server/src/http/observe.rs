//! Per-request bookkeeping at the outermost layer: the request id, the server span (continuing
//! an incoming W3C `traceparent`), the request metrics, and one access-log line.
//!
//! The span is an OpenTelemetry span made directly with the SDK and carried in the request's
//! OpenTelemetry context, so database, Redis and outbound spans become its children and log
//! lines find its ids. Nothing span-related happens for an unsampled request.

use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use futures::TryFutureExt;
use futures::future::BoxFuture;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{FutureExt, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};

use crate::config::SamplerSettings;
use crate::telemetry::metrics::{RequestMetrics, method_label};
use crate::telemetry::request_id;
use crate::telemetry::requests::RequestCounts;

/// The label used for requests that matched no route, so log and metric cardinality stays bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Paths probed so often that tracing them would drown the traces that matter.
fn is_untraced(path: &str) -> bool {
    path == "/metrics"
        || path.ends_with("/public/health")
        || path.ends_with("/public/health/ready")
        || path.ends_with("/public/metrics")
}

/// What the outermost layer needs.
#[derive(Clone, Debug)]
pub struct Observe {
    /// The request metrics' handles.
    pub metrics: Arc<RequestMetrics>,
    /// When spans are exported: which requests are traced. Decided here, before any span
    /// exists, so an unsampled request costs no span work at all.
    pub sampling: Option<SamplerSettings>,
    /// The instance's request and 5xx counts, for the admin dashboard.
    pub counts: RequestCounts,
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

impl<S> Layer<S> for Observe {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserveService { observe: self.clone(), inner }
    }
}

/// The service [`Observe`] makes: [`track`] around the inner one, which is called in place
/// (a plain service, not a `from_fn` middleware, so the layers below are not cloned per request).
#[derive(Clone, Debug)]
pub struct ObserveService<S> {
    observe: Observe,
    inner: S,
}

impl<S, B> Service<Request> for ObserveService<S>
where
    S: Service<Request, Response = axum::http::Response<B>>,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        track(self.observe.clone(), request, |request| {
            self.inner.call(request).map_ok(|response| response.map(Body::new))
        })
    }
}

/// Assigns the request id, runs the request in its scope and span, records metrics, tags the
/// response and logs one line.
fn track<F, E>(
    observe: Observe,
    request: Request,
    call: impl FnOnce(Request) -> F,
) -> BoxFuture<'static, Result<Response, E>>
where
    F: Future<Output = Result<Response, E>> + Send + 'static,
{
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = method_label(request.method());
    // Probes have no path parameters: their path is their route.
    let traced = !is_untraced(request.uri().path())
        && observe.sampling.is_some_and(|sampling| is_sampled(request.headers(), sampling));
    let trace = traced.then(|| server_span(&request, &id));

    observe.metrics.in_flight.increment(1.0);
    // The layers below start the request here, in its scope and span like the rest of it. The
    // route is noted in the scope when routing reaches it (`TagRoute`; axum calls a route when
    // its future is first polled) and read back, with the caller, before the scope ends.
    let future = {
        let _attached = trace.as_ref().map(|trace| trace.clone().attach());
        request_id::sync_scope(id.clone(), || call(request))
    };
    Box::pin(async move {
        let scoped = request_id::scope(id.clone(), async move {
            let result = future.await;
            (result, request_id::take_route_and_user())
        });
        let (result, (route, user)) = match &trace {
            Some(trace) => scoped.with_context(trace.clone()).await,
            None => scoped.await,
        };
        observe.metrics.in_flight.decrement(1.0);
        let mut response = result?;

        let route = route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        observe.metrics.record(method, route, status, elapsed.as_secs_f64());
        observe.counts.record(status);

        // Inside the span's context, so a JSON line carries its trace and span ids.
        let _attached = trace.as_ref().map(|trace| trace.clone().attach());
        tracing::info!(
            http.method = method,
            http.route = %route,
            http.status = status,
            latency_ms = format_args!("{:.2}", elapsed.as_secs_f64() * 1000.0),
            request.id = %id,
            user.id = %OptionalId(user),
            "request completed"
        );
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(request_id::HEADER, value);
        }
        if let Some(trace) = trace {
            let span = trace.span();
            span.update_name(format!("{} {route}", span_method(method)));
            span.set_attribute(KeyValue::new("http.route", route.to_owned()));
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status)));
            if status >= 500 {
                span.set_status(Status::error(""));
            }
            span.end();
        }
        Ok(response)
    })
}

/// The server span, named `"{method}"` until the route that answered is known (then
/// `"{method} {route}"`, with `unmatched` for none), child of the caller's trace when a valid `traceparent` arrived;
/// returned as the context the request runs in.
fn server_span(request: &Request, id: &str) -> Context {
    let headers = request.headers();
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let client = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip().to_string());
    let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let method = span_method(method_label(request.method()));
    let tracer = crate::telemetry::tracer();
    let span = tracer
        .span_builder(method)
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.path", request.uri().path().to_owned()),
            KeyValue::new("user_agent.original", user_agent.to_owned()),
            KeyValue::new("client.address", client.unwrap_or_default()),
            KeyValue::new("request.id", id.to_owned()),
        ])
        .start_with_context(tracer, &parent);
    parent.with_span(span)
}

/// OpenTelemetry's name for a method outside the standard set.
fn span_method(method: &'static str) -> &'static str {
    match method {
        "OTHER" => "_OTHER",
        known => known,
    }
}

/// The layer routing adds to every route: the route that answered is noted in the request's
/// scope, for [`Observe`] outside the router.
#[derive(Clone, Copy, Debug)]
pub struct TagRoute;

impl<S> Layer<S> for TagRoute {
    type Service = TagRouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TagRouteService { inner }
    }
}

/// The service [`TagRoute`] makes.
#[derive(Clone, Debug)]
pub struct TagRouteService<S> {
    inner: S,
}

impl<S> Service<Request> for TagRouteService<S>
where
    S: Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            request_id::set_route(route.clone());
        }
        self.inner.call(request)
    }
}

/// A caller id for the access log, empty when there is none; formatted only when the line is
/// written.
struct OptionalId(Option<uuid::Uuid>);

impl std::fmt::Display for OptionalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.fmt(f),
            None => Ok(()),
        }
    }
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
