//! The request id: taken from `X-Request-ID` when it is a sane token, otherwise made here,
//! and readable anywhere on the request's task (error bodies, logs), together with the
//! caller's user id once the request is authenticated and the route that matched it (for the
//! access log and the request metrics).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::MatchedPath;
use axum::http::HeaderMap;
use uuid::Uuid;

struct Scope {
    id: Arc<str>,
    user: Cell<Option<Uuid>>,
    route: Cell<Option<MatchedPath>>,
}

impl Scope {
    fn new(id: Arc<str>) -> Scope {
        Scope { id, user: Cell::new(None), route: Cell::new(None) }
    }
}

tokio::task_local! {
    static CURRENT: Scope;
}

/// The request-id header.
pub const HEADER: &str = "x-request-id";

const MAX_LEN: usize = 128;

/// The incoming id when it is at most 128 characters of `[A-Za-z0-9._-]`, else a new UUIDv7.
pub fn from_headers(headers: &HeaderMap) -> Arc<str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok()).filter(|id| is_valid(id)).map_or_else(new_id, Arc::from)
}

/// A new UUIDv7: the Unix time in milliseconds, then 74 bits from a per-thread generator seeded
/// once from the OS. A request id is no secret and needs no order within a millisecond, so it
/// skips what `Uuid::now_v7` pays for on every call: a process-wide lock and a system call
/// for random bytes.
fn new_id() -> Arc<str> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_millis() as u64);
    let (high, low) = (next_random(), next_random());
    let mut random = [0u8; 10];
    random[..8].copy_from_slice(&high.to_le_bytes());
    random[8..].copy_from_slice(&low.to_le_bytes()[..2]);
    let id = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
    Arc::from(&*id.hyphenated().encode_lower(&mut Uuid::encode_buffer()))
}

/// SplitMix64 over a per-thread state seeded from the OS.
fn next_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let mut seed = [0u8; 8];
            let _ = getrandom::fill(&mut seed);
            u64::from_le_bytes(seed)
        });
    }
    STATE.with(|state| {
        let x = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(x);
        let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    CURRENT.scope(Scope::new(id), future).await
}

/// Runs `f` with `id` as the current request id (the synchronous part of starting a request).
pub fn sync_scope<T>(id: Arc<str>, f: impl FnOnce() -> T) -> T {
    CURRENT.sync_scope(Scope::new(id), f)
}

/// The id of the request being served on this task, or `""` outside a request.
pub fn current() -> String {
    CURRENT.try_with(|scope| scope.id.to_string()).unwrap_or_default()
}

/// Notes the authenticated caller of the request being served (for its log lines).
pub fn set_user(user: Uuid) {
    let _ = CURRENT.try_with(|scope| scope.user.set(Some(user)));
}

/// Notes the route that matched the request being served.
pub fn set_route(route: MatchedPath) {
    let _ = CURRENT.try_with(|scope| scope.route.set(Some(route)));
}

/// The route and the caller noted for the request being served so far (the route taken).
pub fn take_route_and_user() -> (Option<MatchedPath>, Option<Uuid>) {
    CURRENT.try_with(|scope| (scope.route.take(), scope.user.get())).unwrap_or_default()
}

/// The request id and caller of the request being served, outside a request `None`.
pub fn with_current<T>(f: impl FnOnce(&str, Option<Uuid>) -> T) -> Option<T> {
    CURRENT.try_with(|scope| f(&scope.id, scope.user.get())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_distinct_uuid_v7s_of_now() {
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let ids: std::collections::HashSet<Arc<str>> = (0..10_000).map(|_| from_headers(&HeaderMap::new())).collect();
        assert_eq!(ids.len(), 10_000);
        for id in ids.iter().take(100) {
            let parsed = Uuid::parse_str(id).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
            let (seconds, nanos) = parsed.get_timestamp().unwrap().to_unix();
            let millis = seconds * 1000 + u64::from(nanos) / 1_000_000;
            assert!(millis >= before && millis <= before + 60_000, "{id}");
            assert!(is_valid(id));
        }
    }

    /// The `MatchedPath` axum gives a request to `path`.
    async fn matched(path: &'static str) -> MatchedPath {
        use tower::ServiceExt;
        let (sender, receiver) = std::sync::mpsc::channel();
        let router = axum::Router::new().route(
            path,
            axum::routing::get(move |matched: MatchedPath| {
                let _ = sender.send(matched);
                async {}
            }),
        );
        router.oneshot(axum::extract::Request::get(path).body(axum::body::Body::empty()).unwrap()).await.unwrap();
        receiver.recv().unwrap()
    }

    #[tokio::test]
    async fn the_route_and_caller_noted_in_a_request_are_read_back_once_and_nowhere_else() {
        let route = matched("/api/v1/app/users/me").await;
        let user = Uuid::now_v7();
        let ((first_route, first_user), (second_route, _)) = sync_scope(Arc::from("id"), || {
            set_route(route.clone());
            set_user(user);
            (take_route_and_user(), take_route_and_user())
        });
        assert_eq!(first_route.as_ref().map(MatchedPath::as_str), Some("/api/v1/app/users/me"));
        assert_eq!(first_user, Some(user));
        assert!(second_route.is_none(), "the route is taken");
        set_route(route);
        let (route, user) = take_route_and_user();
        assert!(route.is_none() && user.is_none(), "outside a request nothing is kept");
    }

    #[test]
    fn a_sane_incoming_id_is_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(HEADER, "abc-123".parse().unwrap());
        assert_eq!(&*from_headers(&headers), "abc-123");
        headers.insert(HEADER, "bad id".parse().unwrap());
        assert_ne!(&*from_headers(&headers), "bad id");
    }

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
