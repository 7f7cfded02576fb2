//! The route table: every URL prefix the server answers. Handlers live in `api/vN/` (each
//! version lists its routes by group in `api/vN.rs`); the layers every request passes are in
//! `http.rs`.
//!
//! | path                          | what                                   |
//! |-------------------------------|----------------------------------------|
//! | `/api/v1/public/health`       | liveness                               |
//! | `/api/v1/public/health/ready` | readiness                              |
//! | `/api/v1/public/auth/…`       | register, login, refresh, logout, password, verify-email |
//! | `/api/v1/app/users/me`        | the caller's account (guarded: any active account) |
//! | `/api/v1/app/projects[/{id}]` | the example resource (guarded)         |
//! | `/api/v1/app/ws`              | realtime WebSocket (authenticates itself) |
//! | `/api/v1/app/ws/ticket`, `/api/v1/app/ws/status` | socket tickets, status (guarded) |
//! | `/api/v1/admin/ws/broadcast`  | publish to a channel (admins)          |
//! | `/api/v1/public/contact[/status]` | the contact form, its status       |
//! | `/api/v1/admin/contact[/{id}]` | contact submissions (admins)          |
//! | `/api/v1/admin/users…`, `/admin/impersonations…`, `/admin/audit-logs…` | the admin console (v1) |
//! | `/api/v1/public/webhooks/{provider}` | inbound webhooks (verified by each provider's signature) |
//! | `/api/v1/admin/webhooks[/{id}[/replay]]` | the webhook log (admins)         |
//! | `/api/v1/admin/usage/events`  | usage from a product's backend (admins or `USAGE_API_KEY`) |
//! | `/api/v1/admin/usage/stripe-sync` | the Stripe meter outbox (admins)   |
//! | `/api/v2/…`                   | the same endpoints, latest version     |
//! | `/api/<group>/…`              | rewritten to a version before routing (`Accept-Version`, `X-API-Version`, `API_DEFAULT_VERSION`) |
//! | `/api/v1/openapi.json`, `/api/v2/openapi.json` | OpenAPI documents     |
//! | `/docs`                       | browsable docs (Swagger UI)            |
//! | `/metrics`, `/api/v1/public/metrics` | Prometheus scrape (`METRICS_TOKEN`) |
//! | `/ofrep/v1/evaluate/flags[/{key}]` | OpenFeature remote flag evaluation (`FLAGS_API_KEY` or admins) |
//! | `/api/v1/app/files…`          | file uploads, downloads, listing (guarded; bytes go to the store) |
//! | `/files/{id}/upload`, `/files/{id}/download` | the local file store's signed transfers (the signature is the credential) |

use axum::Router;
use axum::routing::{any, get};

use crate::error::Error;
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;
use crate::{api, docs, http};

/// The application: the route table inside the service's layers ([`http::stack`]). `extra`
/// routes are served inside the same layers (an embedding application's own routes, or probes
/// in tests).
pub fn build(state: AppState, extra: Router<AppState>) -> http::Service {
    let (v1, v1_doc) = api::v1::router(&state);
    let (v2, v2_doc) = api::v2::router(&state);
    // Unversioned surfaces.
    let mut unversioned = Router::new()
        .route("/metrics", get(api::metrics::scrape))
        .merge(api::ofrep::routes(&state))
        .merge(api::files::routes())
        .merge(extra);
    if state.config.docs_enabled {
        unversioned = unversioned.merge(docs::router(vec![("v1", v1_doc), ("v2", v2_doc)]));
    }
    // Unknown paths are limited per client IP like the public routes, so probing costs a
    // scanner as much as using the API does.
    let unversioned = unversioned
        .fallback_service(any(not_found).layer(rate_limit::by_ip(LimitClass::Public)))
        .layer(http::per_route(state.config.request_timeout));
    // Versioned APIs: each version's route groups are in `api/vN.rs`, under `per_route` already.
    let routes = Router::new().merge(v1).merge(v2).merge(unversioned);
    http::stack(routes, state)
}

async fn not_found() -> Error {
    Error::NotFound("no route matches this path".into())
}
