//! API v1: the Python original's shapes, frozen.

pub mod auth;
pub mod health;
pub mod projects;
pub mod realtime;
pub mod users;

use axum::Router;
use axum::middleware;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::auth::guard;
use crate::error::ErrorBody;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "OmniStack API v1", description = "Stable API, frozen: shapes never change."),
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

/// Declares the `bearer` security scheme used by guarded routes.
pub struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The route groups shared by every version: `public` (no authentication), `sockets` (the
/// WebSocket, which authenticates by itself: browsers cannot send headers on it), `app` (an
/// authenticated, active account) and `admin` (an admin), each enforced by the group's guard.
pub fn route_groups(state: &AppState) -> OpenApiRouter<AppState> {
    let public = OpenApiRouter::new().merge(health::routes()).merge(auth::routes());
    let sockets = realtime::socket_routes();
    let app = OpenApiRouter::new()
        .merge(users::routes())
        .merge(projects::routes())
        .merge(realtime::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_user));
    let admin = OpenApiRouter::new()
        .merge(realtime::admin_routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_admin));
    public.merge(sockets).merge(app).merge(admin)
}

/// v1's routes under `/api/v1`, and its OpenAPI document.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).nest("/api/v1", route_groups(state)).split_for_parts()
}
