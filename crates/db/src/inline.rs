//! SQLite point reads answered on the calling thread (ADR 0022).
//!
//! sqlx runs each SQLite connection on a thread of its own: a query is a message to that thread
//! and a reply, and handing the connection back to the pool is a second round trip (a ping).
//! For the one read on every authenticated request (the account behind a token), those
//! hand-offs cost far more than the read: a primary-key lookup takes microseconds, and in WAL
//! mode a reader never waits for a writer. [`InlineReads`] keeps a few read-only connections
//! of its own (rusqlite, on the same bundled SQLite) and runs such reads where they are asked
//! for.
//!
//! It never decides an answer on its own: when every connection is in use, when SQLite is
//! busy (it does not wait: no busy timeout), when the pool has been closed, or when a value
//! does not decode, [`InlineReads::query_row`] returns `None` and the caller asks the pool,
//! which answers or fails as before.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, Params, Row};

use crate::Db;

impl Db {
    /// [`InlineReads::query_row`] on SQLite while the pool is open; `None` (ask the pool)
    /// otherwise.
    pub(crate) fn read_inline<T>(
        &self,
        sql: &'static str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        match self {
            Db::Sqlite(pool, reads) if !pool.is_closed() => reads.query_row(sql, params, map),
            _ => None,
        }
    }
}

/// A handful of read-only connections to the pool's database file; empty for an in-memory
/// database (another connection would see another database).
#[derive(Clone, Debug, Default)]
pub struct InlineReads(Option<Arc<Readers>>);

#[derive(Debug)]
struct Readers {
    connections: Box<[Mutex<Connection>]>,
    next: AtomicUsize,
}

impl InlineReads {
    /// Opens one connection per core (at most 8) to `file`, once the pool has created it. Any
    /// failure leaves the set empty: every read then goes to the pool.
    pub(crate) fn open(file: &Path) -> InlineReads {
        // An in-memory database has no file: another connection would open another database.
        if !file.is_file() {
            return InlineReads(None);
        }
        let count = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = || -> rusqlite::Result<Mutex<Connection>> {
            let connection = Connection::open_with_flags(file, flags)?;
            // Reads only, whatever statement reaches it; and a busy database is the pool's to
            // wait for (rusqlite would otherwise wait up to 5 s here, on the calling thread).
            connection.pragma_update(None, "query_only", true)?;
            connection.busy_timeout(Duration::ZERO)?;
            Ok(Mutex::new(connection))
        };
        match (0..count).map(|_| open()).collect::<rusqlite::Result<Vec<_>>>() {
            Ok(connections) => {
                InlineReads(Some(Arc::new(Readers { connections: connections.into(), next: AtomicUsize::new(0) })))
            }
            Err(_) => InlineReads(None),
        }
    }

    /// Whether reads can be answered here at all.
    pub fn is_enabled(&self) -> bool {
        self.0.is_some()
    }

    /// The first row of `sql` with `params` (named `$1`, `$2`, … as in the pool's statements),
    /// mapped by `map`: `Some(None)` when there is no row, `None` when this could not answer
    /// and the pool must.
    pub(crate) fn query_row<T>(
        &self,
        sql: &'static str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        let readers = self.0.as_ref()?;
        let count = readers.connections.len();
        let start = readers.next.fetch_add(1, Ordering::Relaxed);
        // A free connection, without waiting: every caller holds one only for a single read.
        let connection = (0..count).find_map(|i| readers.connections[(start + i) % count].try_lock().ok())?;
        let mut statement = connection.prepare_cached(sql).ok()?;
        let mut rows = statement.query(params).ok()?;
        match rows.next() {
            Ok(Some(row)) => map(row).ok().map(Some),
            Ok(None) => Some(None),
            Err(_) => None,
        }
    }
}

/// Column `i` as a timestamp: RFC 3339 (what sqlx writes) by chrono's own parser, which is
/// several times faster than the format-string parsing rusqlite falls back on for the rest.
pub(crate) fn timestamp(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    if let ValueRef::Text(text) = row.get_ref(i)?
        && let Ok(parsed) = DateTime::parse_from_rfc3339(str::from_utf8(text).unwrap_or_default())
    {
        return Ok(Some(parsed.to_utc()));
    }
    row.get(i)
}

