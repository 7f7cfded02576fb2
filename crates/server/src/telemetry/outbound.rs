//! Outbound HTTP calls (JWKS today; payment, AI and email APIs later): one client span per
//! call, with the W3C `traceparent` injected so the callee continues the trace.

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Sends a request inside a client span.
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let url = request.url();
    let span = tracing::info_span!(
        "http.client",
        otel.name = %request.method(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        url.full = %format_args!("{}://{}{}", url.scheme(), url.authority(), url.path()),
        server.address = url.host_str().unwrap_or_default(),
        http.response.status_code = tracing::field::Empty,
    );
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeaderInjector(request.headers_mut()));
    let result = client.execute(request).instrument(span.clone()).await;
    match &result {
        Ok(response) => {
            span.record("http.response.status_code", response.status().as_u16());
            if response.status().is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
    result
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::from_str(&value)) {
            self.0.insert(name, value);
        }
    }
}
