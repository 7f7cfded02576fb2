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

use std::convert::Infallible;

use axum::Router;
use axum::extract::Request;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::Route;
use tower::{Layer, Service};
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::auth::guard;
use crate::config::ApiVersion;
use crate::http;
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
    pub public: Routes,
    /// No authentication, the strict `auth` limit.
    pub credentials: Routes,
    /// The realtime socket.
    pub sockets: Routes,
    /// Inbound webhooks (they verify themselves); a version without any has `None`.
    pub webhooks: Option<Routes>,
    /// An authenticated, active account.
    pub app: Routes,
    /// An authenticated, active admin.
    pub admin: Routes,
    /// Usage sent by a product's own backend: an active admin, or the usage API key; a version
    /// without it has `None`.
    pub ingest: Option<Routes>,
}

/// `version`'s routes under `/api/<version>` with their guards and limits, and its OpenAPI
/// document (`doc` completed with the routes), with the deprecation schedule applied.
pub fn mount(version: ApiVersion, doc: OpenApi, groups: Groups, state: &AppState) -> (Router<AppState>, OpenApi) {
    let require_user = from_fn_with_state(state.clone(), guard::require_user);
    let require_admin = from_fn_with_state(state.clone(), guard::require_admin);
    let require_ingester = from_fn_with_state(state.clone(), crate::usage::ingest::require_ingester);
    // Each group's guard or limit, inside the layers every route has, as one layer.
    let per_route = http::per_route(state.config.request_timeout);
    let prefix = format!("/api/{}", version.as_str());
    let mut router = OpenApiRouter::with_openapi(doc);
    for routes in [
        groups.public.layer((per_route, rate_limit::by_ip(LimitClass::Public))),
        groups.credentials.layer((per_route, rate_limit::by_ip(LimitClass::Auth))),
        groups.sockets.layer((per_route, rate_limit::by_ip(LimitClass::Websocket))),
        groups.webhooks.unwrap_or_default().layer((per_route, rate_limit::by_ip(LimitClass::Webhooks))),
        groups.app.layer((per_route, require_user)),
        groups.admin.layer((per_route, require_admin)),
        groups.ingest.unwrap_or_default().layer((per_route, require_ingester)),
    ] {
        router = routes.place(&prefix, router);
    }
    let (router, doc) = router.split_for_parts();
    lifecycle::apply(version, (router, openapi::complete(doc)), &state.config)
}

/// Routes as a version declares them: handlers made by `utoipa_axum::routes!`, with paths
/// relative to the version. [`mount`] registers each at its full path (`/api/<version>/…`)
/// rather than nesting the group's router: axum's nesting would rewrite every request's URI
/// on its way in and box one more layer around every route.
#[derive(Default)]
pub struct Routes(Vec<UtoipaMethodRouter<AppState>>);

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds handlers, as `utoipa_axum::routes!` makes them.
    pub fn routes(mut self, routes: UtoipaMethodRouter<AppState>) -> Self {
        self.0.push(routes);
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.0.extend(other.0);
        self
    }

    /// `layer` around each of these routes, and around their 405 answers.
    pub fn layer<L>(self, layer: L) -> Self
    where
        L: Layer<Route> + Clone + Send + Sync + 'static,
        L::Service: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
        <L::Service as Service<Request>>::Response: IntoResponse + 'static,
        <L::Service as Service<Request>>::Future: Send + 'static,
    {
        Self(
            self.0
                .into_iter()
                .map(|(schemas, paths, handlers)| (schemas, paths, handlers.layer(layer.clone())))
                .collect(),
        )
    }

    /// These routes added to `router` under `prefix`, in its routing and in its document (a
    /// schema name already in the document keeps its first definition).
    fn place(self, prefix: &str, mut router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
        for (schemas, mut paths, handlers) in self.0 {
            paths.paths = std::mem::take(&mut paths.paths)
                .into_iter()
                .map(|(path, item)| (if path == "/" { prefix.to_owned() } else { format!("{prefix}{path}") }, item))
                .collect();
            router = router.merge(OpenApiRouter::new().routes((schemas, paths, handlers)));
        }
        router
    }
}
