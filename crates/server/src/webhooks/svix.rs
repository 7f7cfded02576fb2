//! Svix signatures, as Clerk sends them: `svix-id`, `svix-timestamp` (unix seconds) and
//! `svix-signature`, a space-separated list of `v1,<base64>` entries, each the HMAC-SHA256 of
//! `"<id>.<timestamp>.<body>"` keyed with the base64 after `whsec_` in `CLERK_WEBHOOK_SECRET`.
//! Accepted when the timestamp is within [`TOLERANCE_SECONDS`](super::TOLERANCE_SECONDS) of now
//! either way and any `v1` entry matches (constant-time). The event id is `svix-id`.

use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::TOLERANCE_SECONDS;
use crate::error::{Error, Result};

/// The message id header: the event id, the same on every redelivery.
pub const ID_HEADER: &str = "svix-id";
/// The signed timestamp header.
pub const TIMESTAMP_HEADER: &str = "svix-timestamp";
/// The signature list header.
pub const SIGNATURE_HEADER: &str = "svix-signature";

/// The longest `svix-id` accepted.
const MAX_ID_LEN: usize = 255;
/// At most this many entries of one `svix-signature` are tried.
const MAX_SIGNATURES: usize = 8;

/// Checks the Svix headers against `body` with `key`, at `now`; returns the `svix-id`.
pub fn verify(key: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> Result<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let id = header(ID_HEADER).filter(|id| !id.is_empty()).ok_or_else(|| refused("the svix-id header is missing"))?;
    if id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(refused("the svix-id header is malformed"));
    }
    let timestamp = header(TIMESTAMP_HEADER)
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| refused("the svix-timestamp header is missing or not a number"))?;
    let list = header(SIGNATURE_HEADER).ok_or_else(|| refused("the svix-signature header is missing"))?;
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(refused("the svix-timestamp is outside the tolerance"));
    }
    let signatures: Vec<Vec<u8>> = list
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .take(MAX_SIGNATURES)
        .filter_map(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded).ok())
        .collect();
    if signatures.is_empty() {
        return Err(refused("the svix-signature header has no v1 signature"));
    }
    let mac = signed(key, id, timestamp, body);
    let matched = signatures.iter().fold(false, |found, signature| mac.clone().verify_slice(signature).is_ok() | found);
    if matched { Ok(id.to_owned()) } else { Err(refused("no signature matches")) }
}

/// `v1,<base64>`: one entry of `svix-signature`, for tests and tools.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mac = signed(key, id, timestamp, body).finalize().into_bytes();
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac))
}

fn signed(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac
}

fn refused(why: &str) -> Error {
    Error::InvalidSignature(format!("Svix signature refused: {why}"))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_614_265_330;

    fn key() -> Vec<u8> {
        crate::config::webhook_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ID_HEADER, HeaderValue::from_str(id).unwrap());
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&timestamp.to_string()).unwrap());
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
        headers
    }

    #[test]
    fn the_svix_reference_example_verifies() {
        // Svix's (and Standard Webhooks') published example.
        let body = br#"{"test": 2432232314}"#;
        let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(sign(&key(), "msg_p5jXN8AQM9LWM0D4loKWxJek", NOW, body), signature);
        let id = verify(&key(), &headers("msg_p5jXN8AQM9LWM0D4loKWxJek", NOW, signature), body, NOW).unwrap();
        assert_eq!(id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    }

    #[test]
    fn any_entry_of_a_signature_list_may_match() {
        let body = b"{}";
        let good = sign(&key(), "msg_1", NOW, body);
        let other = sign(b"another key entirely", "msg_1", NOW, body);
        let list = format!("v1a,aaaa {other} v1,not-base64!! {good}");
        assert!(verify(&key(), &headers("msg_1", NOW, &list), body, NOW).is_ok());
        assert!(verify(&key(), &headers("msg_1", NOW, &other), body, NOW).is_err(), "another key alone");
    }

    #[test]
    fn stale_future_forged_and_incomplete_deliveries_are_refused() {
        let body = b"{}";
        let good = sign(&key(), "msg_1", NOW, body);
        let refused = |headers: &HeaderMap, body: &[u8]| {
            matches!(verify(&key(), headers, body, NOW), Err(Error::InvalidSignature(_)))
        };
        assert!(refused(&headers("msg_1", NOW - 301, &sign(&key(), "msg_1", NOW - 301, body)), body), "stale");
        assert!(refused(&headers("msg_1", NOW + 301, &sign(&key(), "msg_1", NOW + 301, body)), body), "future");
        assert!(refused(&headers("msg_2", NOW, &good), body), "another id");
        assert!(refused(&headers("msg_1", NOW, &good), b"{ }"), "another body");
        assert!(refused(&headers("msg_1", NOW, "v1,"), body));
        let mut missing = headers("msg_1", NOW, &good);
        missing.remove(ID_HEADER);
        assert!(refused(&missing, body));
        let mut missing = headers("msg_1", NOW, &good);
        missing.remove(TIMESTAMP_HEADER);
        assert!(refused(&missing, body));
        assert!(refused(&headers(&"m".repeat(300), NOW, &good), body));
    }
}
