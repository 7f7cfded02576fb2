//! The one typed configuration, read once at start from the environment (and `.env`).
//!
//! Nothing else in the service reads environment variables. Every problem names the
//! variable at fault; secrets are wrapped in [`Secret`] so they never print.

mod accounts;
mod ai;
mod api_version;
mod billing;
mod cidr;
mod contact;
mod cron;
mod files;
mod identity;
mod jobs;
mod mail;
mod parse;
mod rate_limit;
mod realtime;
mod secret;
mod stores;
mod telemetry;
pub mod usage;
mod versions;
mod webhooks;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use accounts::AccountSettings;
pub use ai::{AiProvider, AiProviderSettings, AiSettings, Complexity, ModelRef};
pub use api_version::ApiVersion;
pub use billing::{BillingSettings, Plan, STRIPE_API_BASE, StripeSettings};
pub use cidr::Cidr;
pub use contact::{CaptchaProvider, CaptchaSettings, ContactSettings, WebhookSettings, webhook_key};
pub use cron::Cron;
pub use files::{AllowedTypes, FileSettings, S3Settings, StorageProvider, media_type};
pub use identity::{IdentityProviders, OidcProvider, RoleClaim};
pub use jobs::JobSettings;
pub use mail::{HttpApiSettings, MailProvider, MailSettings, SmtpSettings};
pub use rate_limit::{LimitClass, Rate, RateLimitSettings};
pub use realtime::RealtimeSettings;
pub use secret::{Secret, redact_url};
pub use stores::{AppleEnvironment, AppleSettings, GoogleSettings, ServiceAccountKey, StoreSettings, pem_certificates};
pub use telemetry::{OtlpProtocol, SamplerSettings, TelemetrySettings, TraceExport};
pub use usage::{PlanLimits, UsageSettings};
pub use versions::{ApiVersionSettings, DeprecatedRoute, Deprecation};
pub use webhooks::{InboundWebhookSettings, SvixSecret};

use parse::Vars;

/// Where the service runs; production turns on the strict checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    /// Local development: generated secret key, permissive defaults.
    Development,
    /// Production: `SECRET_KEY` required, HSTS on.
    Production,
    /// Automated tests.
    Test,
}

impl Environment {
    /// The value as written in `ENVIRONMENT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, coloured when on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Allowed cross-origin callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin, without credentials.
    Any,
    /// An explicit list of origins (`scheme://host[:port]`); may be empty.
    List(Vec<String>),
}

