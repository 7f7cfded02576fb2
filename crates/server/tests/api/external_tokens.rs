//! External identity-provider tokens, verified against a fake provider's JWKS on a real port.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use omnistack::auth::external::{AuthFailure, ExternalIdentity, ExternalVerifier};
use omnistack::config::{Config, IdentityProviders, OidcProvider, RoleClaim, Secret};
use omnistack_testkit::idp::{FakeIdp, FakeKey, SUBJECT, now};
use serde_json::{Value, json};

const LEGACY_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters";

fn verifier(settings: &IdentityProviders) -> ExternalVerifier {
    omnistack::install_crypto_provider();
    ExternalVerifier::new(settings, reqwest::Client::new())
}

fn clerk_settings(idp: &FakeIdp) -> IdentityProviders {
    IdentityProviders { clerk_issuer_url: Some(idp.issuer()), ..IdentityProviders::default() }
}

fn clerk(idp: &FakeIdp) -> ExternalVerifier {
    verifier(&clerk_settings(idp))
}

/// A Supabase project on a fake provider: issuer `<base>/auth/v1`.
async fn supabase_idp() -> FakeIdp {
    FakeIdp::start_at("/auth/v1").await
}

fn supabase(idp: &FakeIdp, secret: Option<&str>) -> ExternalVerifier {
    verifier(&IdentityProviders {
        supabase_project_url: Some(idp.base_url()),
        supabase_jwt_secret: secret.map(Secret::new),
        ..IdentityProviders::default()
    })
}

fn oidc(idp: &FakeIdp, audience: Option<&str>) -> ExternalVerifier {
    verifier(&IdentityProviders {
        oidc: Some(OidcProvider {
            jwks_url: idp.jwks_url(),
            issuer: idp.issuer(),
            audience: audience.map(str::to_owned),
        }),
        ..IdentityProviders::default()
    })
}

fn hs256(secret: &str, idp: &FakeIdp, claims: Value) -> String {
    idp.hmac_token(secret.as_bytes(), Header::new(Algorithm::HS256), claims)
}

async fn failure(verifier: &ExternalVerifier, token: &str) -> AuthFailure {
    match verifier.verify(token).await {
        Ok(identity) => panic!("token accepted: {identity:?}"),
        Err(failure) => failure,
    }
}

#[tokio::test]
async fn clerk_tokens_verify_with_every_supported_algorithm() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    assert!(verifier.is_configured() && verifier.handles(&idp.issuer()));
    let signed = [
        (FakeKey::Rsa, Algorithm::RS256),
        (FakeKey::Rsa, Algorithm::RS384),
        (FakeKey::Rsa, Algorithm::RS512),
        (FakeKey::Rsa, Algorithm::PS256),
        (FakeKey::RsaPinned, Algorithm::RS256),
        (FakeKey::Es256, Algorithm::ES256),
        (FakeKey::Es384, Algorithm::ES384),
        (FakeKey::Ed25519, Algorithm::EdDSA),
    ];
    for (key, alg) in signed {
        let token = idp.token_with(key, alg, idp.claims(json!({})));
        let identity = verifier.verify(&token).await.unwrap_or_else(|f| panic!("{key:?} {alg:?}: {f}"));
        assert_eq!((identity.provider, identity.subject.as_str()), ("clerk", SUBJECT));
    }
    assert_eq!(idp.jwks_requests(), 1, "one fetch serves every key");
}

#[tokio::test]
async fn supabase_tokens_need_the_project_issuer_and_the_authenticated_audience() {
    let idp = supabase_idp().await;
    let verifier = supabase(&idp, None);
    assert!(verifier.handles(&format!("{}/auth/v1", idp.base_url())));
    assert!(!verifier.handles(&idp.base_url()));
    let token = idp.token_with(FakeKey::Es256, Algorithm::ES256, idp.claims(json!({"aud": "authenticated"})));
    let identity = verifier.verify(&token).await.unwrap();
    assert_eq!(identity.provider, "supabase");
    for aud in [json!(null), json!("anon"), json!(["anon"])] {
        let token = idp.token_with(FakeKey::Es256, Algorithm::ES256, idp.claims(json!({ "aud": aud })));
        assert_eq!(failure(&verifier, &token).await, AuthFailure::WrongAudience, "aud {aud}");
    }
}

