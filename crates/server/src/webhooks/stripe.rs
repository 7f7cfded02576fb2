//! Stripe's signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each
//! `v1` is the HMAC-SHA256 of `"<t>.<body>"` keyed with an endpoint secret (the `whsec_…`
//! string itself). The event is accepted when the timestamp is within
//! [`TOLERANCE_SECONDS`](super::TOLERANCE_SECONDS) of now (either way) and any `v1` matches
//! any configured secret (`STRIPE_WEBHOOK_SECRETS`, several during a rotation). Comparisons are
//! constant-time. The event id and type are the body's `id` and `type`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::TOLERANCE_SECONDS;
use crate::config::Secret;
use crate::error::{Error, Result};

/// The header Stripe signs with.
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// At most this many `v1` signatures of one header are tried (Stripe sends one per secret it
/// signs with; a header stuffed with more costs the sender, not us).
const MAX_SIGNATURES: usize = 8;

/// Checks `header` against `body` with every secret, at `now` (unix seconds).
pub fn verify(secrets: &[Secret], header: Option<&str>, body: &[u8], now: i64) -> Result<()> {
    let header = header.ok_or_else(|| refused("the Stripe-Signature header is missing"))?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else { continue };
        match key {
            "t" if timestamp.is_none() => timestamp = value.parse::<i64>().ok(),
            "v1" if signatures.len() < MAX_SIGNATURES => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| refused("the Stripe-Signature header has no valid timestamp"))?;
    if signatures.is_empty() {
        return Err(refused("the Stripe-Signature header has no v1 signature"));
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(refused("the Stripe-Signature timestamp is outside the tolerance"));
    }
    let matched = secrets.iter().any(|secret| {
        let mac = signed(secret.expose().as_bytes(), timestamp, body);
        // Every signature is checked, matched or not, so timing says nothing about which.
        signatures.iter().fold(false, |found, signature| mac.clone().verify_slice(signature).is_ok() | found)
    });
    if matched { Ok(()) } else { Err(refused("no signature matches")) }
}

/// `t=<timestamp>,v1=<hex>`: what Stripe sends, for tests and the benchmark's signer.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hex::encode(signed(secret.as_bytes(), timestamp, body).finalize().into_bytes()))
}

fn signed(key: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn refused(why: &str) -> Error {
    Error::InvalidSignature(format!("Stripe signature refused: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret_for_unit_tests";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    const NOW: i64 = 1_750_000_000;

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn a_signature_by_any_configured_secret_within_the_tolerance_verifies() {
        let header = sign(SECRET, NOW, BODY);
        assert!(verify(&secrets(&[SECRET]), Some(&header), BODY, NOW).is_ok());
        assert!(verify(&secrets(&["whsec_the_old_secret_value", SECRET]), Some(&header), BODY, NOW + 300).is_ok());
        // Stripe signs with the old and the new secret during a rotation: two v1 values.
        let other = sign("whsec_the_old_secret_value", NOW, BODY);
        let both = format!("{other},v1={}", header.split("v1=").nth(1).unwrap());
        assert!(verify(&secrets(&[SECRET]), Some(&both), BODY, NOW).is_ok());
        assert!(verify(&secrets(&[SECRET]), Some(&format!("{header},v0=abc,x=y")), BODY, NOW).is_ok());
    }

    #[test]
    fn forged_stale_future_and_malformed_signatures_are_refused() {
        let header = sign(SECRET, NOW, BODY);
        let refused = |secrets: &[Secret], header: Option<&str>, body: &[u8], now: i64| {
            matches!(verify(secrets, header, body, now), Err(Error::InvalidSignature(_)))
        };
        let ours = secrets(&[SECRET]);
        assert!(refused(&ours, Some(&header), br#"{"id":"evt_1","type":"invoice.paid","x":1}"#, NOW), "body changed");
        assert!(refused(&secrets(&["whsec_another_secret_value"]), Some(&header), BODY, NOW), "another key");
        assert!(refused(&ours, Some(&header), BODY, NOW + 301), "stale");
        assert!(refused(&ours, Some(&header), BODY, NOW - 301), "from the future");
        assert!(refused(&ours, None, BODY, NOW));
        for bad in ["", "t=abc,v1=00", "v1=00", &format!("t={NOW}"), &format!("t={NOW},v1=zz")] {
            assert!(refused(&ours, Some(bad), BODY, NOW), "{bad:?}");
        }
        // A signature with the right key but for another timestamp is a replay attempt.
        let moved = header.replacen(&format!("t={NOW}"), &format!("t={}", NOW + 10), 1);
        assert!(refused(&ours, Some(&moved), BODY, NOW));
    }
}
