//! Security headers on every response, errors and 429s included.
//!
//! Headers a route sets itself win, which is how the docs page gets the content security
//! policy it needs.

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;

/// The policy of API responses: they load nothing and are framed by nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

const PERMISSIONS_POLICY: &str = "accelerometer=(), ambient-light-sensor=(), camera=(), geolocation=(), \
     gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";
const HSTS: &str = "max-age=63072000; includeSubDomains";

/// Adds the headers a response does not already carry; HSTS only when `hsts` (production,
/// which must be served over HTTPS).
pub async fn add<B>(hsts: bool, mut response: Response<B>) -> Response<B> {
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "strict-origin-when-cross-origin");
    set(HeaderName::from_static("permissions-policy"), PERMISSIONS_POLICY);
    set(header::CONTENT_SECURITY_POLICY, API_CSP);
    if hsts {
        set(header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
    response
}