#[tokio::test]
async fn oidc_audience_is_enforced_only_when_configured() {
    let idp = FakeIdp::start().await;
    let strict = oidc(&idp, Some("api://omnistack"));
    let ok = idp.token(idp.claims(json!({"aud": ["other", "api://omnistack"]})));
    assert_eq!(strict.verify(&ok).await.unwrap().provider, "oidc");
    for aud in [json!("other"), json!(null), json!([])] {
        let token = idp.token(idp.claims(json!({ "aud": aud })));
        assert_eq!(failure(&strict, &token).await, AuthFailure::WrongAudience, "aud {aud}");
    }
    let open = oidc(&idp, None);
    assert!(open.verify(&idp.token(idp.claims(json!({"aud": "anything"})))).await.is_ok());
    assert!(open.verify(&idp.token(idp.claims(json!({})))).await.is_ok());
}

#[tokio::test]
async fn supabase_legacy_secret_verifies_hs256_tokens_of_any_auth_v1_issuer() {
    let idp = supabase_idp().await;
    let verifier = verifier(&IdentityProviders {
        supabase_jwt_secret: Some(Secret::new(LEGACY_SECRET)),
        ..IdentityProviders::default()
    });
    assert!(verifier.handles(&idp.issuer()) && !verifier.handles("supabase"));
    let claims = idp.claims(json!({"aud": "authenticated"}));
    let identity = verifier.verify(&hs256(LEGACY_SECRET, &idp, claims.clone())).await.unwrap();
    assert_eq!((identity.provider, identity.subject.as_str()), ("supabase", SUBJECT));

    let wrong_secret = hs256("another-projects-secret-of-enough-length", &idp, claims.clone());
    assert_eq!(failure(&verifier, &wrong_secret).await, AuthFailure::InvalidSignature);
    let api_key = hs256(LEGACY_SECRET, &idp, json!({"iss": "supabase", "role": "service_role", "exp": now() + 60}));
    assert_eq!(failure(&verifier, &api_key).await, AuthFailure::WrongIssuer);
    let no_audience = hs256(LEGACY_SECRET, &idp, idp.claims(json!({})));
    assert_eq!(failure(&verifier, &no_audience).await, AuthFailure::WrongAudience);
    let asymmetric = idp.token(claims);
    assert_eq!(failure(&verifier, &asymmetric).await, AuthFailure::UnsupportedAlgorithm);
    assert_eq!(idp.jwks_requests(), 0, "the legacy secret needs no JWKS");
}

#[tokio::test]
async fn supabase_with_url_and_secret_routes_by_algorithm() {
    let idp = supabase_idp().await;
    let verifier = supabase(&idp, Some(LEGACY_SECRET));
    let claims = idp.claims(json!({"aud": "authenticated"}));
    assert!(verifier.verify(&hs256(LEGACY_SECRET, &idp, claims.clone())).await.is_ok());
    assert_eq!(idp.jwks_requests(), 0);
    assert!(verifier.verify(&idp.token_with(FakeKey::Es256, Algorithm::ES256, claims.clone())).await.is_ok());
    assert_eq!(idp.jwks_requests(), 1);
    let other_project = hs256(
        LEGACY_SECRET,
        &idp,
        json!({"iss": "https://other.supabase.co/auth/v1", "aud": "authenticated", "sub": "u", "exp": now() + 60}),
    );
    assert_eq!(failure(&verifier, &other_project).await, AuthFailure::WrongIssuer);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    for alg in ["none", "None", "nOnE"] {
        let token = idp.unsigned_token(json!({"alg": alg, "kid": idp.kid(FakeKey::Rsa)}), idp.claims(json!({})));
        assert_eq!(failure(&verifier, &token).await, AuthFailure::UnsupportedAlgorithm, "{alg}");
    }
    let unsigned_hs = idp.unsigned_token(json!({"alg": "HS256"}), idp.claims(json!({})));
    assert_eq!(failure(&verifier, &unsigned_hs).await, AuthFailure::UnsupportedAlgorithm);
    let legacy = verifier_with_secret();
    let unsigned_legacy = idp.unsigned_token(json!({"alg": "HS256"}), legacy_claims());
    assert_eq!(failure(&legacy, &unsigned_legacy).await, AuthFailure::InvalidSignature);
}

