//! Assembling the application from its configuration, and serving it with a bounded
//! graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use omnistack_db::{Db, DbOptions};
use tokio::net::TcpListener;
use tokio::sync::Notify;

mod connections;
pub mod samplers;

use crate::admin::dashboard::{Dashboard, Sources};
use crate::admin::flags::FeatureFlags;
use crate::auth::activity::ActivityTracker;
use crate::auth::external::ExternalVerifier;
use crate::auth::tokens::AccessTokens;
use crate::billing::stripe::StripeClient;
use crate::config::Config;
use crate::contact::CaptchaVerifier;
use crate::jobs::worker::Workers;
use crate::jobs::{JobContext, Jobs, Registry};
use crate::rate_limit::RateLimiter;
use crate::realtime::Hub;
use crate::redis_pool::RedisPool;
use crate::router;
use crate::state::{AppState, Shared};
use crate::{accounts, mail, telemetry};

/// The assembled application: its state, its layered router and its job workers.
pub struct App {
    /// Shared state (database, Redis, rate limiter, configuration).
    pub state: AppState,
    /// The router inside every layer, ready to serve.
    pub router: crate::http::Service,
    /// The background job workers (`JOBS_WORKERS`) and schedules; stop them after serving.
    pub workers: Workers,
}

impl App {
    /// Opens the database (applying migrations unless `DATABASE_AUTO_MIGRATE=false`),
    /// prepares Redis and the rate limiter, and builds the router.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        App::build_with_routes(config, Router::new()).await
    }

    /// [`App::build`], also serving `extra` routes inside the service's layers.
    pub async fn build_with_routes(config: Config, extra: Router<AppState>) -> anyhow::Result<App> {
        App::build_with(config, extra, Registry::standard()).await
    }

    /// [`App::build`] with `extra` routes and the job kinds of `registry`.
    pub async fn build_with(config: Config, extra: Router<AppState>, registry: Registry) -> anyhow::Result<App> {
        if config.telemetry.metrics_enabled {
            telemetry::metrics::spawn_upkeep();
        }
        let (db, redis) = open_stores(&config).await?;
        if let Some((email, password)) = &config.accounts.bootstrap_admin
            && let Some(id) = accounts::ensure_bootstrap_admin(&db, email, password.expose()).await?
        {
            tracing::info!(user.id = %id, "created the ADMIN_EMAIL super admin");
        }
        let tokens = AccessTokens::new(
            config.secret_key.expose(),
            &config.accounts.jwt_issuer,
            config.accounts.access_token_ttl,
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("omnistack/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the outbound HTTP client")?;
        let stores =
            crate::billing::Stores::new(&config, http.clone()).context("the in-app purchase stores (GOOGLE_PLAY_*)")?;
        let files = crate::files::FileStore::from_config(&config, http.clone()).context("the file store (S3_*)")?;
        let external = ExternalVerifier::new(&config.identity, http);
        if config.telemetry.metrics_enabled {
            telemetry::metrics::register_rare_series(&external.provider_names());
        }
        let mailer = mail::from_settings(&config.mail).context("email settings (EMAIL_PROVIDER, SMTP_*)")?;
        let activity = ActivityTracker::default();
        activity.spawn_flusher(db.clone());
        let limiter = RateLimiter::new(&config.rate_limit, redis.clone(), &config.redis_key_prefix);
        let realtime = Hub::new(&config, redis.as_ref()).context("starting the realtime hub (REDIS_URL)")?;
        realtime.watch_revocations(db.clone());
        if config.telemetry.metrics_enabled {
            telemetry::metrics::register_job_series(&registry.names());
            mail::register_metric_series();
            crate::webhooks::register_metric_series();
            crate::ai::register_series(&config.ai);
        }
        let jobs = Jobs::new(config.jobs.clone(), registry);
        let captcha = CaptchaVerifier::new(config.contact.captcha.clone()).context("building the captcha client")?;
        let flags = FeatureFlags::load(&db).await.context("loading the feature flags")?;
        flags.spawn_watcher(db.clone());
        let dashboard = Dashboard::default();
        dashboard.spawn_publisher(Sources { db: db.clone(), redis: redis.clone(), hub: realtime.clone() });
        let stripe =
            config.billing.stripe.as_ref().map(StripeClient::new).transpose().context("building the Stripe client")?;
        let usage = crate::usage::Usage::new(db.clone(), config.usage.clone(), stripe.as_ref().map(|_| jobs.clone()));
        usage.spawn_flusher();
        let ai =
            crate::ai::Gateway::new(&config.ai, config.request_timeout).context("building the AI gateway's client")?;
        let config = Arc::new(config);
        let state = AppState::new(Shared {
            config: config.clone(),
            db: db.clone(),
            redis,
            tokens,
            external,
            mailer: mailer.clone(),
            activity,
            limiter,
            realtime: realtime.clone(),
            jobs: jobs.clone(),
            captcha,
            flags,
            dashboard: dashboard.clone(),
            stripe,
            stores: stores.clone(),
            usage: usage.clone(),
            files,
            ai,
        });
        samplers::spawn(state.clone());
        crate::usage::alerts::Sweeper::new(crate::usage::alerts::Alerts {
            db: db.clone(),
            hub: realtime.clone(),
            jobs: jobs.clone(),
            settings: config.usage.clone(),
            frontend_url: config.accounts.frontend_url.clone(),
        })
        .spawn(config.usage.alert_sweep);
        let router = router::build(state.clone(), extra);
        let workers = Workers::spawn(JobContext { db, config, mailer, hub: realtime, jobs, stores, usage });
        Ok(App { state, router, workers })
    }
}