/// The effective configuration of one server process.
#[derive(Clone, Debug)]
pub struct Config {
    /// `PROJECT_NAME`: shown in the API documentation.
    pub project_name: String,
    /// `ENVIRONMENT`.
    pub environment: Environment,
    /// `HOST`: the address to listen on.
    pub host: IpAddr,
    /// `PORT`.
    pub port: u16,
    /// `DATA_DIR`: where the default SQLite file and the development secret key live.
    pub data_dir: PathBuf,
    /// `DATABASE_URL`: `sqlite:` or `postgres://`. May carry a password.
    pub database_url: Secret,
    /// `DATABASE_POOL_SIZE`.
    pub database_pool_size: u32,
    /// `DATABASE_AUTO_MIGRATE`: apply migrations at start.
    pub database_auto_migrate: bool,
    /// `REDIS_URL`: unset means in-process equivalents.
    pub redis_url: Option<Secret>,
    /// `REDIS_KEY_PREFIX`: prepended to every Redis key and channel this service uses, so
    /// several deployments (or test runs) can share one Redis.
    pub redis_key_prefix: String,
    /// `SECRET_KEY`: signs the service's own tokens.
    pub secret_key: Secret,
    /// `BACKEND_CORS_ORIGINS`.
    pub cors_origins: CorsOrigins,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `RUST_LOG` when set, else `LOG_LEVEL`: an `EnvFilter` directive.
    pub log_filter: String,
    /// `REQUEST_TIMEOUT_SECONDS`: longer requests answer 504.
    pub request_timeout: Duration,
    /// `MAX_BODY_BYTES`: larger request bodies answer 413.
    pub max_body_bytes: usize,
    /// `SHUTDOWN_TIMEOUT_SECONDS`: how long in-flight requests may run after a stop signal.
    pub shutdown_timeout: Duration,
    /// `DOCS_ENABLED`: serve `/docs` and the OpenAPI documents.
    pub docs_enabled: bool,
    /// Own accounts and tokens.
    pub accounts: AccountSettings,
    /// Email delivery.
    pub mail: MailSettings,
    /// External identity providers whose tokens are accepted (`SUPABASE_*`, `CLERK_*`, `OAUTH_*`).
    pub identity: IdentityProviders,
    /// `RATE_LIMIT_*` and `TRUSTED_PROXIES`.
    pub rate_limit: RateLimitSettings,
    /// `OTEL_*` tracing export and `METRICS_TOKEN`.
    pub telemetry: TelemetrySettings,
    /// `API_*`: the default version and the deprecation schedule.
    pub api_versions: ApiVersionSettings,
    /// The realtime WebSocket endpoint.
    pub realtime: RealtimeSettings,
    /// Background jobs: workers, retries, leases, schedules, retention.
    pub jobs: JobSettings,
    /// The public contact form (`CONTACT_*`, `CAPTCHA_*`).
    pub contact: ContactSettings,
    /// Plans by store product (`STRIPE_PRICES`, `APPLE_PRODUCTS`, `GOOGLE_PRODUCTS`) and the
    /// billing pages' redirect origins.
    pub billing: BillingSettings,
    /// Inbound webhook secrets (`STRIPE_WEBHOOK_SECRETS`, `CLERK_WEBHOOK_SECRET`, `SUPABASE_WEBHOOK_SECRET`).
    pub webhooks: InboundWebhookSettings,
    /// `FLAGS_API_KEY`: a bearer key for the OFREP endpoints (`/ofrep/v1/…`), besides admin
    /// tokens; unset, only admin tokens are accepted there.
    pub flags_api_key: Option<Secret>,
    /// The in-app purchase stores (`APPLE_*`, `GOOGLE_PUBSUB_*`, `GOOGLE_PLAY_*`).
    pub stores: StoreSettings,
    /// Usage metering (`USAGE_*`).
    pub usage: UsageSettings,
    /// File storage (`STORAGE_PROVIDER`, `S3_*`, `FILES_*`).
    pub files: FileSettings,
    /// The AI gateway (`OPENAI_*`, `ANTHROPIC_*`, `GEMINI_*`, `AI_*`).
    pub ai: AiSettings,
}

/// Invalid configuration: every problem found, each naming its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {}", .problems.join("; "))]
pub struct ConfigError {
    /// `"VARIABLE: what is wrong"`, one per problem.
    pub problems: Vec<String>,
}

