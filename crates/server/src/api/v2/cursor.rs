//! Opaque page cursors: base64url (unpadded) of the last item's creation time and id. Clients
//! pass them back unchanged; anything else is a 422 on `cursor`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use omnistack_db::owned::Cursor;
use uuid::Uuid;

use crate::error::{Error, FieldError};

/// The longest cursor accepted; those this API returns have 86 characters.
pub const MAX_LEN: usize = 128;

/// The cursor of the item created at `created_at` with id `id`.
pub fn encode(created_at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", created_at.to_rfc3339_opts(SecondsFormat::Micros, true)))
}

/// The creation time and id inside a cursor made by [`encode`].
pub fn decode(cursor: &str) -> Result<(DateTime<Utc>, Uuid), Error> {
    let invalid = || Error::Validation(vec![FieldError::new("cursor", "is not a cursor this API returned")]);
    if cursor.len() > MAX_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (created_at, id) = text.split_once('|').ok_or_else(invalid)?;
    let created_at = DateTime::parse_from_rfc3339(created_at).map_err(|_| invalid())?.with_timezone(&Utc);
    Ok((created_at, Uuid::parse_str(id).map_err(|_| invalid())?))
}

/// The position a `cursor` query parameter names; `None` (the first page) when it is omitted
/// or empty.
pub fn position(cursor: Option<&str>) -> Result<Option<Cursor>, Error> {
    match cursor.filter(|c| !c.is_empty()) {
        Some(text) => decode(text).map(|(created_at, id)| Some(Cursor { created_at, id })),
        None => Ok(None),
    }
}

/// The `meta.next_cursor` of a page that ends before `next`.
pub fn next(next: Option<Cursor>) -> Option<String> {
    next.map(|next| encode(next.created_at, next.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_at_microsecond_precision() {
        let created_at = DateTime::parse_from_rfc3339("2026-11-26T17:00:51.510419Z").unwrap().with_timezone(&Utc);
        let id = Uuid::now_v7();
        let cursor = encode(created_at, id);
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{cursor}");
        assert_eq!(decode(&cursor).unwrap(), (created_at, id));
    }

    #[test]
    fn anything_else_is_a_validation_error_on_cursor() {
        let garbage = [
            "garbage!".to_owned(),
            URL_SAFE_NO_PAD.encode("no separator"),
            URL_SAFE_NO_PAD.encode("yesterday|0190a0a0-0000-7000-8000-000000000000"),
            URL_SAFE_NO_PAD.encode("2026-11-26T17:00:51Z|not-a-uuid"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ];
        for cursor in garbage {
            match decode(&cursor) {
                Err(Error::Validation(fields)) => assert_eq!(fields[0].field, "cursor"),
                other => panic!("{cursor}: {other:?}"),
            }
        }
    }
}
