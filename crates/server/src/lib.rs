//! OmniStack: a production SaaS backend in one binary.
//!
//! Start at [`router`] for the URL map and at `docs/ARCHITECTURE.md` for the request path.

pub mod accounts;
pub mod admin;
pub mod ai;
pub mod allocator;
pub mod api;
pub mod app;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod contact;
pub mod docs;
pub mod error;
pub mod exports;
pub mod files;
pub mod health;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod owned;
pub mod projects;
pub mod rate_limit;
pub mod realtime;
pub mod redis_pool;
pub mod router;
pub mod state;
pub mod telemetry;
pub mod usage;
pub mod users;
pub mod webhooks;

#[cfg(test)]
mod layering;

/// Installs the process-wide TLS crypto provider (ring). Call once, first thing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