fn verifier_with_secret() -> ExternalVerifier {
    verifier(&IdentityProviders {
        supabase_jwt_secret: Some(Secret::new(LEGACY_SECRET)),
        ..IdentityProviders::default()
    })
}

fn legacy_claims() -> Value {
    json!({"iss": "https://p.supabase.co/auth/v1", "aud": "authenticated", "sub": "u", "exp": now() + 60})
}

#[tokio::test]
async fn algorithms_must_match_the_key_type() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    assert!(verifier.verify(&idp.token(idp.claims(json!({})))).await.is_ok(), "keys are cached");

    // HS256 "signed" with the published RSA public key: the classic key-confusion attack.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(idp.kid(FakeKey::Rsa));
    let confused = idp.hmac_token(idp.rsa_public_pem().as_bytes(), header, idp.claims(json!({})));
    assert_eq!(failure(&verifier, &confused).await, AuthFailure::UnsupportedAlgorithm);

    // An RS256 token pointing at the EC key, and PS256 at the key pinned to RS256.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(idp.kid(FakeKey::Es256));
    let rsa_on_ec = idp.token_with_header(FakeKey::Rsa, header, idp.claims(json!({})));
    assert_eq!(failure(&verifier, &rsa_on_ec).await, AuthFailure::UnsupportedAlgorithm);
    let pss_on_pinned = idp.token_with(FakeKey::RsaPinned, Algorithm::PS256, idp.claims(json!({})));
    assert_eq!(failure(&verifier, &pss_on_pinned).await, AuthFailure::UnsupportedAlgorithm);
    assert_eq!(idp.jwks_requests(), 1, "a known kid with the wrong algorithm does not refetch");
}

#[tokio::test]
async fn signatures_must_match_the_published_key() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    let forged = idp.forged_token(idp.claims(json!({})));
    assert_eq!(failure(&verifier, &forged).await, AuthFailure::InvalidSignature);

    let token = idp.token_with(FakeKey::Ed25519, Algorithm::EdDSA, idp.claims(json!({})));
    let parts: Vec<&str> = token.split('.').collect();
    let elevated = URL_SAFE_NO_PAD.encode(idp.claims(json!({"sub": "admin_user"})).to_string());
    let tampered = format!("{}.{elevated}.{}", parts[0], parts[2]);
    assert_eq!(failure(&verifier, &tampered).await, AuthFailure::InvalidSignature);
    assert_eq!(failure(&verifier, "not.a.jwt").await, AuthFailure::Malformed);
}

#[tokio::test]
async fn expiry_is_enforced_with_a_minute_of_leeway() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    let expired = idp.token(idp.claims(json!({"exp": now() - 3600})));
    assert_eq!(failure(&verifier, &expired).await, AuthFailure::Expired);
    let just_expired = idp.token(idp.claims(json!({"exp": now() - 30})));
    assert!(verifier.verify(&just_expired).await.is_ok());
    let no_expiry = idp.token(idp.claims(json!({"exp": null})));
    assert_eq!(failure(&verifier, &no_expiry).await, AuthFailure::Malformed);
}

#[tokio::test]
async fn not_before_is_enforced_with_a_minute_of_leeway() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    let future = idp.token(idp.claims(json!({"nbf": now() + 3600})));
    assert_eq!(failure(&verifier, &future).await, AuthFailure::NotYetValid);
    let beyond_leeway = idp.token(idp.claims(json!({"nbf": now() + 120})));
    assert_eq!(failure(&verifier, &beyond_leeway).await, AuthFailure::NotYetValid);
    let within_leeway = idp.token(idp.claims(json!({"nbf": now() + 30})));
    assert!(verifier.verify(&within_leeway).await.is_ok());
}

#[tokio::test]
async fn issuer_must_be_the_configured_one() {
    let idp = FakeIdp::start().await;
    let clerk = clerk(&idp);
    for iss in [json!("https://evil.example"), json!(format!("{}/", idp.issuer())), json!(null), json!(7)] {
        let token = idp.token(idp.claims(json!({ "iss": iss })));
        assert_eq!(failure(&clerk, &token).await, AuthFailure::WrongIssuer, "iss {iss}");
    }
    let nothing = verifier(&IdentityProviders::default());
    assert!(!nothing.is_configured());
    assert_eq!(failure(&nothing, &idp.token(idp.claims(json!({})))).await, AuthFailure::WrongIssuer);
    assert_eq!(idp.jwks_requests(), 0, "tokens of unknown issuers never reach the JWKS");
}

