//! API v1: the Python original's shapes, frozen.

pub mod health;

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;

use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "OmniStack API v1", description = "Stable API, frozen: shapes never change."),
    components(schemas(ErrorBody)),
    tags((name = "health", description = "Liveness and readiness probes"))
)]
struct ApiDoc;

/// v1's routes under `/api/v1`, and its OpenAPI document.
pub fn router() -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", health::routes()).split_for_parts()
}
