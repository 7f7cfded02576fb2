//! Apple's signed objects: a compact JWS (ES256) whose header carries the signing chain in
//! `x5c` (leaf, intermediate, and Apple's root). Verified here:
//!
//! - the leaf → intermediate → a configured root (`APPLE_ROOT_CERTS`) chain, each certificate's
//!   signature, validity period and CA constraints, by `rustls-webpki` (already in the tree
//!   through rustls; ADR 0015), with exactly one intermediate;
//! - Apple's certificate markers: the intermediate carries `1.2.840.113635.100.6.2.1` (Apple
//!   Worldwide Developer Relations), the leaf `1.2.840.113635.100.6.11.1` (App Store receipt
//!   signing), so no other certificate Apple's root has issued can sign a notification;
//! - the JWS signature with the leaf's P-256 key.
//!
//! Every refusal is 400 `INVALID_SIGNATURE` with a reason that names no secret.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde_json::Value;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use crate::error::{Error, Result};

/// The DER of the OID `1.2.840.113635.100.6.11.1` (tag, length, value).
const LEAF_MARKER: [u8; 12] = [0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x63, 0x64, 0x06, 0x0B, 0x01];
/// The DER of the OID `1.2.840.113635.100.6.2.1`.
const INTERMEDIATE_MARKER: [u8; 12] = [0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x63, 0x64, 0x06, 0x02, 0x01];
/// A signed object larger than this is refused before it is decoded.
pub const MAX_JWS_BYTES: usize = 64 * 1024;

/// The trusted roots, parsed.
pub struct Roots {
    anchors: Vec<TrustAnchor<'static>>,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Roots({})", self.anchors.len())
    }
}

impl Roots {
    /// The roots from their DER; an error names the first that is not a certificate.
    pub fn new(ders: &[Vec<u8>]) -> std::result::Result<Roots, String> {
        let anchors = ders
            .iter()
            .enumerate()
            .map(|(i, der)| {
                let cert = CertificateDer::from(der.as_slice());
                webpki::anchor_from_trusted_cert(&cert)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|err| format!("root certificate number {} cannot be used: {err}", i + 1))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(Roots { anchors })
    }
}

/// Accepts any extended key usage: Apple's certificates are identified by their markers.
struct AnyUsage;

impl ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> std::result::Result<(), webpki::Error> {
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

/// 400 `INVALID_SIGNATURE` for `reason`.
pub fn refused(reason: &str) -> Error {
    Error::InvalidSignature(format!("the App Store signature does not verify: {reason}"))
}

/// The payload of `jws` when it verifies through a configured root at `now`.
pub fn verify(jws: &str, roots: &Roots, now: UnixTime) -> Result<Value> {
    if jws.len() > MAX_JWS_BYTES {
        return Err(refused("the signed object is too large"));
    }
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refused("not a compact JWS"));
    };
    let header = decode_json(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(refused("the algorithm must be ES256"));
    }
    let chain = header.get("x5c").and_then(Value::as_array).ok_or_else(|| refused("no x5c chain"))?;
    if !(2..=3).contains(&chain.len()) {
        return Err(refused("the x5c chain must hold a leaf, an intermediate and the root"));
    }
    let decode_cert = |value: &Value| {
        value.as_str().and_then(|s| STANDARD.decode(s).ok()).ok_or_else(|| refused("an x5c certificate is not base64"))
    };
    let leaf_der = decode_cert(&chain[0])?;
    let intermediate_der = decode_cert(&chain[1])?;
    let leaf_cert = CertificateDer::from(leaf_der.as_slice());
    let leaf = EndEntityCert::try_from(&leaf_cert).map_err(|_| refused("the leaf is not a certificate"))?;
    let intermediates = [CertificateDer::from(intermediate_der.as_slice())];
    let algorithms: [&dyn rustls::pki_types::SignatureVerificationAlgorithm; 4] = [
        webpki::ring::ECDSA_P256_SHA256,
        webpki::ring::ECDSA_P256_SHA384,
        webpki::ring::ECDSA_P384_SHA256,
        webpki::ring::ECDSA_P384_SHA384,
    ];
    let one_intermediate = |path: &webpki::VerifiedPath<'_>| {
        if path.intermediate_certificates().count() == 1 { Ok(()) } else { Err(webpki::Error::UnknownIssuer) }
    };
    leaf.verify_for_usage(&algorithms, &roots.anchors, &intermediates, now, AnyUsage, None, Some(&one_intermediate))
        .map_err(|err| refused(&chain_reason(&err)))?;
    if !contains(&intermediate_der, &INTERMEDIATE_MARKER) {
        return Err(refused("the intermediate is not Apple's developer relations CA"));
    }
    if !contains(&leaf_der, &LEAF_MARKER) {
        return Err(refused("the leaf is not an App Store signing certificate"));
    }
    let raw = URL_SAFE_NO_PAD.decode(signature).map_err(|_| refused("the signature is not base64url"))?;
    let der = der_signature(&raw).ok_or_else(|| refused("the signature is not an ES256 signature"))?;
    let signing_input = &jws[..header_and_payload_len(jws)];
    leaf.verify_signature(webpki::ring::ECDSA_P256_SHA256, signing_input.as_bytes(), &der)
        .map_err(|_| refused("the signature does not match the leaf's key"))?;
    decode_json(payload)
}