#[tokio::test]
async fn subject_must_be_present_and_not_blank() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    for sub in [json!(null), json!(""), json!("   "), json!(42)] {
        let token = idp.token(idp.claims(json!({ "sub": sub })));
        assert_eq!(failure(&verifier, &token).await, AuthFailure::MissingSubject, "sub {sub}");
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_accepted() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    let old = idp.token(idp.claims(json!({})));
    assert!(verifier.verify(&old).await.is_ok());
    idp.rotate();
    let new = idp.token(idp.claims(json!({})));
    assert!(verifier.verify(&new).await.is_ok(), "the new kid triggers a refetch");
    assert_eq!(idp.jwks_requests(), 2);
    assert!(verifier.verify(&new).await.is_ok());
    assert_eq!(failure(&verifier, &old).await, AuthFailure::UnknownKey, "the old kid is gone");
    assert_eq!(idp.jwks_requests(), 2, "no more fetches within 30 s");
}

#[tokio::test]
async fn unknown_key_ids_refetch_at_most_once_per_interval() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    assert!(verifier.verify(&idp.token(idp.claims(json!({})))).await.is_ok());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("made-up".into());
    let unknown = idp.token_with_header(FakeKey::Rsa, header, idp.claims(json!({})));
    assert_eq!(failure(&verifier, &unknown).await, AuthFailure::UnknownKey);
    assert_eq!(idp.jwks_requests(), 2);
    assert_eq!(failure(&verifier, &unknown).await, AuthFailure::UnknownKey);
    assert_eq!(idp.jwks_requests(), 2);
}

#[tokio::test]
async fn cached_keys_serve_until_the_cache_time_passes() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    for _ in 0..3 {
        assert!(verifier.verify(&idp.token(idp.claims(json!({})))).await.is_ok());
    }
    assert_eq!(idp.jwks_requests(), 1);

    let short = verifier_with_cache(&idp, Duration::from_millis(300));
    assert!(short.verify(&idp.token(idp.claims(json!({})))).await.is_ok());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(short.verify(&idp.token(idp.claims(json!({})))).await.is_ok());
    assert_eq!(idp.jwks_requests(), 3, "a stale set is fetched again");
}

