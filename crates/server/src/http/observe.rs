//! Per-request bookkeeping at the outermost layer: the request id and one access-log line.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use super::request_id;
use crate::auth::guard::CallerId;

/// The label used for requests that matched no route, so log and metric cardinality stays bounded.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Assigns the request id, runs the request in its scope, tags the response and logs one line.
pub async fn track_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::from_headers(request.headers());
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str).to_owned();

    let mut response = request_id::scope(id.clone(), next.run(request)).await;

    let status = response.status().as_u16();
    let user = response.extensions().get::<CallerId>().map(|caller| caller.0.to_string()).unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(request_id::HEADER, value);
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        http.method = %method,
        http.route = %route,
        http.status = status,
        latency_ms = format_args!("{latency_ms:.2}"),
        request.id = %id,
        user.id = %user,
        "request completed"
    );
    response
}
