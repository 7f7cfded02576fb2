//! The request id: taken from `X-Request-ID` when it is a sane token, otherwise made here,
//! and readable anywhere on the request's task (error bodies, logs), together with the
//! caller's user id once the request is authenticated.

use std::cell::Cell;

use axum::http::HeaderMap;
use uuid::Uuid;

struct Scope {
    id: String,
    user: Cell<Option<Uuid>>,
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// The request-id header.
pub const HEADER: &str = "x-request-id";

const MAX_LEN: usize = 128;

/// The incoming id when it is at most 128 characters of `[A-Za-z0-9._-]`, else a new UUIDv7.
pub fn from_headers(headers: &HeaderMap) -> String {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_valid(id))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: String, future: F) -> F::Output {
    CURRENT.scope(Scope { id, user: Cell::new(None) }, future).await
}

/// The id of the request being served on this task, or `""` outside a request.
pub fn current() -> String {
    CURRENT.try_with(|scope| scope.id.clone()).unwrap_or_default()
}

/// Notes the authenticated caller of the request being served (for its log lines).
pub fn set_user(user: Uuid) {
    let _ = CURRENT.try_with(|scope| scope.user.set(Some(user)));
}

/// The request id and caller of the request being served, outside a request `None`.
pub fn with_current<T>(f: impl FnOnce(&str, Option<Uuid>) -> T) -> Option<T> {
    CURRENT.try_with(|scope| f(&scope.id, scope.user.get())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_short_safe_tokens() {
        assert!(is_valid("abc-DEF_1.2"));
        assert!(is_valid(&"a".repeat(128)));
        assert!(!is_valid(&"a".repeat(129)));
        assert!(!is_valid(""));
        assert!(!is_valid("has space"));
        assert!(!is_valid("new\nline"));
        assert!(!is_valid("semi;colon"));
    }
}
