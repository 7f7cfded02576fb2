//! Outbound HTTP calls (JWKS today; payment, AI and email APIs later): one client span per
//! call, with the W3C `traceparent` injected so the callee continues the trace.

use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

/// The client for calls to the third parties the service is configured with (email
/// providers, captcha verifiers, webhook receivers): a 10 s timeout, the service's user agent,
/// and no redirects (requests carry secrets, and a configured endpoint has no reason to move).
pub fn client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("omnistack/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends a request inside a client span (a child of the current request's span, or a root
/// span when the call is not made for a request).
pub async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    let (client, request) = request.build_split();
    let mut request = request?;
    let url = request.url();
    let method = request.method().as_str().to_owned();
    let tracer = super::tracer();
    let parent = Context::current();
    let span = tracer
        .span_builder(method.clone())
        .with_kind(SpanKind::Client)
        .with_attributes([
            KeyValue::new("http.request.method", method),
            KeyValue::new("url.full", format!("{}://{}{}", url.scheme(), url.authority(), url.path())),
            KeyValue::new("server.address", url.host_str().unwrap_or_default().to_owned()),
        ])
        .start_with_context(tracer, &parent);
    let cx = parent.with_span(span);
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(request.headers_mut()));
    let result = client.execute(request).await;
    let span = cx.span();
    match &result {
        Ok(response) => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(response.status().as_u16())));
            if response.status().is_server_error() {
                span.set_attribute(KeyValue::new("error.type", response.status().as_str().to_owned()));
                span.set_status(Status::error(""));
            }
        }
        Err(err) => {
            let kind = if err.is_timeout() {
                "timeout"
            } else if err.is_connect() {
                "connect"
            } else {
                "request"
            };
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(""));
        }
    }
    span.end();
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
