//! The `omnistack` binary: subcommands, configuration errors and signals.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::binary::{free_port, omnistack};

fn run(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    omnistack(dir, vars).args(args).output().expect("binary runs")
}

#[test]
fn version_and_help_are_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("omnistack {}", env!("CARGO_PKG_VERSION")));
    let help = String::from_utf8_lossy(&run(dir.path(), &["--help"], &[]).stdout).to_string();
    for sub in ["serve", "migrate", "config"] {
        assert!(help.contains(sub), "{sub} in help");
    }
}

#[test]
fn config_prints_every_setting_with_secrets_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["config"],
        &[
            ("SECRET_KEY", "super-secret-value-that-must-not-print"),
            ("DATABASE_URL", "postgres://app:db-password@db.internal:5432/app"),
            ("REDIS_URL", "redis://:redis-password@cache:6379/0"),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for secret in ["super-secret-value", "db-password", "redis-password"] {
        assert!(!text.contains(secret), "{secret} printed");
    }
    assert!(text.contains("DATABASE_URL=postgres://app:***@db.internal:5432/app"));
    assert!(text.contains("SECRET_KEY=[REDACTED]"));
    for name in ["HOST=127.0.0.1", "PORT=8000", "ENVIRONMENT=development", "MAX_BODY_BYTES=", "LOG_FORMAT=pretty"] {
        assert!(text.contains(name), "{name}");
    }
}

#[test]
fn email_preview_prints_a_template_rendered_with_sample_data() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [("PROJECT_NAME", "Acme <Cloud>"), ("FRONTEND_URL", "https://app.acme.test")];
    for name in ["welcome", "verify_email", "password_reset", "notification", "contact_admin"] {
        let out = run(dir.path(), &["email", "preview", name], &vars);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("Subject: "), "{name}: {text}");
        assert!(text.contains("--- text/plain ---") && text.contains("--- text/html ---"), "{name}");
        assert!(text.contains("Acme <Cloud>") && text.contains("Acme &lt;Cloud&gt;"), "{name}: both bodies");
        assert!(text.contains("https://app.acme.test"), "{name}");
    }
    let reset = run(dir.path(), &["email", "preview", "password_reset"], &vars);
    let text = String::from_utf8_lossy(&reset.stdout);
    assert!(text.starts_with("Subject: Reset your Acme <Cloud> password\n"), "{text}");
    assert!(text.contains("/reset-password?token="), "{text}");
}

#[test]
fn email_preview_of_an_unknown_template_exits_2_listing_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["email", "preview", "newsletter"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for name in [
        "welcome",
        "verify_email",
        "password_reset",
        "notification",
        "contact_admin",
        "contact_confirmation",
        "daily_report",
        "export_ready",
        "payment_failed",
    ] {
        assert!(err.contains(name), "{name} in {err}");
    }
    assert!(err.contains("newsletter"), "{err}");
}

#[test]
fn invalid_configuration_stops_the_start_naming_each_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["serve"], &[("PORT", "eighty"), ("LOG_FORMAT", "xml")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PORT:") && err.contains("LOG_FORMAT:"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one message: {err}");
}

#[test]
fn production_requires_a_long_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = run(dir.path(), &["serve"], &[("ENVIRONMENT", "production")]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("SECRET_KEY: is required in production"));
    let short = run(dir.path(), &["serve"], &[("ENVIRONMENT", "production"), ("SECRET_KEY", "short")]);
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 32 bytes"));
}

#[test]
fn migrate_creates_the_default_sqlite_database_under_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/omnistack.db").exists());
    // The development key is generated once and kept.
    let key = std::fs::read_to_string(dir.path().join("data/secret_key")).unwrap();
    assert_eq!(key.len(), 64);
    assert!(run(dir.path(), &["migrate"], &[]).status.success(), "migrating twice is a no-op");
    assert_eq!(std::fs::read_to_string(dir.path().join("data/secret_key")).unwrap(), key);
}

#[test]
fn sigterm_stops_the_server_gracefully_with_exit_code_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = omnistack(dir.path(), &[("PORT", &port.to_string()), ("LOG_FORMAT", "json")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/v1/public/health");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tcp::get(&url).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let logs = String::from_utf8_lossy(&out.stdout);
    let first = logs.lines().next().unwrap();
    assert!(first.contains(&format!("http://127.0.0.1:{port}/docs")), "first log line names the docs: {first}");
    assert!(logs.contains("\"http.route\":\"/api/v1/public/health\""), "access log line: {logs}");
    assert!(logs.contains("stopped"));
}

/// Plain-TCP GET, enough to poll a local health endpoint from a synchronous test.
mod tcp {
    use std::io::{Read, Write};

    pub fn get(url: &str) -> std::io::Result<String> {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host)?;
        write!(stream, "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    }
}

#[test]
fn users_create_and_set_role_bootstrap_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let created = run(
        dir.path(),
        &["users", "create", "--email", "Boss@Example.com", "--password", "bootstrap-pass", "--role", "super_admin"],
        &[],
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("created boss@example.com"));

    let again =
        run(dir.path(), &["users", "create", "--email", "boss@example.com", "--password", "bootstrap-pass"], &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let demoted = run(dir.path(), &["users", "set-role", "--email", "boss@example.com", "--role", "admin"], &[]);
    assert!(String::from_utf8_lossy(&demoted.stdout).contains("with role admin"));

    let bad_role = run(dir.path(), &["users", "set-role", "--email", "boss@example.com", "--role", "root"], &[]);
    assert_eq!(bad_role.status.code(), Some(2), "clap rejects an unknown role");
    let short = run(dir.path(), &["users", "create", "--email", "x@example.com", "--password", "short"], &[]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("password: must be 8 to 128 characters"));
}

#[test]
fn the_example_environment_file_is_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
    std::fs::copy(example, dir.path().join(".env")).unwrap();
    let out = run(dir.path(), &["config"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("JOBS_SCHEDULE_CLEANUP=0 3 * * *"), "{text}");
}
