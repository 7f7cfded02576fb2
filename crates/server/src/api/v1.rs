//! API v1: the Python original's shapes, frozen.

pub mod admin;
pub mod auth;
pub mod contact;
pub mod exports;
pub mod flags;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod projects;
pub mod realtime;
pub mod users;

use axum::Router;
use axum::middleware;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use super::version::ApiVersion;
use super::{lifecycle, openapi};
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
        (name = "jobs", description = "Background jobs (admins)"),
        (name = "contact", description = "The public contact form, and its submissions (admins)"),
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

/// One version's handlers, by resource; [`route_groups`] puts them in their groups.
pub struct Endpoints {
    /// `/public/health*`.
    pub health: OpenApiRouter<AppState>,
    /// `/public/auth/*`.
    pub auth: OpenApiRouter<AppState>,
    /// `/app/users/me`.
    pub users: OpenApiRouter<AppState>,
    /// `/app/projects*`.
    pub projects: OpenApiRouter<AppState>,
    /// `/app/users/me/export*`.
    pub exports: OpenApiRouter<AppState>,
    /// `/admin/jobs*`.
    pub jobs: OpenApiRouter<AppState>,
    /// `/app/ws/ticket`, `/app/ws/status` (the socket itself, `/app/ws`, is the same in every
    /// version).
    pub realtime: OpenApiRouter<AppState>,
    /// `/admin/ws/broadcast`.
    pub broadcast: OpenApiRouter<AppState>,
    /// `/public/contact*`.
    pub contact: OpenApiRouter<AppState>,
    /// `/admin/contact*`.
    pub contact_admin: OpenApiRouter<AppState>,
}

impl Endpoints {
    /// v1's handlers.
    pub fn v1() -> Endpoints {
        Endpoints {
            health: health::routes(),
            auth: auth::routes(),
            users: users::routes(),
            projects: projects::routes(),
            exports: exports::routes(),
            jobs: jobs::routes(),
            realtime: realtime::routes(),
            broadcast: realtime::admin_routes(),
            contact: contact::routes(),
            contact_admin: contact::admin_routes(),
        }
    }
}

/// The route groups shared by every version, with the version's `endpoints`: `public` (no
/// authentication), `sockets` (the WebSocket, which authenticates by itself: browsers cannot
/// send headers on it), `app` (an authenticated, active account) and `admin` (an admin), each
/// enforced by the group's guard.
pub fn route_groups(state: &AppState, endpoints: Endpoints) -> OpenApiRouter<AppState> {
    let public = OpenApiRouter::new()
        .merge(endpoints.health)
        .routes(utoipa_axum::routes!(metrics::scrape))
        .merge(endpoints.auth)
        .merge(endpoints.contact);
    // Health probes and the metrics scrape are exempt from limiting inside `by_ip`.
    let sockets = realtime::socket_routes();
    let app = OpenApiRouter::new()
        .merge(endpoints.users)
        .merge(endpoints.projects)
        .merge(endpoints.exports)
        .merge(endpoints.realtime)
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_user));
    let admin = OpenApiRouter::new()
        .merge(endpoints.broadcast)
        .merge(endpoints.jobs)
        .merge(endpoints.contact_admin)
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_admin));
    public.merge(sockets).merge(app).merge(admin)
}

/// v1's routes under `/api/v1`, and its OpenAPI document, with the deprecation schedule applied.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", route_groups(state, Endpoints::v1()).merge(admin::routes(state)).merge(flags::routes(state)))
        .split_for_parts();
    lifecycle::apply(ApiVersion::V1, (router, openapi::complete(doc)), &state.config)
}
