//! The rules every resource owned by one account shares, on the shared statements of
//! `omnistack_db::owned`: an id that does not parse, another account's row and a deleted one
//! are all 404; page sizes are 1..=100; a keyset page knows where the next one starts.
//!
//! A resource module (see `projects`) keeps only its own rules: what its fields may hold.

use std::ops::RangeInclusive;

use omnistack_db::Db;
use omnistack_db::owned::{self, Cursor, Owned};
use uuid::Uuid;

use crate::error::{Error, FieldError, Result};

/// Page sizes.
pub const LIMIT: RangeInclusive<i64> = 1..=100;

/// A page of rows in keyset order, and where the next one starts.
#[derive(Clone, Debug)]
pub struct Slice<T> {
    /// At most the asked number of rows, newest first.
    pub items: Vec<T>,
    /// The last row's position when more rows follow; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T: Owned> Slice<T> {
    /// The page of `limit` rows from `rows`, fetched with `limit + 1` so that the extra row
    /// says whether another page follows.
    pub fn of(mut rows: Vec<T>, limit: i64) -> Slice<T> {
        let more = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let next = if more { rows.last().map(Owned::cursor) } else { None };
        Slice { items: rows, next }
    }
}

/// 422 on `limit` unless it is a page size.
pub fn check_limit(limit: i64) -> Option<FieldError> {
    (!LIMIT.contains(&limit))
        .then(|| FieldError::new("limit", format!("must be from {} to {}", LIMIT.start(), LIMIT.end())))
}

/// The id in a path; text that is not a UUID is a 404 like any id the caller does not own.
pub fn parse_id(id: &str, what: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| not_found(what))
}

/// 404 `NOT_FOUND`: "`what` not found".
pub fn not_found(what: &str) -> Error {
    Error::NotFound(format!("{what} not found"))
}

/// The owner's row `id`.
pub async fn find<T: Owned>(db: &Db, owner_id: Uuid, id: &str, what: &str) -> Result<T> {
    let id = parse_id(id, what)?;
    owned::find_owned(db, owner_id, id).await?.ok_or_else(|| not_found(what))
}

/// The owner's rows after `after` (from the newest when `None`), newest first.
pub async fn list_after<T: Owned>(db: &Db, owner_id: Uuid, after: Option<Cursor>, limit: i64) -> Result<Slice<T>> {
    if let Some(problem) = check_limit(limit) {
        return Err(Error::Validation(vec![problem]));
    }
    Ok(Slice::of(owned::list_owned_after(db, owner_id, after, limit + 1).await?, limit))
}

/// Deletes the owner's row `id`.
pub async fn delete<T: Owned>(db: &Db, owner_id: Uuid, id: &str, what: &str) -> Result<()> {
    let id = parse_id(id, what)?;
    if owned::delete_owned::<T>(db, owner_id, id).await? { Ok(()) } else { Err(not_found(what)) }
}