const DEV_CORS_ORIGINS: &str = "http://localhost:3000,http://localhost:5173,http://localhost:8000";
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;
const SECRET_KEY_FILE: &str = "secret_key";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from any variable lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut vars = Vars::new(&lookup);
        let environment = vars.parse("ENVIRONMENT", "development", |v| match v {
            "development" => Ok(Environment::Development),
            "production" => Ok(Environment::Production),
            "test" => Ok(Environment::Test),
            _ => Err("must be one of development, production, test".into()),
        });
        let data_dir = PathBuf::from(vars.string("DATA_DIR", "./data"));
        let default_db = format!("sqlite://{}/omnistack.db", data_dir.display());
        let database_url = vars.parse("DATABASE_URL", &default_db, |v| {
            omnistack_db::Engine::from_url(v)
                .map(|_| Secret::new(v))
                .ok_or_else(|| "must start with sqlite:, postgres:// or postgresql://".into())
        });
        let redis_url = vars.optional("REDIS_URL", |v| {
            if v.starts_with("redis://") || v.starts_with("rediss://") {
                Ok(Secret::new(v))
            } else {
                Err("must start with redis:// or rediss://".into())
            }
        });
        let secret_key = vars.optional("SECRET_KEY", |v| Ok(Secret::new(v)));
        let cors_default = if environment == Some(Environment::Production) { "" } else { DEV_CORS_ORIGINS };
        let cors_origins = vars.parse("BACKEND_CORS_ORIGINS", cors_default, parse::cors_origins);
        let log_format = vars.parse("LOG_FORMAT", "pretty", |v| match v {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be pretty or json".into()),
        });
        let log_filter = match lookup("RUST_LOG").filter(|v| !v.trim().is_empty()) {
            Some(filter) => Some(filter),
            None => vars.parse("LOG_LEVEL", "info", parse::log_level),
        };
        let production = environment == Some(Environment::Production);
        let accounts = accounts::accounts(&mut vars);
        let admin_email = accounts.bootstrap_admin.as_ref().map(|(email, _)| email.clone());
        let contact = contact::settings(&mut vars, admin_email.as_deref());
        let mail = mail::settings(&mut vars, production);
        // In production the API's map is not published unless asked for.
        let docs_default = if production { "false" } else { "true" };
        let realtime = realtime::settings(&mut vars);
        let billing = billing::settings(&mut vars, &accounts.frontend_url);
        let config = Config {
            billing,
            accounts,
            contact,
            mail,
            realtime,
            flags_api_key: vars.optional("FLAGS_API_KEY", parse_flags_api_key).flatten(),
            project_name: vars.string("PROJECT_NAME", "OmniStack"),
            host: vars.parse("HOST", "127.0.0.1", parse::host).unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: vars.parse("PORT", "8000", |v| parse::number(v, 1, 65535)).unwrap_or(8000) as u16,
            database_pool_size: vars.parse("DATABASE_POOL_SIZE", "10", |v| parse::number(v, 1, 1000)).unwrap_or(10)
                as u32,
            database_auto_migrate: vars.parse("DATABASE_AUTO_MIGRATE", "true", parse::boolean).unwrap_or(true),
            request_timeout: Duration::from_secs(
                vars.parse("REQUEST_TIMEOUT_SECONDS", "30", |v| parse::number(v, 1, 3600)).unwrap_or(30),
            ),
            max_body_bytes: vars
                .parse("MAX_BODY_BYTES", "1048576", |v| parse::number(v, 1024, 1 << 30))
                .unwrap_or(1 << 20) as usize,
            shutdown_timeout: Duration::from_secs(
                vars.parse("SHUTDOWN_TIMEOUT_SECONDS", "30", |v| parse::number(v, 0, 3600)).unwrap_or(30),
            ),
            docs_enabled: vars.parse("DOCS_ENABLED", docs_default, parse::boolean).unwrap_or(!production),
            identity: IdentityProviders::from_vars(&mut vars),
            jobs: jobs::settings(&mut vars),
            webhooks: webhooks::settings(&mut vars),
            stores: stores::settings(&mut vars),
            usage: usage::settings(&mut vars),
            files: files::settings(&mut vars, &data_dir),
            ai: ai::settings(&mut vars),
            rate_limit: rate_limit::settings(&mut vars),
            telemetry: telemetry::settings(&mut vars),
            api_versions: versions::settings(&mut vars),
            environment: environment.unwrap_or(Environment::Development),
            database_url: database_url.unwrap_or_else(|| Secret::new(&default_db)),
            redis_url: redis_url.flatten(),
            redis_key_prefix: vars.parse("REDIS_KEY_PREFIX", "omnistack:", parse::key_prefix).unwrap_or_default(),
            secret_key: Secret::new(""),
            cors_origins: cors_origins.unwrap_or(CorsOrigins::List(Vec::new())),
            log_format: log_format.unwrap_or(LogFormat::Pretty),
            log_filter: log_filter.unwrap_or_else(|| "info".into()),
            data_dir,
        };
        let telemetry = &config.telemetry;
        if production && telemetry.metrics_enabled && telemetry.metrics_token.is_none() && !telemetry.metrics_public {
            vars.problem(
                "METRICS_TOKEN",
                "is required in production to protect /metrics (or set METRICS_PUBLIC=true to serve the \
                 metrics without a token, or METRICS_ENABLED=false)",
            );
        }
        let mut problems = vars.into_problems();
        if !problems.is_empty() {
            // A missing or short production key is reported with the rest; only the
            // development key file waits for an otherwise valid configuration.
            if production && let Err(problem) = config.resolve_secret_key(secret_key.flatten()) {
                problems.push(problem);
            }
            return Err(ConfigError { problems });
        }
        match config.resolve_secret_key(secret_key.flatten()) {
            Ok(secret_key) => Ok(Config { secret_key, ..config }),
            Err(problem) => {
                problems.push(problem);
                Err(ConfigError { problems })
            }
        }
    }

    /// `SECRET_KEY` as given; in production it must be at least 32 bytes. Elsewhere a missing
    /// key is generated once and kept in `DATA_DIR` so tokens survive restarts.
    fn resolve_secret_key(&self, given: Option<Secret>) -> Result<Secret, String> {
        if let Some(key) = given.filter(|k| !k.expose().is_empty()) {
            if self.environment == Environment::Production && key.expose().len() < MIN_PRODUCTION_SECRET_BYTES {
                return Err(format!("SECRET_KEY: must be at least {MIN_PRODUCTION_SECRET_BYTES} bytes in production"));
            }
            return Ok(key);
        }
        if self.environment == Environment::Production {
            return Err(
                "SECRET_KEY: is required in production (at least 32 random bytes, e.g. `openssl rand -hex 32`)".into(),
            );
        }
        secret::load_or_create_key(&self.data_dir.join(SECRET_KEY_FILE))
            .map_err(|err| format!("SECRET_KEY: is unset and no key could be kept in DATA_DIR ({err})"))
    }

    /// The address the server listens on.
    pub fn bind_address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.host, self.port)
    }

    /// Every setting as `(VARIABLE, value)`, secrets redacted, for `omnistack config`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let cors = match &self.cors_origins {
            CorsOrigins::Any => "*".to_owned(),
            CorsOrigins::List(list) => list.join(","),
        };
        let mut described = vec![
            ("PROJECT_NAME", self.project_name.clone()),
            ("ENVIRONMENT", self.environment.as_str().into()),
            ("HOST", self.host.to_string()),
            ("PORT", self.port.to_string()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("DATABASE_URL", redact_url(self.database_url.expose())),
            ("DATABASE_POOL_SIZE", self.database_pool_size.to_string()),
            ("DATABASE_AUTO_MIGRATE", self.database_auto_migrate.to_string()),
            ("REDIS_URL", self.redis_url.as_ref().map(|u| redact_url(u.expose())).unwrap_or_default()),
            ("REDIS_KEY_PREFIX", self.redis_key_prefix.clone()),
            ("SECRET_KEY", self.secret_key.to_string()),
            ("BACKEND_CORS_ORIGINS", cors),
            ("LOG_FORMAT", format!("{:?}", self.log_format).to_lowercase()),
            ("LOG_LEVEL", self.log_filter.clone()),
            ("REQUEST_TIMEOUT_SECONDS", self.request_timeout.as_secs().to_string()),
            ("MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("SHUTDOWN_TIMEOUT_SECONDS", self.shutdown_timeout.as_secs().to_string()),
            ("DOCS_ENABLED", self.docs_enabled.to_string()),
            ("JWT_ISSUER", self.accounts.jwt_issuer.clone()),
            ("ACCESS_TOKEN_EXPIRE_MINUTES", (self.accounts.access_token_ttl.as_secs() / 60).to_string()),
            ("REFRESH_TOKEN_EXPIRE_DAYS", (self.accounts.refresh_token_ttl.as_secs() / 86_400).to_string()),
            ("FRONTEND_URL", self.accounts.frontend_url.clone()),
            ("ADMIN_EMAIL", self.accounts.bootstrap_admin.as_ref().map(|(e, _)| e.clone()).unwrap_or_default()),
            ("ADMIN_PASSWORD", self.accounts.bootstrap_admin.as_ref().map(|(_, p)| p.to_string()).unwrap_or_default()),
        ];
        described.extend(self.mail.describe());
        described.extend(self.identity.describe());
        described.extend(self.rate_limit.describe());
        described.extend(self.telemetry.describe());
        described.extend(self.api_versions.describe());
        described.extend(self.realtime.describe());
        described.extend(self.jobs.describe());
        described.extend(self.contact.describe());
        described.extend(self.webhooks.describe());
        described.push(("FLAGS_API_KEY", self.flags_api_key.as_ref().map(ToString::to_string).unwrap_or_default()));
        described.extend(self.billing.describe());
        described.extend(self.stores.describe());
        described.extend(self.usage.describe());
        described.extend(self.files.describe());
        described.extend(self.ai.describe());
        described
    }
}

#[cfg(test)]
mod tests;

/// `FLAGS_API_KEY`: at least 32 characters, so it cannot be guessed.
fn parse_flags_api_key(value: &str) -> Result<Secret, String> {
    if value.len() < 32 {
        return Err("must be at least 32 characters (e.g. `openssl rand -hex 24`)".into());
    }
    Ok(Secret::new(value))
}