/// Runs job workers and schedules only, without the HTTP application (`omnistack worker`),
/// until a stop signal; running jobs then get `SHUTDOWN_TIMEOUT_SECONDS` to finish.
pub async fn run_workers(config: Config) -> anyhow::Result<()> {
    let (db, redis) = open_stores(&config).await?;
    let mailer = mail::from_settings(&config.mail).context("email settings (EMAIL_PROVIDER, SMTP_*)")?;
    let hub = Hub::new(&config, redis.as_ref()).context("starting the realtime hub (REDIS_URL)")?;
    let jobs = Jobs::new(config.jobs.clone(), Registry::standard());
    let workers = config.jobs.workers;
    let http = crate::telemetry::outbound::client().context("building the outbound HTTP client")?;
    let stores = crate::billing::Stores::new(&config, http).context("the in-app purchase stores (GOOGLE_PLAY_*)")?;
    let meters = config.billing.stripe.as_ref().map(|_| jobs.clone());
    let usage = crate::usage::Usage::new(db.clone(), config.usage.clone(), meters);
    usage.spawn_flusher();
    let workers_handle = Workers::spawn(JobContext {
        db: db.clone(),
        config: Arc::new(config),
        mailer,
        hub,
        jobs,
        stores,
        usage: usage.clone(),
    });
    tracing::info!(workers, db.system = db.engine().as_str(), "running job workers");
    stop_signal().await;
    tracing::info!("stop requested: finishing running jobs");
    workers_handle.shutdown().await;
    // What the jobs counted is written before the pool closes.
    if let Err(err) = usage.flush().await {
        tracing::error!(error = %err, "could not write the last usage counts at shutdown");
    }
    db.close().await;
    Ok(())
}

/// The database (migrated unless `DATABASE_AUTO_MIGRATE=false`) and, when configured, Redis.
async fn open_stores(config: &Config) -> anyhow::Result<(Db, Option<RedisPool>)> {
    let db = open_database(config).await?;
    if config.database_auto_migrate {
        db.migrate().await.context("applying database migrations")?;
    }
    let redis = config
        .redis_url
        .as_ref()
        .map(|url| RedisPool::new(url.expose()))
        .transpose()
        .context("REDIS_URL is not a valid Redis URL")?;
    Ok((db, redis))
}

/// Opens the configured database pool.
pub async fn open_database(config: &Config) -> anyhow::Result<Db> {
    let options = DbOptions { max_connections: config.database_pool_size, ..DbOptions::default() };
    Db::connect(config.database_url.expose(), &options).await.context("opening the database (DATABASE_URL)")
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes the
/// realtime sockets (code 1012) and lets in-flight requests finish for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    router: crate::http::Service,
    realtime: Hub,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let stopping = Arc::new(Notify::new());
    let signal = stopping.clone();
    let hub = realtime.clone();
    let server = connections::accept(listener, router, async move {
        shutdown.await;
        // Upgraded sockets are not requests the server waits for, and would otherwise stay
        // open: tell them first, so clients reconnect elsewhere while requests finish.
        hub.begin_shutdown();
        signal.notify_one();
    });
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = stopping.notified() => {
            tracing::info!(grace_seconds = grace.as_secs(), "stop requested: finishing in-flight requests");
            let finished = async {
                let result = server.await;
                realtime.drained().await;
                result
            };
            match tokio::time::timeout(grace, finished).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("in-flight requests did not finish within the grace period; stopping anyway");
                    Ok(())
                }
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
