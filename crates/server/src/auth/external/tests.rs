//! Pure rules: token peeking, key selection, failures, routing (claim extraction is tested in
//! `claims/tests.rs`). End-to-end verification against a fake provider lives in
//! `tests/api/external_tokens.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use super::keys::{KeySet, Lookup};
use super::*;

fn segment(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn unsigned(header: Value, claims: Value) -> String {
    format!("{}.{}.c2ln", segment(&header), segment(&claims))
}

fn http_client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::new()
}

fn rsa_jwk(kid: &str, alg: Option<&str>, modulus_bytes: usize) -> Value {
    let mut modulus = vec![0xC5; modulus_bytes];
    modulus[modulus_bytes - 1] = 0x01;
    let mut jwk = json!({"kty": "RSA", "kid": kid, "n": URL_SAFE_NO_PAD.encode(modulus), "e": "AQAB"});
    if let Some(alg) = alg {
        jwk["alg"] = json!(alg);
    }
    jwk
}

fn ec_jwk(kid: &str, crv: &str, size: usize) -> Value {
    let coordinate = URL_SAFE_NO_PAD.encode(vec![7u8; size]);
    json!({"kty": "EC", "kid": kid, "crv": crv, "x": coordinate, "y": coordinate})
}

fn key_set(keys: Vec<Value>) -> Result<KeySet, String> {
    KeySet::from_document(json!({ "keys": keys }).to_string().as_bytes())
}

fn found(lookup: Lookup) -> bool {
    matches!(lookup, Lookup::Found(_))
}

#[test]
fn peek_reads_algorithm_kid_and_issuer() {
    let token = unsigned(json!({"alg": "ES256", "kid": "k1"}), json!({"iss": "https://idp.example"}));
    let peeked = token::peek(&token).unwrap();
    assert_eq!(peeked.algorithm, Algorithm::ES256);
    assert_eq!(peeked.kid.as_deref(), Some("k1"));
    assert_eq!(peeked.issuer.as_deref(), Some("https://idp.example"));
}

#[test]
fn peek_refuses_alg_none_and_unknown_algorithms() {
    for alg in ["none", "None", "NONE", "HS1", ""] {
        let token = format!("{}.{}.", segment(&json!({"alg": alg})), segment(&json!({"iss": "x"})));
        assert_eq!(token::peek(&token).unwrap_err(), AuthFailure::UnsupportedAlgorithm, "{alg:?}");
    }
}

#[test]
fn peek_refuses_what_is_not_a_jwt() {
    let header = segment(&json!({"alg": "RS256"}));
    let claims = segment(&json!({"iss": "x"}));
    for token in [
        String::new(),
        "abc".into(),
        format!("{header}.{claims}"),
        format!("{header}.{claims}.sig.extra"),
        format!("{header}.not base64!.sig"),
        format!("{}.{claims}.sig", segment(&json!(["alg", "RS256"]))),
        format!("{header}.{}.sig", segment(&json!("claims"))),
        format!("{}.{claims}.sig", segment(&json!({"kid": "k"}))),
        format!("{}.{claims}.sig", segment(&json!({"alg": "RS256", "kid": 7}))),
        format!("{}.{claims}.sig", segment(&json!({"alg": "RS256", "crit": ["exp"]}))),
        format!("{header}.{claims}.{}", "a".repeat(17 * 1024)),
    ] {
        assert_eq!(token::peek(&token).unwrap_err(), AuthFailure::Malformed, "{token:.60}");
    }
}

#[test]
fn rsa_keys_without_alg_verify_rs_and_ps256_only() {
    let set = key_set(vec![rsa_jwk("r", None, 256)]).unwrap();
    for alg in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512, Algorithm::PS256] {
        assert!(found(set.find(Some("r"), alg)), "{alg:?}");
    }
    for alg in [Algorithm::PS384, Algorithm::ES256, Algorithm::HS256, Algorithm::EdDSA] {
        assert!(matches!(set.find(Some("r"), alg), Lookup::WrongAlgorithm), "{alg:?}");
    }
}

#[test]
fn a_declared_jwk_alg_must_equal_the_token_alg() {
    let set = key_set(vec![rsa_jwk("pinned", Some("RS256"), 256)]).unwrap();
    assert!(found(set.find(Some("pinned"), Algorithm::RS256)));
    assert!(matches!(set.find(Some("pinned"), Algorithm::PS256), Lookup::WrongAlgorithm));
}

#[test]
fn curves_decide_ec_and_okp_algorithms() {
    let ed = json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": URL_SAFE_NO_PAD.encode([3u8; 32])});
    let set = key_set(vec![ec_jwk("p256", "P-256", 32), ec_jwk("p384", "P-384", 48), ed]).unwrap();
    assert!(found(set.find(Some("p256"), Algorithm::ES256)));
    assert!(matches!(set.find(Some("p256"), Algorithm::ES384), Lookup::WrongAlgorithm));
    assert!(found(set.find(Some("p384"), Algorithm::ES384)));
    assert!(found(set.find(Some("ed"), Algorithm::EdDSA)));
    assert!(matches!(set.find(Some("ed"), Algorithm::ES256), Lookup::WrongAlgorithm));
    assert!(matches!(set.find(Some("other"), Algorithm::ES256), Lookup::Missing));
}

