//! API v2: the newest version, where new behaviour lands. It serves the same services as v1
//! with its own DTOs: success bodies are enveloped (`{"data", "meta"}`), lists page by cursor,
//! the account has `is_premium` and `days_since_joined`. Bodyless endpoints reuse v1's handlers.

pub mod auth;
pub mod cursor;
pub mod envelope;
pub mod exports;
pub mod health;
pub mod projects;
pub mod realtime;
pub mod users;

use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::router::OpenApiRouter;

use super::v1::{self, BearerAuth, Endpoints};
use super::{lifecycle, openapi};
use crate::config::ApiVersion;
use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "OmniStack API v2", description = "The latest API version. Success bodies are \
        `{\"data\": …, \"meta\": {\"request_id\", \"timestamp\", \"version\"}}`; lists page with \
        `cursor` and `meta.next_cursor`; errors keep the one error shape."),
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

/// v2's handlers.
fn endpoints() -> Endpoints {
    Endpoints {
        health: health::routes(),
        auth: auth::routes(),
        users: users::routes(),
        projects: projects::routes(),
        exports: exports::routes(),
        jobs: OpenApiRouter::new(),
        realtime: realtime::routes(),
        broadcast: realtime::admin_routes(),
        contact: OpenApiRouter::new(),
        contact_admin: OpenApiRouter::new(),
    }
}

/// v2's routes under `/api/v2`, and its OpenAPI document, with the deprecation schedule applied.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v2", v1::route_groups(state, endpoints()))
        .split_for_parts();
    lifecycle::apply(ApiVersion::V2, (router, openapi::complete(doc)), &state.config)
}
