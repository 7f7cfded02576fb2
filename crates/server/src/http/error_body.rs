//! Guarantees the one error shape for responses made outside handlers: axum's 404/405,
//! tower's 413 and timeouts, and panics.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use serde_json::json;
use tower::{Layer, Service};

use crate::error::error_response;
use crate::telemetry::request_id;

/// The layer that gives every 4xx/5xx response the error shape ([`ensure_error_body`]). A
/// plain service around the inner one: nothing is cloned or boxed per request.
#[derive(Clone, Copy, Debug)]
pub struct ErrorBodies {
    timeout_seconds: u64,
}

/// About how many headers a response carries when it leaves the service.
const RESPONSE_HEADERS: usize = 24;

/// The layer: [`ErrorBodies`]; `timeout_seconds` is what a 504 says.
pub fn layer(timeout_seconds: u64) -> ErrorBodies {
    ErrorBodies { timeout_seconds }
}

impl<S> Layer<S> for ErrorBodies {
    type Service = ErrorBodiesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ErrorBodiesService { inner, timeout_seconds: self.timeout_seconds }
    }
}

/// The service [`ErrorBodies`] makes.
#[derive(Clone, Debug)]
pub struct ErrorBodiesService<S> {
    inner: S,
    timeout_seconds: u64,
}

impl<S, B> Service<Request> for ErrorBodiesService<S>
where
    S: Service<Request, Response = axum::http::Response<B>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ErrorBodyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        ErrorBodyFuture { inner: self.inner.call(request), timeout_seconds: self.timeout_seconds }
    }
}

pin_project_lite::pin_project! {
    /// The inner response, with the error shape where it had none (a plain future around the
    /// inner one: nothing boxed per request).
    pub struct ErrorBodyFuture<F> {
        #[pin]
        inner: F,
        timeout_seconds: u64,
    }
}

impl<F, B, E> Future for ErrorBodyFuture<F>
where
    F: Future<Output = Result<axum::http::Response<B>, E>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?.map(Body::new);
        // Room for the headers the outer layers add (CORS, security, version, request id,
        // rate limit), so the map grows once rather than at every power of two.
        response.headers_mut().reserve(RESPONSE_HEADERS);
        Poll::Ready(Ok(ensure_error_body(response, *this.timeout_seconds)))
    }
}

/// Replaces the body of any 4xx/5xx response that is not already JSON with the error shape,
/// keeping its status and headers (such as `Allow` on a 405).
pub fn ensure_error_body(response: Response, timeout_seconds: u64) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("NOT_FOUND", "no route matches this path".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => ("METHOD_NOT_ALLOWED", "this method is not allowed on this path".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => ("PAYLOAD_TOO_LARGE", "request body is too large".to_owned()),
        StatusCode::GATEWAY_TIMEOUT => {
            ("GATEWAY_TIMEOUT", format!("the request did not complete within {timeout_seconds} s"))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("UNSUPPORTED_MEDIA_TYPE", "unsupported content type".to_owned()),
        StatusCode::UNAUTHORIZED => ("AUTHENTICATION_ERROR", "authentication required".to_owned()),
        StatusCode::FORBIDDEN => ("AUTHORIZATION_ERROR", "not allowed".to_owned()),
        StatusCode::TOO_MANY_REQUESTS => ("RATE_LIMIT_EXCEEDED", "too many requests".to_owned()),
        StatusCode::SERVICE_UNAVAILABLE => ("SERVICE_UNAVAILABLE", "service unavailable".to_owned()),
        s if s.is_server_error() => ("INTERNAL_ERROR", "an internal error occurred".to_owned()),
        _ => ("BAD_REQUEST", "the request could not be processed".to_owned()),
    };
    let (mut parts, _) = response.into_parts();
    let replacement = error_response(status, code, &message, json!({}));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.extend(replacement.headers().clone());
    Response::from_parts(parts, replacement.into_body())
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("application/problem+json"))
}

/// A caught panic: logged once with the request id, answered as a plain 500.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic payload");
    tracing::error!(request.id = %request_id::current(), panic.message = message, "handler panicked");
    error_response(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "an internal error occurred", json!({}))
}
