//! Logging: pretty lines in development, one JSON object per line with `LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Noisy dependencies stay at `warn` unless `RUST_LOG` says otherwise.
const QUIET_DEPENDENCIES: &str = "sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,tower_http=warn,redis=warn";

/// Installs the global subscriber. Does nothing when one is already installed.
pub fn init_logging(config: &Config) {
    let directives = if config.log_filter.contains('=') {
        config.log_filter.clone()
    } else {
        format!("{},{QUIET_DEPENDENCIES}", config.log_filter)
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
