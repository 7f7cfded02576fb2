use std::collections::HashMap;

use super::*;

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let map: HashMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain([("DATA_DIR".to_owned(), data_dir)]).collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults_run_on_embedded_sqlite_on_localhost_8000() {
    let config = load(&[]).unwrap();
    assert_eq!(config.bind_address().to_string(), "127.0.0.1:8000");
    assert!(config.database_url.expose().starts_with("sqlite://"));
    assert!(config.database_url.expose().ends_with("/omnistack.db"));
    assert_eq!(config.environment, Environment::Development);
    assert_eq!(config.redis_url, None);
    assert_eq!(config.max_body_bytes, 1 << 20);
    assert_eq!(config.request_timeout, Duration::from_secs(30));
    assert!(config.database_auto_migrate && config.docs_enabled);
    assert_eq!(config.log_filter, "info");
}

#[test]
fn every_problem_is_reported_naming_its_variable() {
    let err = load(&[("PORT", "0"), ("DATABASE_URL", "mysql://x"), ("DATABASE_POOL_SIZE", "-1")]).unwrap_err();
    let message = err.to_string();
    for name in ["PORT:", "DATABASE_URL:", "DATABASE_POOL_SIZE:"] {
        assert!(message.contains(name), "{name} in {message}");
    }
    assert_eq!(err.problems.len(), 3);
}

