//! OmniStack persistence: every SQL statement of the service, for PostgreSQL and SQLite.
//!
//! Query bodies are written once and run on either pool through [`on_pool!`] (or, for calls
//! that may join a transaction, on a [`Conn`] through [`on_conn!`]); the few statements that
//! must differ live in [`dialect`]. Nothing here knows about HTTP.

pub mod action_tokens;
pub mod admin_users;
pub mod audit;
pub mod billing;
mod connect;
pub mod contact;
pub mod dialect;
mod error;
pub mod feature_flags;
pub mod files;
pub mod identities;
pub mod impersonations;
pub mod inline;
pub mod jobs;
#[doc(hidden)]
pub mod observe;
pub mod owned;
pub mod projects;
pub mod revocations;
pub mod sessions;
pub mod store_purchases;
pub mod testing;
pub mod time;
mod tx;
pub mod usage;
pub mod usage_reports;
pub mod users;
pub mod webhook_events;

pub use connect::{Db, DbOptions, Engine, PoolStats};
pub use error::{DbError, Result};
pub use tx::{Conn, Tx};

/// Runs one query body on whichever pool `$db` holds, inside a database span (see
/// `observe`): `traced_pool!(db, "SELECT", "users", SQL, |pool| body)`. Evaluates to the body's
/// value; errors propagate with `?`.
#[macro_export]
macro_rules! traced_pool {
    ($db:expr, $operation:literal, $table:expr, $statement:expr, |$pool:ident| $body:expr) => {
        $crate::observe::traced($db.engine(), $operation, $table, $statement, async {
            Ok($crate::on_pool!($db, |$pool| $body))
        })
        .await?
    };
}

/// Runs one query body on whichever pool `$db` holds.
///
/// The body is compiled twice, once per engine, so `sqlx::query_as` and `FromRow`
/// resolve to the right driver without `sqlx::Any` (which lacks UUID and time types).
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Db::Postgres($pool) => $body,
            $crate::Db::Sqlite($pool, _) => $body,
        }
    };
}
