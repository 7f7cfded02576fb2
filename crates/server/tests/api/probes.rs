//! Routes served inside the application's layers, to probe the stack itself.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use omnistack::http::extract::{Json, Query};
use omnistack::state::AppState;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, Serialize)]
pub struct Echo {
    pub name: String,
    pub count: u32,
}

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

/// `POST /probe/echo` (JSON in, JSON out), `GET /probe/panic`, `GET /probe/slow?ms=`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/probe/echo", post(|Json(body): Json<Echo>| async move { Json(body) }))
        .route(
            "/probe/panic",
            get(|| async {
                if std::hint::black_box(true) {
                    panic!("probe panic with secret detail");
                }
                "unreachable"
            }),
        )
        .route(
            "/probe/slow",
            get(|Query(sleep): Query<Sleep>| async move {
                tokio::time::sleep(Duration::from_millis(sleep.ms)).await;
                "done"
            }),
        )
}
