//! Test harness: the real OmniStack server on `127.0.0.1:0` against a fresh database.
//!
//! Databases: SQLite in a temporary directory by default; PostgreSQL when
//! `TEST_DATABASE_URL` is set (each test gets its own schema, dropped afterwards).
//! `TEST_REDIS_URL` adds Redis, under a key prefix of its own per server (unless the test sets
//! `REDIS_KEY_PREFIX`, e.g. to let two servers share it). [`idp::FakeIdp`] stands in for an
//! external identity provider; [`ai::FakeAi`] for the AI providers.

pub mod ai;
mod client;
pub mod idp;
mod mail;
mod pip;
pub mod s3;
mod socket;
pub mod stripe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use omnistack::app::{self, App};
use omnistack::config::Config;
use omnistack::jobs::worker::Workers;
use omnistack::jobs::{JobKind, Registry};
use omnistack::state::AppState;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use client::{TestClient, TestResponse};
pub use mail::{MailSink, SentMail};
pub use omnistack_db::testing::{TestDatabase, postgres_url, redis_url};
pub use socket::{WsClient, refused_handshake};

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// A client for this server.
    pub client: TestClient,
    /// The server's state (database pool, configuration).
    pub state: AppState,
    /// Every email the server sent (over real SMTP).
    pub mail: MailSink,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    workers: Option<Workers>,
    _database: TestDatabase,
}

/// Builds a [`TestApp`] with extra configuration or routes.
#[derive(Default)]
pub struct TestAppBuilder {
    vars: HashMap<String, String>,
    routes: Option<Router<AppState>>,
    kinds: Vec<Box<dyn FnOnce(Registry) -> Registry>>,
}

impl TestAppBuilder {
    /// Sets a configuration variable (as if it were in the environment).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Shares `other`'s database, secret key and Redis key prefix: a second instance of the
    /// same deployment (tokens and accounts are valid on both).
    pub fn sharing(self, other: &TestApp) -> Self {
        let config = &other.state.config;
        self.env("DATABASE_URL", config.database_url.expose())
            .env("SECRET_KEY", config.secret_key.expose())
            .env("REDIS_KEY_PREFIX", &config.redis_key_prefix)
    }

    /// Serves these routes too, inside the application's layers (probes for panics, slow
    /// handlers, body parsing).
    pub fn routes(mut self, router: Router<AppState>) -> Self {
        self.routes = Some(router);
        self
    }

    /// Runs job kind `kind` too (a test's own: one that fails, one that counts its runs).
    pub fn job_kind<K: JobKind>(mut self, kind: K) -> Self {
        self.kinds.push(Box::new(move |registry| registry.with(kind)));
        self
    }

    /// Creates the database, builds the application and starts serving.
    pub async fn spawn(self) -> TestApp {
        omnistack::install_crypto_provider();
        let database = TestDatabase::create().await;
        let mail = MailSink::start().await;
        let mut vars: HashMap<String, String> = HashMap::from([
            ("ENVIRONMENT".into(), "test".into()),
            ("SECRET_KEY".into(), format!("test-secret-{}", uuid::Uuid::new_v4().simple())),
            ("DATABASE_URL".into(), database.url().to_owned()),
            ("DATABASE_POOL_SIZE".into(), "5".into()),
            ("DATA_DIR".into(), database.data_dir().display().to_string()),
            ("BACKEND_CORS_ORIGINS".into(), "http://allowed.example".into()),
            ("SHUTDOWN_TIMEOUT_SECONDS".into(), "5".into()),
            ("SMTP_HOST".into(), "127.0.0.1".into()),
            ("SMTP_PORT".into(), mail.port.to_string()),
            ("SMTP_TLS".into(), "false".into()),
            ("EMAIL_FROM".into(), "OmniStack Test <test@omnistack.test>".into()),
            ("REDIS_KEY_PREFIX".into(), format!("omnistack-test-{}:", uuid::Uuid::new_v4().simple())),
            // No schedules: a tick falling in the look-back when a test starts (hourly, or in
            // the quarter hour after 03:00 and 09:00 UTC) would put a job in the tests that
            // count jobs. The tests of scheduled jobs set or run them themselves.
            ("JOBS_SCHEDULE_FILES_CLEANUP".into(), "off".into()),
            ("JOBS_SCHEDULE_DAILY_REPORT".into(), "off".into()),
            ("JOBS_SCHEDULE_CLEANUP".into(), "off".into()),
        ]);
        if let Some(url) = redis_url() {
            vars.insert("REDIS_URL".into(), url);
            vars.insert("REDIS_KEY_PREFIX".into(), format!("omnistack-test-{}:", uuid::Uuid::new_v4().simple()));
        }
        vars.extend(self.vars);
        let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration is valid");
        let grace = config.shutdown_timeout;
        let registry = self.kinds.into_iter().fold(Registry::standard(), |registry, add| add(registry));
        let app = App::build_with(config, self.routes.unwrap_or_default(), registry).await.expect("application builds");
        let router = app.router;
        let realtime = app.state.realtime.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(
            listener,
            router,
            realtime,
            async move {
                let _ = stopped.await;
            },
            grace,
        ));
        TestApp {
            addr,
            client: TestClient::new(format!("http://{addr}")),
            state: app.state,
            workers: Some(app.workers),
            mail,
            stop: Some(stop),
            server: Some(server),
            _database: database,
        }
    }
}

impl TestApp {
    /// A server with the default test configuration.
    pub async fn spawn() -> TestApp {
        TestApp::builder().spawn().await
    }

    /// A builder for a server with extra configuration.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// The full URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        self.client.url(path)
    }

    /// The `ws://` URL of `path` on this server.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Registers an account and returns the token response body.
    pub async fn register(&self, email: &str, password: &str) -> serde_json::Value {
        let body = serde_json::json!({"email": email, "password": password, "full_name": "Test User"});
        let res = self.client.post_json("/api/v1/public/auth/register", &body).await;
        assert_eq!(res.status, 201, "registration failed: {}", res.text);
        res.json()
    }

    /// Registers a fresh account and returns a client that sends its access token.
    pub async fn signed_in_client(&self) -> (TestClient, serde_json::Value) {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let session = self.register(&email, "correct-horse-battery").await;
        let token = session["access_token"].as_str().expect("access token").to_owned();
        (self.client.with_token(&token), session)
    }

    /// Sends the stop signal without waiting (graceful shutdown begins).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and its job workers gracefully and waits (at most 10 s) for them to
    /// finish; the database stays, for a test to look at what the stop left.
    pub async fn stop(&mut self) -> std::io::Result<()> {
        self.begin_shutdown();
        if let Some(workers) = self.workers.take() {
            workers.shutdown().await;
        }
        let server = self.server.take().expect("server is running");
        let stopped = tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stops within 10 s")
            .expect("server task did not panic");
        // As `omnistack serve` does: the last usage counts are written before it exits.
        self.state.usage.flush().await.expect("the last usage counts are written");
        stopped
    }

    /// [`TestApp::stop`], then drops the database.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.stop().await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.state.realtime.begin_shutdown();
        self.begin_shutdown();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
