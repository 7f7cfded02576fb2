//! API v2: the newest version, where new behaviour lands. It serves the same services as v1
//! with its own DTOs: success bodies are enveloped (`{"data", "meta"}`), lists page by cursor,
//! the account has `is_premium` and `days_since_joined`. Bodyless endpoints reuse v1's handlers,
//! and v1's frozen DTOs travel inside v2's envelope.

pub mod auth;
pub mod cursor;
pub mod envelope;
pub mod exports;
pub mod files;
pub mod health;
pub mod projects;
pub mod realtime;
pub mod users;

use crate::api::Routes;
use axum::Router;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa_axum::routes;

use super::{Groups, metrics, mount, socket};
use crate::config::ApiVersion;
use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "OmniStack API v2", description = "The latest API version. Success bodies are \
        `{\"data\": …, \"meta\": {\"request_id\", \"timestamp\", \"version\"}}`; lists page with \
        `cursor` and `meta.next_cursor`; errors keep the one error shape."),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Own accounts: registration, sign-in, tokens, passwords"),
        (name = "users", description = "The caller's account"),
        (name = "projects", description = "The example resource"),
        (name = "realtime", description = "WebSockets: tickets, status, broadcast"),
        (name = "files", description = "The caller's files: direct uploads to the store, download links"),
    )
)]
struct ApiDoc;

/// v2's routes, by group.
pub fn groups() -> Groups {
    Groups {
        public: Routes::new().merge(health::routes()).routes(routes!(metrics::scrape)).merge(auth::token_routes()),
        credentials: auth::credential_routes(),
        sockets: socket::routes(),
        // Inbound webhooks are v1 only: providers are given one URL.
        webhooks: None,
        app: Routes::new()
            .merge(users::routes())
            .merge(projects::routes())
            .merge(exports::routes())
            .merge(realtime::routes())
            .merge(files::routes()),
        admin: realtime::admin_routes(),
        // Usage ingestion is v1's (one URL for a product's backend).
        ingest: None,
    }
}

/// v2's routes under `/api/v2`, and its OpenAPI document.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    mount(ApiVersion::V2, ApiDoc::openapi(), groups(), state)
}
