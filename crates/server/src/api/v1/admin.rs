//! The admin console (v1 only), behind its own admin guard: services check the caller again.
//!
//! | module             | routes                                                         |
//! |--------------------|----------------------------------------------------------------|
//! | [`users`]          | `/admin/users[/{id}[/deactivate, /activate]]`                  |
//! | [`impersonations`] | `/admin/impersonations[/{id}/stop]`                            |
//! | [`audit`]          | `/admin/audit-logs[/{id}, /export, /verify]`                   |

pub mod audit;
pub mod impersonations;
pub mod users;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::guard;
use crate::state::AppState;

/// The admin console's routes, guarded (an active admin, never an impersonation token).
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::routes())
        .merge(impersonations::routes())
        .merge(audit::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), guard::require_admin))
}