fn verifier_with_cache(idp: &FakeIdp, cache: Duration) -> ExternalVerifier {
    verifier(&IdentityProviders { jwks_cache: cache, ..clerk_settings(idp) })
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_provider_fails() {
    let idp = FakeIdp::start().await;
    let verifier = verifier_with_cache(&idp, Duration::ZERO);
    let token = idp.token(idp.claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    idp.set_failing(true);
    assert!(verifier.verify(&token).await.is_ok(), "500 from the JWKS keeps the cached keys");
    assert_eq!(idp.jwks_requests(), 2);
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(idp.jwks_requests(), 2, "a failing provider is left alone for a while");

    let garbage_idp = FakeIdp::start().await;
    let verifier = verifier_with_cache(&garbage_idp, Duration::ZERO);
    let token = garbage_idp.token(garbage_idp.claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    garbage_idp.set_garbage(true);
    assert!(verifier.verify(&token).await.is_ok(), "garbage does not replace the cached keys");
    assert_eq!(garbage_idp.jwks_requests(), 2);
}

#[tokio::test]
async fn the_last_good_keys_serve_while_the_provider_is_unreachable() {
    let mut idp = FakeIdp::start().await;
    let verifier = verifier_with_cache(&idp, Duration::ZERO);
    let token = idp.token(idp.claims(json!({})));
    assert!(verifier.verify(&token).await.is_ok());
    idp.stop().await;
    assert!(verifier.verify(&token).await.is_ok());

    let mut cold = FakeIdp::start().await;
    let cold_verifier = clerk(&cold);
    let token = cold.token(cold.claims(json!({})));
    cold.stop().await;
    assert_eq!(failure(&cold_verifier, &token).await, AuthFailure::ProviderUnavailable);
}

#[tokio::test]
async fn a_provider_that_is_down_from_the_start_is_unavailable() {
    let idp = FakeIdp::start().await;
    idp.set_failing(true);
    let verifier = clerk(&idp);
    let token = idp.token(idp.claims(json!({})));
    assert_eq!(failure(&verifier, &token).await, AuthFailure::ProviderUnavailable);
    assert_eq!(failure(&verifier, &token).await, AuthFailure::ProviderUnavailable);
    assert_eq!(idp.jwks_requests(), 1, "retries wait a while");
}

#[tokio::test]
async fn concurrent_requests_share_one_jwks_fetch() {
    let idp = FakeIdp::start().await;
    let verifier = clerk(&idp);
    let token = idp.token_with(FakeKey::Es256, Algorithm::ES256, idp.claims(json!({})));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!(idp.jwks_requests(), 1);
}

#[tokio::test]
async fn roles_are_read_only_from_auth_role_claim() {
    let idp = FakeIdp::start().await;
    let claims = idp.claims(json!({
        "role": "admin",
        "public_metadata": {"role": "super_admin"},
        "unsafe_metadata": {"role": "super_admin"},
    }));
    let token = idp.token(claims);
    assert_eq!(clerk(&idp).verify(&token).await.unwrap().role, None, "no AUTH_ROLE_CLAIM: no role");

    let config = config_with(&[("CLERK_ISSUER_URL", &idp.issuer()), ("AUTH_ROLE_CLAIM", "public_metadata.role")]);
    let identity = verifier(&config.unwrap().identity).verify(&token).await.unwrap();
    assert_eq!(identity.role.as_deref(), Some("super_admin"));

    let not_a_role = idp.token(idp.claims(json!({"public_metadata": {"role": "owner"}})));
    let config = config_with(&[("CLERK_ISSUER_URL", &idp.issuer()), ("AUTH_ROLE_CLAIM", "public_metadata.role")]);
    assert_eq!(verifier(&config.unwrap().identity).verify(&not_a_role).await.unwrap().role, None);

    for editable in ["user_metadata.role", "unsafe_metadata.role"] {
        let err = config_with(&[("CLERK_ISSUER_URL", &idp.issuer()), ("AUTH_ROLE_CLAIM", editable)]).unwrap_err();
        assert!(err.to_string().contains("AUTH_ROLE_CLAIM:"), "{err}");
        assert!(RoleClaim::new(editable).is_err());
    }
}

fn config_with(pairs: &[(&str, &str)]) -> Result<Config, omnistack::config::ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain([("SECRET_KEY".to_owned(), "external-token-tests-secret".to_owned())])
        .collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

#[tokio::test]
async fn profile_claims_come_from_each_providers_spelling() {
    let idp = supabase_idp().await;
    let supabase_token = idp.token_with(
        FakeKey::Es256,
        Algorithm::ES256,
        idp.claims(json!({
            "aud": "authenticated",
            "email": "ada@example.com",
            "email_verified": true,
            "session_id": "8f1c-session",
            "user_metadata": {"full_name": "Ada Lovelace", "name": "ada", "avatar_url": "https://avatars.example/ada.png"},
        })),
    );
    let identity = supabase(&idp, None).verify(&supabase_token).await.unwrap();
    assert_eq!(
        identity,
        ExternalIdentity {
            provider: "supabase",
            subject: SUBJECT.into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            full_name: Some("Ada Lovelace".into()),
            avatar_url: Some("https://avatars.example/ada.png".into()),
            role: None,
            session_id: Some("8f1c-session".into()),
        }
    );

    let clerk_idp = FakeIdp::start().await;
    let clerk_token = clerk_idp.token(clerk_idp.claims(json!({
        "sid": "sess_2abc",
        "given_name": "Grace",
        "family_name": "Hopper",
        "image_url": "https://img.clerk.com/grace",
        "email": "not-an-email",
    })));
    let identity = clerk(&clerk_idp).verify(&clerk_token).await.unwrap();
    assert_eq!(identity.full_name.as_deref(), Some("Grace Hopper"));
    assert_eq!(identity.avatar_url.as_deref(), Some("https://img.clerk.com/grace"));
    assert_eq!(identity.session_id.as_deref(), Some("sess_2abc"));
    assert_eq!((identity.email, identity.email_verified), (None, false));
}