/// [`timestamp`] of a `NOT NULL` column.
pub(crate) fn required_timestamp(row: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    timestamp(row, i)?.ok_or(rusqlite::Error::InvalidColumnType(i, "timestamp".into(), rusqlite::types::Type::Null))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    use crate::users::{self, NewUser, ProfileChange, User};
    use crate::{Db, DbOptions, sessions, testing};

    async fn sqlite(dir: &tempfile::TempDir) -> Db {
        let db = Db::connect(&format!("sqlite://{}/inline.db", dir.path().display()), &DbOptions::default())
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        db
    }

    fn by_id() -> &'static str {
        format!("SELECT {} FROM users WHERE id = $1", users::COLUMNS).leak()
    }

    async fn from_pool(db: &Db, id: Uuid) -> User {
        crate::on_pool!(db, |pool| sqlx::query_as::<_, User>(by_id()).bind(id).fetch_one(pool).await.unwrap())
    }

    #[tokio::test]
    async fn an_inline_read_returns_what_the_pool_returns_and_sees_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir).await;
        assert!(matches!(&db, Db::Sqlite(_, reads) if reads.is_enabled()));
        let new = NewUser {
            email: Some("inline@example.com"),
            hashed_password: Some("$argon2id$x"),
            role: "user",
            ..NewUser::default()
        };
        let user = users::insert_user(&db, &new).await.unwrap();
        let change = ProfileChange { full_name: Some(Some("Zoë \u{1F600}")), ..ProfileChange::default() };
        users::update_profile(&db, user.id, &change).await.unwrap();
        users::record_login(&db, user.id, Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()).await.unwrap();
        // A timestamp in SQLite's own format, as a hand-written statement would leave it.
        testing::execute_unchecked(&db, "UPDATE users SET deactivated_at = '2026-01-02 03:04:05.5'").await.unwrap();

        let expected = from_pool(&db, user.id).await;
        assert_eq!(expected.full_name.as_deref(), Some("Zoë \u{1F600}"));
        let inline = db.read_inline(by_id(), [user.id.as_bytes()], User::from_inline);
        assert_eq!(inline, Some(Some(expected.clone())), "answered inline, same values");
        assert_eq!(users::find_user(&db, user.id).await.unwrap(), Some(expected.clone()));
        assert_eq!(db.read_inline(by_id(), [Uuid::now_v7().as_bytes()], User::from_inline), Some(None));

        // A session revoked through the pool is revoked for the next inline read.
        let expires = crate::time::now() + chrono::Duration::days(1);
        let origin = sessions::SessionOrigin::default();
        let session = sessions::create_session(&db, user.id, "hash", expires, &origin).await.unwrap();
        assert_eq!(users::find_user_with_session(&db, user.id, session).await.unwrap(), Some((expected.clone(), true)));
        sessions::revoke_all_sessions(&db, user.id).await.unwrap();
        assert_eq!(users::find_user_with_session(&db, user.id, session).await.unwrap(), Some((expected, false)));

        // No inline read is left open: a checkpoint can take the whole log back.
        let (busy,): (i64,) = crate::on_pool!(&db, |pool| sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await
            .unwrap());
        assert_eq!(busy, 0);
    }

    #[tokio::test]
    async fn a_closed_pool_or_an_in_memory_database_is_never_read_inline() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir).await;
        assert_eq!(db.read_inline("SELECT 1", [], |row| row.get::<_, i64>(0)), Some(Some(1)));
        // Writes are refused whatever reaches an inline connection.
        assert_eq!(db.read_inline("DELETE FROM users RETURNING 1", [], |row| row.get::<_, i64>(0)), None);
        db.close().await;
        assert_eq!(db.read_inline("SELECT 1", [], |row| row.get::<_, i64>(0)), None);
        assert!(users::find_user(&db, Uuid::now_v7()).await.is_err(), "the pool's answer: closed");

        let memory = Db::connect("sqlite::memory:", &DbOptions::default()).await.unwrap();
        assert_eq!(memory.read_inline("SELECT 1", [], |row| row.get::<_, i64>(0)), None);
    }

    #[tokio::test]
    async fn an_inline_read_never_waits_and_the_pool_answers_when_every_connection_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir).await;
        let user = users::insert_user(&db, &NewUser { role: "user", ..NewUser::default() }).await.unwrap();
        assert_eq!(db.read_inline("PRAGMA busy_timeout", [], |row| row.get::<_, i64>(0)), Some(Some(0)));
        let Db::Sqlite(_, reads) = &db else { unreachable!() };
        let readers = reads.0.as_ref().unwrap();
        let taken: Vec<_> = readers.connections.iter().map(|c| c.lock().unwrap()).collect();
        assert_eq!(db.read_inline(by_id(), [user.id.as_bytes()], User::from_inline), None);
        assert_eq!(users::find_user(&db, user.id).await.unwrap(), Some(user.clone()), "answered by the pool");
        drop(taken);
        assert_eq!(db.read_inline(by_id(), [user.id.as_bytes()], User::from_inline), Some(Some(user)));
    }

    #[tokio::test]
    async fn a_database_without_inline_connections_reads_through_the_pool() {
        let memory =
            Db::connect("sqlite::memory:", &DbOptions { max_connections: 1, ..DbOptions::default() }).await.unwrap();
        memory.migrate().await.unwrap();
        let user = users::insert_user(&memory, &NewUser { role: "user", ..NewUser::default() }).await.unwrap();
        assert_eq!(users::find_user(&memory, user.id).await.unwrap(), Some(user));
    }
}
