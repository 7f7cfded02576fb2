//! A transaction that several `omnistack_db` calls share, so a service can write its rows and
//! the job (or audit entry) they cause in one commit.
//!
//! Functions that may run inside a transaction take a [`Conn`]: pass `&db` to run alone or
//! `&mut tx` to join a transaction. Their bodies are written once and run through [`on_conn!`].
//!
//! On SQLite a transaction starts with `BEGIN IMMEDIATE`: it takes the write lock at once, so
//! a transaction that reads before it writes waits for other writers (the busy timeout)
//! instead of failing when it upgrades.

use crate::{Db, Engine, Result};

/// An open transaction on either engine. Dropped without [`Tx::commit`], it rolls back.
#[derive(Debug)]
pub enum Tx {
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

impl Db {
    /// Starts a transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
            Db::Sqlite(pool, _) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

impl Tx {
    /// Makes every write of the transaction durable at once.
    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Postgres(tx) => tx.commit().await?,
            Tx::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Undoes every write of the transaction now. Dropping it does the same, but lazily: the
    /// connection runs the rollback when it is next used, holding its locks until then.
    pub async fn rollback(self) -> Result<()> {
        match self {
            Tx::Postgres(tx) => tx.rollback().await?,
            Tx::Sqlite(tx) => tx.rollback().await?,
        }
        Ok(())
    }

    /// The engine the transaction runs on.
    pub fn engine(&self) -> Engine {
        match self {
            Tx::Postgres(_) => Engine::Postgres,
            Tx::Sqlite(_) => Engine::Sqlite,
        }
    }
}

/// Where a query runs: the pool (a statement of its own) or an open transaction.
#[derive(Debug)]
pub enum Conn<'a> {
    /// A pooled connection, one implicit transaction per statement.
    Db(&'a Db),
    /// A transaction that other calls share.
    Tx(&'a mut Tx),
}

impl Conn<'_> {
    /// The engine the query will run on.
    pub fn engine(&self) -> Engine {
        match self {
            Conn::Db(db) => db.engine(),
            Conn::Tx(tx) => tx.engine(),
        }
    }
}

impl<'a> From<&'a Db> for Conn<'a> {
    fn from(db: &'a Db) -> Self {
        Conn::Db(db)
    }
}

impl<'a> From<&'a mut Tx> for Conn<'a> {
    fn from(tx: &'a mut Tx) -> Self {
        Conn::Tx(tx)
    }
}

/// Runs one query body on whatever a [`Conn`] holds: `on_conn!(conn, |e| body)` where `e` is
/// the executor (a pool or a transaction's connection). The body is compiled four times, once
/// per engine and kind of connection; it may use `e` once.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, |$e:ident| $body:expr) => {
        match $conn {
            $crate::Conn::Db($crate::Db::Postgres($e)) => $body,
            $crate::Conn::Db($crate::Db::Sqlite($e, _)) => $body,
            $crate::Conn::Tx($crate::Tx::Postgres(tx)) => {
                let $e = &mut **tx;
                $body
            }
            $crate::Conn::Tx($crate::Tx::Sqlite(tx)) => {
                let $e = &mut **tx;
                $body
            }
        }
    };
}

/// [`on_conn!`] inside a database span, like [`traced_pool!`](crate::traced_pool):
/// `traced_conn!(conn, "INSERT", "jobs", SQL, |e| body)`.
#[macro_export]
macro_rules! traced_conn {
    ($conn:expr, $operation:literal, $table:literal, $statement:expr, |$e:ident| $body:expr) => {{
        let engine = $conn.engine();
        $crate::observe::traced(engine, $operation, $table, $statement, async {
            Ok($crate::on_conn!($conn, |$e| $body))
        })
        .await?
    }};
}

/// Runs a body of several statements on one transaction's connection: `on_tx!(tx, |c| body)`,
/// where `c` is the connection, used as `&mut *c` by each statement. The body is compiled once
/// per engine.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::Tx::Postgres(tx) => {
                let $c = &mut **tx;
                $body
            }
            $crate::Tx::Sqlite(tx) => {
                let $c = &mut **tx;
                $body
            }
        }
    };
}
