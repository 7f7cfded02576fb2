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
    let key = "k".repeat(32);
    let config = load(&[("ENVIRONMENT", "production"), ("SECRET_KEY", &key)]).unwrap();
    assert_eq!(config.cors_origins, CorsOrigins::List(vec![]));
    let short = load(&[("ENVIRONMENT", "production"), ("SECRET_KEY", &key[..31])]).unwrap_err();
    assert!(short.to_string().contains("SECRET_KEY: must be at least 32 bytes"));
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
