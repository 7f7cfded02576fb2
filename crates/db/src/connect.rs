//! Pools for both engines, chosen from the `DATABASE_URL` scheme, and migrations.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::Result;
use crate::inline::InlineReads;

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A connection pool on one of the two supported engines.
#[derive(Clone, Debug)]
pub enum Db {
    /// PostgreSQL (`postgres://` or `postgresql://`).
    Postgres(PgPool),
    /// Embedded SQLite in WAL mode (`sqlite:`), the default, with its inline readers (see
    /// [`crate::inline`]).
    Sqlite(SqlitePool, InlineReads),
}

/// Which engine a [`Db`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// SQLite.
    Sqlite,
}

impl Engine {
    /// The engine named by a database URL's scheme, if it is one we support.
    pub fn from_url(url: &str) -> Option<Engine> {
        let scheme = url.split_once(':')?.0;
        match scheme {
            "postgres" | "postgresql" => Some(Engine::Postgres),
            "sqlite" => Some(Engine::Sqlite),
            _ => None,
        }
    }

    /// The OpenTelemetry `db.system` name of the engine.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::Sqlite => "sqlite",
        }
    }
}

/// How to open a pool.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// Maximum number of connections.
    pub max_connections: u32,
    /// How long a caller waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { max_connections: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Connection counts of a pool, for readiness and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

impl Db {
    /// Opens a pool for `url`. SQLite files (and their folder) are created when missing and
    /// run in WAL mode with foreign keys on. PostgreSQL connects lazily, so a server can
    /// start while its database is still coming up and report that in readiness.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Db> {
        match Engine::from_url(url) {
            Some(Engine::Postgres) => {
                let connect = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_lazy_with(connect);
                Ok(Db::Postgres(pool))
            }
            Some(Engine::Sqlite) => {
                let connect = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(5));
                let file = connect.get_filename().to_path_buf();
                if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
                    && file != Path::new(":memory:")
                {
                    std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
                }
                // No liveness ping on every acquire: an embedded database cannot drop a
                // connection the way a server can, and the ping is a round trip to the
                // connection's worker thread before each query.
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .test_before_acquire(false)
                    .connect_with(connect)
                    .await?;
                Ok(Db::Sqlite(pool, InlineReads::open(&file)))
            }
            None => Err(sqlx::Error::Configuration(
                "DATABASE_URL must start with postgres://, postgresql:// or sqlite:".into(),
            )
            .into()),
        }
    }

    /// The engine this pool runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Db::Postgres(_) => Engine::Postgres,
            Db::Sqlite(..) => Engine::Sqlite,
        }
    }

    /// Applies the engine's pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
            Db::Sqlite(pool, _) => SQLITE_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<()> {
        crate::on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Connection counts of the pool.
    pub fn stats(&self) -> PoolStats {
        crate::on_pool!(self, |pool| PoolStats {
            size: pool.size(),
            idle: pool.num_idle() as u32,
            max: pool.options().get_max_connections(),
        })
    }

    /// How long it takes to get a connection from the pool right now (the connection is
    /// returned at once).
    pub async fn acquire_probe(&self) -> Result<std::time::Duration> {
        let started = std::time::Instant::now();
        crate::on_pool!(self, |pool| drop(pool.acquire().await?));
        Ok(started.elapsed())
    }

    /// Whether [`Db::close`] was called.
    pub fn is_closed(&self) -> bool {
        crate::on_pool!(self, |pool| pool.is_closed())
    }

    /// Closes every connection; later calls fail.
    pub async fn close(&self) {
        crate::on_pool!(self, |pool| pool.close().await)
    }
}