#[test]
fn cors_origins_accept_a_comma_list_or_a_json_list() {
    let expected = CorsOrigins::List(vec!["https://a.example".into(), "http://localhost:3000".into()]);
    let comma = load(&[("BACKEND_CORS_ORIGINS", "https://a.example/, http://localhost:3000")]).unwrap();
    assert_eq!(comma.cors_origins, expected);
    let json = load(&[("BACKEND_CORS_ORIGINS", r#"["https://a.example","http://localhost:3000"]"#)]).unwrap();
    assert_eq!(json.cors_origins, expected);
    assert_eq!(load(&[("BACKEND_CORS_ORIGINS", "*")]).unwrap().cors_origins, CorsOrigins::Any);
    assert!(load(&[("BACKEND_CORS_ORIGINS", "not-an-origin")]).is_err());
    assert!(load(&[("BACKEND_CORS_ORIGINS", "https://a.example/path")]).is_err());
}

#[test]
fn production_has_no_default_cors_origins_and_needs_a_long_secret() {
    let config = production_with(&[]).unwrap();
    assert_eq!(config.cors_origins, CorsOrigins::List(vec![]));
    let short = production_with(&[("SECRET_KEY", "0123456789abcdef0123456789abcde")]).unwrap_err();
    assert!(short.to_string().contains("SECRET_KEY: must be at least 32 bytes"));
}

/// A production configuration that starts: a long key, a mail relay, a metrics token.
const PRODUCTION: [(&str, &str); 4] = [
    ("ENVIRONMENT", "production"),
    ("SECRET_KEY", "0123456789abcdef0123456789abcdef"),
    ("SMTP_HOST", "smtp.example"),
    ("METRICS_TOKEN", "scrape-secret"),
];

fn production_with(changes: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
    let mut vars: Vec<(&str, &str)> =
        PRODUCTION.iter().filter(|(name, _)| !changes.iter().any(|(changed, _)| changed == name)).copied().collect();
    vars.extend(changes.iter().filter(|(_, value)| !value.is_empty()));
    load(&vars)
}

#[test]
fn production_reports_a_missing_secret_key_together_with_every_other_problem() {
    let err = load(&[("ENVIRONMENT", "production")]).unwrap_err().to_string();
    for name in ["SECRET_KEY: is required in production", "EMAIL_PROVIDER:", "METRICS_TOKEN:"] {
        assert!(err.contains(name), "{name} in {err}");
    }
    let short = load(&[("ENVIRONMENT", "production"), ("SECRET_KEY", "short")]).unwrap_err().to_string();
    assert!(short.contains("SECRET_KEY: must be at least 32 bytes"), "{short}");
}

#[test]
fn production_refuses_to_start_without_a_mail_provider_unless_the_console_is_chosen() {
    let err = production_with(&[("SMTP_HOST", "")]).unwrap_err().to_string();
    assert!(err.contains("EMAIL_PROVIDER: production needs a mail provider"), "{err}");
    let console = production_with(&[("SMTP_HOST", ""), ("EMAIL_PROVIDER", "console")]).unwrap();
    assert!(matches!(console.mail.provider, MailProvider::Console { redact_tokens: true }));
    assert!(matches!(production_with(&[]).unwrap().mail.provider, MailProvider::Smtp(_)));
    let err = production_with(&[("SMTP_HOST", ""), ("EMAIL_PROVIDER", "smtp")]).unwrap_err().to_string();
    assert!(err.contains("SMTP_HOST: is required when EMAIL_PROVIDER=smtp"), "{err}");
    assert!(load(&[("EMAIL_PROVIDER", "carrier-pigeon")]).unwrap_err().to_string().contains("EMAIL_PROVIDER:"));
    // Outside production the console is the default and prints links whole.
    assert!(matches!(load(&[]).unwrap().mail.provider, MailProvider::Console { redact_tokens: false }));
}

#[test]
fn http_mail_providers_need_their_api_key_and_take_a_base_url() {
    let err = production_with(&[("SMTP_HOST", ""), ("EMAIL_PROVIDER", "resend")]).unwrap_err().to_string();
    assert!(err.contains("RESEND_API_KEY: is required when EMAIL_PROVIDER=resend"), "{err}");
    let err = load(&[("EMAIL_PROVIDER", "sendgrid"), ("RESEND_API_KEY", "re_1")]).unwrap_err().to_string();
    assert!(err.contains("SENDGRID_API_KEY: is required when EMAIL_PROVIDER=sendgrid"), "{err}");
    let resend = production_with(&[("SMTP_HOST", ""), ("EMAIL_PROVIDER", "resend"), ("RESEND_API_KEY", "re_secret")])
        .unwrap()
        .mail;
    let MailProvider::Resend(api) = &resend.provider else { panic!("{:?}", resend.provider) };
    assert_eq!((api.api_key.expose(), api.base_url.as_str()), ("re_secret", "https://api.resend.com"));
    let described: HashMap<_, _> = resend.describe().into_iter().collect();
    assert_eq!(described["RESEND_API_KEY"], "[REDACTED]");
    assert_eq!(described["EMAIL_PROVIDER"], "resend");
    let sendgrid = load(&[
        ("EMAIL_PROVIDER", "sendgrid"),
        ("SENDGRID_API_KEY", "SG.key"),
        ("SENDGRID_API_URL", "http://127.0.0.1:9999/"),
    ])
    .unwrap()
    .mail;
    let MailProvider::SendGrid(api) = &sendgrid.provider else { panic!("{:?}", sendgrid.provider) };
    assert_eq!(api.base_url, "http://127.0.0.1:9999");
    let err = load(&[("RESEND_API_URL", "ftp://mail")]).unwrap_err().to_string();
    assert!(err.contains("RESEND_API_URL: must be an http(s) URL"), "{err}");
    // A key alone does not choose its provider: EMAIL_PROVIDER does.
    assert!(matches!(load(&[("RESEND_API_KEY", "re_1")]).unwrap().mail.provider, MailProvider::Console { .. }));
}

#[test]
fn production_keeps_docs_off_and_metrics_behind_a_token_unless_told_otherwise() {
    let config = production_with(&[]).unwrap();
    assert!(!config.docs_enabled);
    assert!(production_with(&[("DOCS_ENABLED", "true")]).unwrap().docs_enabled);
    let err = production_with(&[("METRICS_TOKEN", "")]).unwrap_err().to_string();
    assert!(err.contains("METRICS_TOKEN: is required in production"), "{err}");
    assert!(production_with(&[("METRICS_TOKEN", ""), ("METRICS_PUBLIC", "true")]).is_ok());
    assert!(production_with(&[("METRICS_TOKEN", ""), ("METRICS_ENABLED", "false")]).is_ok());
    assert!(load(&[]).unwrap().docs_enabled, "development serves the docs");
}

#[test]
fn development_generates_a_secret_key_once_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().display().to_string();
    let lookup = |name: &str| (name == "DATA_DIR").then(|| data_dir.clone());
    let first = Config::from_lookup(lookup).unwrap().secret_key;
    let second = Config::from_lookup(lookup).unwrap().secret_key;
    assert_eq!(first.expose().len(), 64);
    assert_eq!(first, second);
}

#[test]
fn rust_log_wins_over_log_level_and_levels_are_validated() {
    assert_eq!(load(&[("LOG_LEVEL", "WARNING")]).unwrap().log_filter, "warn");
    assert_eq!(load(&[("LOG_LEVEL", "debug"), ("RUST_LOG", "omnistack=trace")]).unwrap().log_filter, "omnistack=trace");
    assert!(load(&[("LOG_LEVEL", "loud")]).is_err());
}

#[test]
fn secrets_never_print() {
    let config = load(&[("SECRET_KEY", "hunter2-hunter2"), ("DATABASE_URL", "postgres://u:pw@h/db")]).unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2") && !debug.contains(":pw@"), "{debug}");
    let described: HashMap<_, _> = config.describe().into_iter().collect();
    assert_eq!(described["DATABASE_URL"], "postgres://u:***@h/db");
    assert_eq!(described["SECRET_KEY"], "[REDACTED]");
}

#[test]
fn urls_are_redacted_only_where_they_carry_a_password() {
    assert_eq!(redact_url("redis://:pw@cache:6379/0"), "redis://:***@cache:6379/0");
    assert_eq!(redact_url("postgres://user@host/db"), "postgres://user@host/db");
    assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    assert_eq!(redact_url("postgres://u:p@ss@host/db?x=@"), "postgres://u:***@host/db?x=@");
}

#[test]
fn env_example_documents_every_variable() {
    let example = include_str!("../../../../.env.example");
    let config = load(&[]).unwrap();
    for (name, _) in config.describe() {
        assert!(example.lines().any(|line| line.starts_with(&format!("{name}="))), "{name} missing from .env.example");
    }
}

#[test]
fn the_redis_key_prefix_defaults_and_is_checked() {
    assert_eq!(load(&[]).unwrap().redis_key_prefix, "omnistack:");
    assert_eq!(load(&[("REDIS_KEY_PREFIX", "tenant-a:")]).unwrap().redis_key_prefix, "tenant-a:");
    let err = load(&[("REDIS_KEY_PREFIX", "has space")]).unwrap_err();
    assert!(err.to_string().contains("REDIS_KEY_PREFIX:"), "{err}");
}

#[test]
fn the_flags_api_key_is_optional_long_and_never_printed() {
    assert!(load(&[]).unwrap().flags_api_key.is_none());
    let key = "k".repeat(32);
    let config = load(&[("FLAGS_API_KEY", key.as_str())]).unwrap();
    assert_eq!(config.flags_api_key.as_ref().map(|k| k.expose()), Some(key.as_str()));
    let described: HashMap<_, _> = config.describe().into_iter().collect();
    assert_eq!(described["FLAGS_API_KEY"], "[REDACTED]");
    assert!(!format!("{config:?}").contains(&key));
    let err = load(&[("FLAGS_API_KEY", "short")]).unwrap_err();
    assert!(err.to_string().contains("FLAGS_API_KEY: must be at least 32 characters"), "{err}");
}
