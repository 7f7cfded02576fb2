//! `/api/v1/admin/…` routes of the admin console (v1 only), behind the admin guard.
//!
//! | module | paths |
//! |---|---|
//! | [`dashboard`] | `/admin/dashboard/stats` |
//! | [`flags`] | `/admin/feature-flags[/{key}[/evaluate]]` |

pub mod dashboard;
pub mod flags;

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::USER_AGENT;
use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::admin::flags::Editor;
use crate::auth::{CurrentUser, guard};
use crate::rate_limit::client_ip;
use crate::state::AppState;

/// The longest `User-Agent` an audit entry keeps.
const MAX_USER_AGENT: usize = 512;

/// The admin console's routes, guarded as the `admin` group is.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(flags::routes())
        .merge(dashboard::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_admin))
}

/// The admin making a change, with the client address and agent the audit log records.
pub fn editor<'a>(state: &AppState, caller: &'a CurrentUser, peer: SocketAddr, headers: &HeaderMap) -> Editor<'a> {
    let ip = Some(client_ip(peer, headers, state.limiter.trusted_proxies()).to_string());
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|agent| agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect());
    Editor { caller, ip, user_agent }
}
