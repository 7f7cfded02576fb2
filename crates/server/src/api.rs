//! The HTTP API: thin handlers per version that call services and map to DTOs.
//!
//! | module | what |
//! |---|---|
//! | [`v1`], [`v2`] | each version's handlers and DTOs, by route group ([`Groups`]) |
//! | [`metrics`] | the Prometheus scrape, the same in every version and at `/metrics` |
//! | [`socket`] | the realtime WebSocket, the same in every version |
//! | [`ofrep`] | OpenFeature Remote Evaluation (`/ofrep/v1/…`), unversioned |
//! | [`lifecycle`] | a version's deprecation schedule, on its routes and its document |
//! | [`openapi`] | what every version's OpenAPI document states beyond the annotations |
//!
//! A released version is frozen: its DTOs live in its own module. `config::ApiVersion` lists
//! the versions. A version supplies its [`Groups`]; [`mount`] gives each group its guard and
//! rate class, so no version builds another's plumbing.

pub mod files;
pub mod lifecycle;
pub mod metrics;
pub mod ofrep;
pub mod openapi;
pub mod socket;
pub mod v1;
pub mod v2;

use axum::Router;
use axum::middleware::from_fn_with_state;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::guard;
use crate::config::ApiVersion;
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;

/// One version's routes, by route group. [`mount`] puts each group behind its guard and limit:
///
/// | group | who may call | limited per |
/// |---|---|---|
/// | `public` | anyone | client IP, `public` (health and the scrape exempt) |
/// | `credentials` | anyone: routes that take a password, an email or an emailed token | client IP, `auth` |
/// | `sockets` | anyone: the WebSocket authenticates itself (browsers cannot send headers on it) | client IP, `websocket` |
/// | `webhooks` | anyone: each delivery is verified by its provider's signature or secret | client IP, `webhooks` |
/// | `app` | an active account (`guard::require_user`) | account, `app` |
/// | `admin` | an active admin (`guard::require_admin`) | account, `app` |
/// | `ingest` | an active admin, or `USAGE_API_KEY` (`usage::ingest::require_ingester`) | account or key, `app` |
#[derive(Default)]
pub struct Groups {
    /// No authentication.
    pub public: OpenApiRouter<AppState>,
    /// No authentication, the strict `auth` limit.
    pub credentials: OpenApiRouter<AppState>,
    /// The realtime socket.
    pub sockets: OpenApiRouter<AppState>,
    /// Inbound webhooks (they verify themselves); a version without any has `None`.
    pub webhooks: Option<OpenApiRouter<AppState>>,
    /// An authenticated, active account.
    pub app: OpenApiRouter<AppState>,
    /// An authenticated, active admin.
    pub admin: OpenApiRouter<AppState>,
    /// Usage sent by a product's own backend: an active admin, or the usage API key; a version
    /// without it has `None`.
    pub ingest: Option<OpenApiRouter<AppState>>,
}

/// `version`'s routes under `/api/<version>` with their guards and limits, and its OpenAPI
/// document (`doc` completed with the routes), with the deprecation schedule applied.
pub fn mount(version: ApiVersion, doc: OpenApi, groups: Groups, state: &AppState) -> (Router<AppState>, OpenApi) {
    let webhooks = groups.webhooks.map(|routes| routes.route_layer(rate_limit::by_ip(LimitClass::Webhooks)));
    let ingest = groups
        .ingest
        .map(|routes| routes.route_layer(from_fn_with_state(state.clone(), crate::usage::ingest::require_ingester)));
    let routes = OpenApiRouter::new()
        .merge(groups.public.route_layer(rate_limit::by_ip(LimitClass::Public)))
        .merge(groups.credentials.route_layer(rate_limit::by_ip(LimitClass::Auth)))
        .merge(groups.sockets.route_layer(rate_limit::by_ip(LimitClass::Websocket)))
        .merge(webhooks.unwrap_or_default())
        .merge(groups.app.route_layer(from_fn_with_state(state.clone(), guard::require_user)))
        .merge(groups.admin.route_layer(from_fn_with_state(state.clone(), guard::require_admin)))
        .merge(ingest.unwrap_or_default());
    let (router, doc) =
        OpenApiRouter::with_openapi(doc).nest(&format!("/api/{}", version.as_str()), routes).split_for_parts();
    lifecycle::apply(version, (router, openapi::complete(doc)), &state.config)
}
