//! The `omnistack` binary as a child process, for tests that need a real process: signals,
//! configuration errors, span export at shutdown, a second instance that can die.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The binary with a clean environment (only `PATH`) plus `vars`, run in `dir`.
pub fn omnistack(dir: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_omnistack"));
    cmd.env_clear().current_dir(dir).env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    cmd
}

/// A port nothing listens on at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits, at most 20 s, until `url` gets an HTTP answer (any status).
pub async fn wait_until_up(url: &str) {
    omnistack::install_crypto_provider();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server at {url} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
