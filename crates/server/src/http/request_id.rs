//! The request id: taken from `X-Request-ID` when it is a sane token, otherwise made here,
//! and readable anywhere on the request's task (error bodies, logs).

use axum::http::HeaderMap;

tokio::task_local! {
    static CURRENT: String;
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
    CURRENT.scope(id, future).await
}

/// The id of the request being served on this task, or `""` outside a request.
pub fn current() -> String {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
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
