//! Signing keys from a JWKS document, each with the algorithms it may verify.
//!
//! A key's algorithms come from its JWK `alg` when present (which must suit the key type),
//! otherwise from its type and curve. Symmetric keys never come from a JWKS, so an
//! HS256 token "signed" with a public key cannot match any key here.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Algorithms an RSA key without `alg` may verify.
const RSA_ALGORITHMS: [Algorithm; 4] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256];

/// RSA moduli shorter than this (2048 bits) are too weak to trust.
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// Every algorithm accepted from a JWKS.
pub(super) const ASYMMETRIC_ALGORITHMS: [Algorithm; 7] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One usable public key.
pub(super) struct VerifyingKey {
    kid: Option<String>,
    /// The key material.
    pub(super) key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The usable keys of one JWKS document.
pub(super) struct KeySet {
    keys: Vec<Arc<VerifyingKey>>,
}

/// The outcome of looking a token's key up.
pub(super) enum Lookup {
    /// The key, which may verify the token's algorithm.
    Found(Arc<VerifyingKey>),
    /// The key exists but may not verify this algorithm.
    WrongAlgorithm,
    /// No key matches.
    Missing,
}

impl KeySet {
    /// Reads a JWKS document, skipping keys that cannot verify signatures. A document with
    /// no usable key is refused, so garbage never replaces a good set.
    pub(super) fn from_document(body: &[u8]) -> Result<KeySet, String> {
        let document: Value = serde_json::from_slice(body).map_err(|_| "the body is not JSON".to_owned())?;
        let entries = document.get("keys").and_then(Value::as_array).ok_or("the body has no `keys` array")?;
        let keys: Vec<_> = entries
            .iter()
            .filter_map(|entry| serde_json::from_value::<Jwk>(entry.clone()).ok())
            .filter_map(|jwk| verifying_key(&jwk))
            .map(Arc::new)
            .collect();
        if keys.is_empty() {
            return Err(format!("none of its {} keys can verify signatures", entries.len()));
        }
        Ok(KeySet { keys })
    }

    /// The key named by `kid`; without a `kid`, the one key that may verify `algorithm`.
    pub(super) fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Lookup {
        let found = match kid {
            Some(kid) => self.keys.iter().find(|key| key.kid.as_deref() == Some(kid)),
            None => {
                let mut usable = self.keys.iter().filter(|key| key.algorithms.contains(&algorithm));
                match (usable.next(), usable.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        match found {
            Some(key) if key.algorithms.contains(&algorithm) => Lookup::Found(key.clone()),
            Some(_) => Lookup::WrongAlgorithm,
            None => Lookup::Missing,
        }
    }
}

/// The key and its algorithms, or `None` when the JWK cannot verify external tokens.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let modulus = URL_SAFE_NO_PAD.decode(rsa.n.trim_end_matches('=')).ok()?;
            let significant = modulus.iter().skip_while(|byte| **byte == 0).count();
            if significant < MIN_RSA_MODULUS_BYTES {
                return None;
            }
            &RSA_ALGORITHMS
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return None,
        },
        _ => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type.to_vec(),
        Some(declared) => {
            let declared = Algorithm::try_from(declared).ok().filter(|alg| by_type.contains(alg))?;
            vec![declared]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { kid: jwk.common.key_id.clone(), key, algorithms })
}
