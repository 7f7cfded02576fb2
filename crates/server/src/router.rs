//! The whole URL map. Handlers live in `api/vN/`; layers in `http`.
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
//! | `/api/v2/…`                   | the same endpoints, latest version     |
//! | `/api/<group>/…`              | rewritten to a version before routing (`Accept-Version`, `X-API-Version`, `API_DEFAULT_VERSION`) |
//! | `/api/v1/openapi.json`, `/api/v2/openapi.json` | OpenAPI documents     |
//! | `/docs`                       | browsable docs (Swagger UI)            |
//! | `/metrics`, `/api/v1/public/metrics` | Prometheus scrape (`METRICS_TOKEN`) |
//! | `/ofrep/v1/evaluate/flags[/{key}]` | OpenFeature remote flag evaluation (`FLAGS_API_KEY` or admins) |

use axum::{Extension, Router};

use crate::error::Error;
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;
use crate::{api, docs, http};

/// The application router, layered and with its state. `extra` routes are served inside the
/// same layers (an embedding application's own routes, or probes in tests).
pub fn build(state: AppState, extra: Router<AppState>) -> Router {
    let (v1, v1_doc) = api::v1::router(&state);
    let (v2, v2_doc) = api::v2::router(&state);
    let mut router = Router::new().merge(v1).merge(v2).merge(extra);
    router = router.merge(api::ofrep::routes(&state));
    if state.config.docs_enabled {
        router = router.merge(docs::router(vec![("v1", v1_doc), ("v2", v2_doc)]));
    }
    // Unknown paths are limited per client IP like the public routes, so probing costs a
    // scanner as much as using the API does.
    let unmatched = axum::routing::any(not_found).layer(rate_limit::by_ip(LimitClass::Public));
    let router = router.route("/metrics", axum::routing::get(api::v1::metrics::scrape)).fallback_service(unmatched);
    // `rate_limit::by_ip` layers, added where route groups are built, find the limiter here.
    let limiter = Extension(state.limiter.clone());
    let config = state.config.clone();
    let router = http::apply_layers(router, &config).layer(limiter).with_state(state);
    http::negotiate_versions(router, &config)
}

async fn not_found() -> Error {
    Error::NotFound("no route matches this path".into())
}