#[test]
fn unusable_keys_are_skipped_and_a_set_without_usable_keys_is_refused() {
    let unusable = vec![
        json!({"kty": "oct", "kid": "secret", "k": "c2VjcmV0"}),
        rsa_jwk("weak", None, 128),
        {
            let mut enc = rsa_jwk("enc", None, 256);
            enc["use"] = json!("enc");
            enc
        },
        rsa_jwk("oaep", Some("RSA-OAEP"), 256),
        rsa_jwk("ec-alg-on-rsa", Some("ES256"), 256),
        ec_jwk("p521", "P-521", 66),
        json!({"kty": "EC", "kid": "k1", "crv": "secp256k1", "x": "AA", "y": "AA"}),
        json!("not a key"),
    ];
    assert!(key_set(unusable.clone()).is_err());
    let mut with_one_good = unusable;
    with_one_good.push(rsa_jwk("good", None, 256));
    let set = key_set(with_one_good).unwrap();
    assert!(found(set.find(Some("good"), Algorithm::RS256)));
    for kid in ["secret", "weak", "enc", "oaep", "ec-alg-on-rsa", "p521", "k1"] {
        assert!(matches!(set.find(Some(kid), Algorithm::RS256), Lookup::Missing), "{kid}");
    }
    for garbage in [&b"<html>"[..], b"{}", b"{\"keys\": {}}", b"[]"] {
        assert!(KeySet::from_document(garbage).is_err());
    }
}

#[test]
fn without_kid_only_an_unambiguous_key_is_used() {
    let one = key_set(vec![rsa_jwk("r", None, 256), ec_jwk("e", "P-256", 32)]).unwrap();
    assert!(found(one.find(None, Algorithm::RS256)));
    assert!(found(one.find(None, Algorithm::ES256)));
    let two = key_set(vec![rsa_jwk("r1", None, 256), rsa_jwk("r2", None, 256)]).unwrap();
    assert!(matches!(two.find(None, Algorithm::RS256), Lookup::Missing));
}

#[test]
fn failure_messages_name_the_failure_and_map_to_http() {
    let messages: Vec<String> = [
        AuthFailure::Malformed,
        AuthFailure::UnsupportedAlgorithm,
        AuthFailure::InvalidSignature,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
        AuthFailure::WrongIssuer,
        AuthFailure::WrongAudience,
        AuthFailure::MissingSubject,
        AuthFailure::UnknownKey,
        AuthFailure::ProviderUnavailable,
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for (message, word) in messages.iter().zip([
        "malformed",
        "algorithm",
        "signature",
        "expired",
        "not yet valid",
        "issuer",
        "audience",
        "subject",
        "key",
        "unavailable",
    ]) {
        assert!(message.contains(word), "{message}");
    }
    let unavailable = crate::error::Error::from(AuthFailure::ProviderUnavailable);
    assert_eq!(unavailable.status_and_code().0, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    let expired = crate::error::Error::from(AuthFailure::Expired);
    assert_eq!(expired.status_and_code().1, "AUTHENTICATION_ERROR");
    assert_eq!(expired.to_string(), "token expired");
}

#[test]
fn routing_follows_the_configured_issuers() {
    let http = http_client();
    let none = ExternalVerifier::new(&IdentityProviders::default(), http.clone());
    assert!(!none.is_configured() && !none.handles("https://anything"));

    let legacy = IdentityProviders {
        supabase_jwt_secret: Some(crate::config::Secret::new("s")),
        ..IdentityProviders::default()
    };
    let legacy = ExternalVerifier::new(&legacy, http.clone());
    assert!(legacy.is_configured());
    assert!(legacy.handles("https://abc.supabase.co/auth/v1"));
    assert!(!legacy.handles("/auth/v1") && !legacy.handles("supabase"));
    assert!(!format!("{legacy:?}").contains("\"s\""));

    let full = IdentityProviders {
        supabase_project_url: Some("https://abc.supabase.co".into()),
        supabase_jwt_secret: Some(crate::config::Secret::new("s")),
        clerk_issuer_url: Some("https://clerk.example.com".into()),
        oidc: Some(crate::config::OidcProvider {
            jwks_url: "https://idp.example/jwks".into(),
            issuer: "https://idp.example/".into(),
            audience: None,
        }),
        ..IdentityProviders::default()
    };
    let full = ExternalVerifier::new(&full, http);
    for issuer in ["https://abc.supabase.co/auth/v1", "https://clerk.example.com", "https://idp.example/"] {
        assert!(full.handles(issuer), "{issuer}");
    }
    for issuer in ["https://other.supabase.co/auth/v1", "https://clerk.example.com/", "https://idp.example"] {
        assert!(!full.handles(issuer), "{issuer}");
    }
}

#[test]
fn verifiers_are_shared_across_tasks() {
    fn is_send_and_sync<T: Send + Sync>(_: &T) {}
    fn is_send<T: Send>(_: T) {}
    let verifier = ExternalVerifier::new(&IdentityProviders::default(), http_client());
    is_send_and_sync(&verifier);
    is_send(verifier.verify("never polled"));
}
