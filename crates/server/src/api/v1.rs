//! API v1: the Python original's shapes, frozen.

pub mod admin;
pub mod ai;
pub mod auth;
pub mod billing;
pub mod contact;
pub mod exports;
pub mod files;
pub mod flags;
pub mod health;
pub mod jobs;
pub mod projects;
pub mod realtime;
pub mod usage;
pub mod users;
pub mod webhooks;

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
    info(title = "OmniStack API v1", description = "Stable API, frozen: shapes never change."),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "Liveness and readiness probes"),
        (name = "auth", description = "Own accounts: registration, sign-in, tokens, passwords"),
        (name = "users", description = "The caller's account"),
        (name = "projects", description = "The example resource"),
        (name = "realtime", description = "WebSockets: tickets, status, broadcast"),
        (name = "jobs", description = "Background jobs (admins)"),
        (name = "contact", description = "The public contact form, and its submissions (admins)"),
        (name = "billing", description = "The caller's subscription: plans, Stripe, App Store, Google Play"),
        (name = "usage", description = "Usage: the caller's metered usage against the plan's limits; any account's, events from a product's backend and Stripe meter sync (admins)"),
        (name = "admin", description = "The admin console: users, impersonation, the audit log"),
        (name = "files", description = "The caller's files: direct uploads to the store, download links"),
        (name = "ai", description = "The AI gateway: OpenAI, Anthropic and Gemini behind one chat API"),
        (name = "webhooks", description = "Inbound webhooks (Stripe, Clerk, Supabase, Apple, Google) and their log (admins)"),
    )
)]
struct ApiDoc;

/// v1's routes, by group.
pub fn groups() -> Groups {
    Groups {
        public: Routes::new()
            .merge(health::routes())
            .routes(routes!(metrics::scrape))
            .merge(auth::token_routes())
            .merge(contact::routes()),
        credentials: auth::credential_routes(),
        sockets: socket::routes(),
        webhooks: Some(webhooks::routes()),
        app: Routes::new()
            .merge(users::routes())
            .merge(projects::routes())
            .merge(exports::routes())
            .merge(realtime::routes())
            .merge(billing::routes())
            .merge(flags::routes())
            .merge(usage::routes())
            .merge(files::routes())
            .merge(ai::routes()),
        admin: Routes::new()
            .merge(realtime::admin_routes())
            .merge(jobs::routes())
            .merge(contact::admin_routes())
            .merge(admin::routes())
            .merge(admin::usage_ingest::routes()),
        ingest: Some(admin::usage_ingest::ingest_routes()),
    }
}

/// v1's routes under `/api/v1`, and its OpenAPI document.
pub fn router(state: &AppState) -> (Router<AppState>, OpenApiDoc) {
    mount(ApiVersion::V1, ApiDoc::openapi(), groups(), state)
}
