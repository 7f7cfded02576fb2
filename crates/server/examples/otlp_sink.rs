//! A do-nothing OTLP/HTTP receiver for benchmarks: accepts `POST /v1/traces`, reads the body and
//! answers 200, on one thread so it takes as little as possible from the server it measures.
//! Run it through `bench/observability.sh`.
//!
//!   cargo run --release --example otlp_sink -- 4318

use axum::body::Bytes;
use axum::routing::post;

fn main() {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(4318);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
    runtime.block_on(async {
        let app = axum::Router::new().route("/v1/traces", post(|body: Bytes| async move { drop(body) }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("a free port");
        axum::serve(listener, app).await.expect("serving");
    });
}
