//! The ceiling (`../shared/bench/ceiling`: bare axum, no middleware) answering the health route
//! with the bytes omnistack sends: the same headers, with constant values, and the same body
//! fields, inserted into the response the cheapest way axum allows. Whatever separates it from the
//! ceiling is the cost of that response alone.
//! Port from the first argument (default 8091).
use axum::http::{HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::{routing::get, Json, Router};

const HEADERS: [(HeaderName, HeaderValue); 9] = [
    h("vary", "origin, access-control-request-method, access-control-request-headers"),
    h("x-content-type-options", "nosniff"),
    h("x-frame-options", "DENY"),
    h("referrer-policy", "strict-origin-when-cross-origin"),
    h(
        "permissions-policy",
        "accelerometer=(), ambient-light-sensor=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), \
         microphone=(), payment=(), usb=()",
    ),
    h("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
    h("x-request-id", "019ade2c-5d3e-7fcf-b0aa-ac7e96b77acd"),
    h("x-api-version", "v1"),
    h("x-api-latest-version", "v2"),
];

/// Checked once, at compile time.
const fn h(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
    (HeaderName::from_static(name), HeaderValue::from_static(value))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(8091);
    let app = Router::new().route(
        "/api/v1/public/health",
        get(|| async {
            let mut response = Json(serde_json::json!({
                "status": "healthy",
                "timestamp": "2026-11-26T00:00:00.000000000Z",
                "version": "0.1.0",
            }))
            .into_response();
            for (name, value) in HEADERS {
                response.headers_mut().insert(name, value);
            }
            response
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}
