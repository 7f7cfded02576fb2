//! A token's header and issuer, read before its signature is checked so the right provider
//! and key can be chosen. Nothing read here is trusted until verification succeeds.

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::AuthFailure;

/// Longer tokens are refused unread; real ones are a few kilobytes at most.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// What routing needs from a token that has not been verified yet.
#[derive(Debug)]
pub(super) struct UnverifiedToken {
    /// The header's `alg`, known to be a signing algorithm (never `none`).
    pub(super) algorithm: Algorithm,
    /// The header's `kid`.
    pub(super) kid: Option<String>,
    /// The claims' `iss`.
    pub(super) issuer: Option<String>,
}

/// Splits the token and reads its header and issuer.
pub(super) fn peek(token: &str) -> Result<UnverifiedToken, AuthFailure> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthFailure::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthFailure::Malformed);
    };
    let header = json_object(header)?;
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        None => return Err(AuthFailure::Malformed),
        Some(alg) => Algorithm::from_str(alg).map_err(|_| AuthFailure::UnsupportedAlgorithm)?,
    };
    // No critical header extension is understood, so RFC 7515 §4.1.11 requires refusal.
    if header.contains_key("crit") {
        return Err(AuthFailure::Malformed);
    }
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(AuthFailure::Malformed),
    };
    let issuer = json_object(claims)?.get("iss").and_then(Value::as_str).map(str::to_owned);
    Ok(UnverifiedToken { algorithm, kid, issuer })
}

/// A base64url segment holding a JSON object.
fn json_object(segment: &str) -> Result<Map<String, Value>, AuthFailure> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| AuthFailure::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(AuthFailure::Malformed),
    }
}
