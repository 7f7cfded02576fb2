//! API v2: the newest version, where new behaviour lands. It serves the same services as v1;
//! endpoints whose v2 shape equals v1's reuse v1's handlers.

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;

use crate::api::v1::{self, BearerAuth};
use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "OmniStack API v2", description = "The latest API version."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Own accounts: registration, sign-in, tokens, passwords"),
        (name = "users", description = "The caller's account"),
        (name = "projects", description = "The example resource"),
        (name = "realtime", description = "WebSockets: tickets, status, broadcast"),
    )
)]
struct ApiDoc;

/// v2's routes under `/api/v2`, and its OpenAPI document.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v2", v1::route_groups(state)).split_for_parts()
}
