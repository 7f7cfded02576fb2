//! Test support, used by the test suites and never by the server: a fresh database per test: a SQLite file in a temporary directory, or a PostgreSQL schema
//! on `TEST_DATABASE_URL`, dropped when the test ends.

use std::path::Path;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tempfile::TempDir;

/// `TEST_DATABASE_URL` when set: tests then run on PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|url| !url.trim().is_empty())
}

/// `TEST_REDIS_URL` when set: tests then run with Redis.
pub fn redis_url() -> Option<String> {
    std::env::var("TEST_REDIS_URL").ok().filter(|url| !url.trim().is_empty())
}

/// One test's database.
pub struct TestDatabase {
    url: String,
    dir: TempDir,
    pg: Option<(String, String)>,
}

impl TestDatabase {
    /// Creates an empty database (migrations are the application's job).
    pub async fn create() -> TestDatabase {
        let dir = tempfile::tempdir().expect("temporary directory");
        match postgres_url() {
            Some(base) => {
                let schema = format!("test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::connect(&base)
                    .await
                    .unwrap_or_else(|err| panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable: {err}"));
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut conn)
                    .await
                    .expect("create schema");
                let separator = if base.contains('?') { '&' } else { '?' };
                // A test database is thrown away: commits need not wait for the WAL to reach the disk
                // (a crash of the server under test still loses nothing PostgreSQL acknowledged).
                let url =
                    format!("{base}{separator}options=-c%20search_path%3D{schema}%20-c%20synchronous_commit%3Doff");
                TestDatabase { url, dir, pg: Some((base, schema)) }
            }
            None => {
                let url = format!("sqlite://{}/test.db", dir.path().display());
                TestDatabase { url, dir, pg: None }
            }
        }
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A private directory for this test (`DATA_DIR`).
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((base, schema)) = self.pg.take() else { return };
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&base).await?;
                // The test is over: a session still holding a lock in its schema (a transaction
                // dropped just before the end, whose rollback the pool never got to send) would
                // make the DROP wait forever.
                sqlx::query(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l
                     JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&mut conn)
                .await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&mut conn)
                    .await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        });
        if let Ok(Err(err)) = cleanup.join() {
            eprintln!("warning: could not drop test schema: {err}");
        }
    }
}

/// Runs one SQL statement as written and returns the rows it changed: for tests that tamper
/// with stored rows behind the service's back (the audit chain's tamper tests).
pub async fn execute_unchecked(db: &crate::Db, sql: &str) -> crate::Result<u64> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    Ok(match db {
        crate::Db::Postgres(pool) => sqlx::query(sql).execute(pool).await?.rows_affected(),
        crate::Db::Sqlite(pool, _) => sqlx::query(sql).execute(pool).await?.rows_affected(),
    })
}
