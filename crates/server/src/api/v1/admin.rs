//! The admin console (v1 only), in the `admin` route group: services check the caller again.
//!
//! | module             | routes                                                         |
//! |--------------------|----------------------------------------------------------------|
//! | [`users`]          | `/admin/users[/{id}[/deactivate, /activate]]`                  |
//! | [`impersonations`] | `/admin/impersonations[/{id}/stop]`                            |
//! | [`audit`]          | `/admin/audit-logs[/{id}, /export, /verify]`                   |
//! | [`webhooks`]       | `/admin/webhooks[/{id}[/replay]]`                              |
//! | [`flags`]          | `/admin/feature-flags[/{key}[/evaluate]]`                      |
//! | [`dashboard`]      | `/admin/dashboard/stats`                                       |
//! | [`usage_ingest`]   | `/admin/usage/events` (also `USAGE_API_KEY`), `/admin/usage/stripe-sync` |
//! | [`usage`]          | `/admin/usage/top-users`, `/admin/usage/users/{user_id}/…`     |

pub mod audit;
pub mod dashboard;
pub mod flags;
pub mod impersonations;
pub mod usage;
pub mod usage_ingest;
pub mod users;
pub mod webhooks;

use crate::api::Routes;

/// The admin console's routes, for the `admin` group (an active admin, never an
/// impersonation token).
pub fn routes() -> Routes {
    Routes::new()
        .merge(users::routes())
        .merge(impersonations::routes())
        .merge(audit::routes())
        .merge(webhooks::routes())
        .merge(flags::routes())
        .merge(dashboard::routes())
        .merge(usage::routes())
}