/// The payload of `jws` without verifying it: for objects verified when they were received.
pub fn decode_unverified(jws: &str) -> Result<Value> {
    let payload = jws.split('.').nth(1).ok_or_else(|| refused("not a compact JWS"))?;
    decode_json(payload)
}

fn header_and_payload_len(jws: &str) -> usize {
    jws.rfind('.').unwrap_or(jws.len())
}

fn decode_json(segment: &str) -> Result<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| refused("a segment is not base64url"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| refused("a segment is not JSON"))?;
    if value.is_object() { Ok(value) } else { Err(refused("a segment is not a JSON object")) }
}

fn chain_reason(err: &webpki::Error) -> String {
    match err {
        webpki::Error::CertExpired { .. } => "a certificate has expired".into(),
        webpki::Error::CertNotValidYet { .. } => "a certificate is not valid yet".into(),
        webpki::Error::UnknownIssuer => "the chain does not lead to a configured root (APPLE_ROOT_CERTS)".into(),
        webpki::Error::InvalidSignatureForPublicKey => "a certificate's signature does not verify".into(),
        other => format!("the certificate chain is not valid ({other:?})"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

/// A JWS ES256 signature (`r || s`, 32 bytes each) as the DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn der_signature(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let integer = |bytes: &[u8]| {
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        let trimmed = &bytes[first..];
        let mut out = vec![0x02];
        if trimmed[0] & 0x80 != 0 {
            out.push((trimmed.len() + 1) as u8);
            out.push(0);
        } else {
            out.push(trimmed.len() as u8);
        }
        out.extend_from_slice(trimmed);
        out
    };
    let (r, s) = (integer(&raw[..32]), integer(&raw[32..]));
    let mut der = vec![0x30, (r.len() + s.len()) as u8];
    der.extend(r);
    der.extend(s);
    Some(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_become_der_integers_without_padding_and_with_a_sign_byte() {
        let mut raw = [0u8; 64];
        raw[31] = 1;
        raw[32] = 0x80;
        let der = der_signature(&raw).unwrap();
        assert_eq!(&der[..5], &[0x30, 3 + 35, 0x02, 1, 1]);
        assert_eq!(&der[5..9], &[0x02, 33, 0x00, 0x80]);
        assert!(der_signature(&raw[..63]).is_none());
    }

    #[test]
    fn malformed_objects_are_refused_as_invalid_signatures() {
        let roots = Roots::new(&[]).unwrap();
        let now = UnixTime::now();
        let header = |h: &str| URL_SAFE_NO_PAD.encode(h);
        for jws in [
            "".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{}.e30.sig", header(r#"{"alg":"none"}"#)),
            format!("{}.e30.sig", header(r#"{"alg":"ES256"}"#)),
            format!("{}.e30.sig", header(r#"{"alg":"ES256","x5c":["!!","!!"]}"#)),
            format!("{}.e30.sig", header(r#"{"alg":"ES256","x5c":["AAAA"]}"#)),
            format!("{}.e30.sig", header(r#"{"alg":"ES256","x5c":["AAAA","AAAA"]}"#)),
            "x".repeat(MAX_JWS_BYTES + 1),
        ] {
            assert!(matches!(verify(&jws, &roots, now), Err(Error::InvalidSignature(_))), "{jws:.60}");
        }
    }
}
