//! What handlers and services share. Handlers extract only the parts they use.

use std::sync::Arc;

use axum::extract::FromRef;
use omnistack_db::Db;

use crate::admin::dashboard::Dashboard;
use crate::admin::flags::FeatureFlags;
use crate::ai::Gateway;
use crate::auth::activity::ActivityTracker;
use crate::auth::external::ExternalVerifier;
use crate::auth::tokens::AccessTokens;
use crate::billing::stripe::StripeClient;
use crate::config::Config;
use crate::contact::CaptchaVerifier;
use crate::jobs::Jobs;
use crate::mail::Mailer;
use crate::rate_limit::RateLimiter;
use crate::realtime::Hub;
use crate::redis_pool::RedisPool;
use crate::usage::Usage;

/// The application state, cloned into every request: one shared allocation, so a clone is one
/// reference count (routing, guards and handlers clone it per request). Its fields are reached
/// through `Deref` (`state.db`), or extracted alone (`State<Db>`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state holding `shared`.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds (every field is a cheap handle).
#[derive(Debug)]
pub struct Shared {
    /// The configuration, read once at start.
    pub config: Arc<Config>,
    /// The database pool.
    pub db: Db,
    /// The Redis connection, when `REDIS_URL` is set.
    pub redis: Option<RedisPool>,
    /// Signs and checks the service's own access tokens.
    pub tokens: AccessTokens,
    /// Verifies tokens of external identity providers (Supabase, Clerk, OIDC).
    pub external: ExternalVerifier,
    /// Outgoing email.
    pub mailer: Arc<dyn Mailer>,
    /// Last-seen bookkeeping, written in batches.
    pub activity: ActivityTracker,
    /// The rate limiter (in Redis when `REDIS_URL` is set, else in-process).
    pub limiter: RateLimiter,
    /// Realtime sockets and publishing.
    pub realtime: Hub,
    /// The background job queue.
    pub jobs: Jobs,
    /// The contact form's captcha verification (`CAPTCHA_*`).
    pub captcha: CaptchaVerifier,
    /// Feature flags, evaluated from memory.
    pub flags: FeatureFlags,
    /// The admin dashboard: request counts and the cached reading.
    pub dashboard: Dashboard,
    /// Stripe's API, when `STRIPE_SECRET_KEY` is set.
    pub stripe: Option<StripeClient>,
    /// The in-app purchase stores' clients (Google Play).
    pub stores: crate::billing::Stores,
    /// Usage metering.
    pub usage: Usage,
    /// File storage (`STORAGE_PROVIDER`).
    pub files: crate::files::FileStore,
    /// The AI gateway (providers, breakers).
    pub ai: Gateway,
}

/// `State<T>` for each part of the state: a clone of that part alone.
macro_rules! parts {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> $ty {
                state.$field.clone()
            }
        }
    )*};
}

parts! {
    config: Arc<Config>,
    db: Db,
    redis: Option<RedisPool>,
    tokens: AccessTokens,
    external: ExternalVerifier,
    mailer: Arc<dyn Mailer>,
    activity: ActivityTracker,
    limiter: RateLimiter,
    realtime: Hub,
    jobs: Jobs,
    captcha: CaptchaVerifier,
    flags: FeatureFlags,
    dashboard: Dashboard,
    stripe: Option<StripeClient>,
    stores: crate::billing::Stores,
    usage: Usage,
    files: crate::files::FileStore,
    ai: Gateway,
}
