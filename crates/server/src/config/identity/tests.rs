use std::collections::HashMap;

use super::*;
use crate::config::Config;

fn load(pairs: &[(&str, &str)]) -> Result<IdentityProviders, Vec<String>> {
    let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let lookup = |name: &str| map.get(name).cloned();
    let mut vars = Vars::new(&lookup);
    let identity = IdentityProviders::from_vars(&mut vars);
    let problems = vars.into_problems();
    if problems.is_empty() { Ok(identity) } else { Err(problems) }
}

fn problem(pairs: &[(&str, &str)]) -> String {
    load(pairs).unwrap_err().join("; ")
}

#[test]
fn nothing_is_configured_by_default() {
    let identity = load(&[]).unwrap();
    assert_eq!(identity.supabase_project_url, None);
    assert!(identity.supabase_jwt_secret.is_none());
    assert_eq!(identity.clerk_issuer_url, None);
    assert_eq!(identity.oidc, None);
    assert_eq!(identity.jwks_cache, Duration::from_secs(600));
    assert_eq!(identity.role_claim, None);
}

#[test]
fn provider_urls_are_read_without_trailing_slashes() {
    let identity = load(&[
        ("SUPABASE_PROJECT_URL", "https://abc.supabase.co/"),
        ("CLERK_ISSUER_URL", "https://clerk.example.com/"),
        ("JWKS_CACHE_SECONDS", "60"),
    ])
    .unwrap();
    assert_eq!(identity.supabase_project_url.as_deref(), Some("https://abc.supabase.co"));
    assert_eq!(identity.clerk_issuer_url.as_deref(), Some("https://clerk.example.com"));
    assert_eq!(identity.jwks_cache, Duration::from_secs(60));
}

#[test]
fn oidc_issuer_is_kept_verbatim_because_iss_is_compared_exactly() {
    let identity = load(&[
        ("OAUTH_JWKS_URL", "https://tenant.auth0.com/.well-known/jwks.json"),
        ("OAUTH_ISSUER", "https://tenant.auth0.com/"),
        ("OAUTH_AUDIENCE", "https://api.example.com"),
    ])
    .unwrap();
    let oidc = identity.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://tenant.auth0.com/");
    assert_eq!(oidc.jwks_url, "https://tenant.auth0.com/.well-known/jwks.json");
    assert_eq!(oidc.audience.as_deref(), Some("https://api.example.com"));
}

#[test]
fn oidc_jwks_url_and_issuer_are_required_together() {
    assert!(problem(&[("OAUTH_JWKS_URL", "https://idp.example/jwks")]).starts_with("OAUTH_ISSUER:"));
    assert!(problem(&[("OAUTH_ISSUER", "https://idp.example")]).contains("OAUTH_JWKS_URL"));
    assert!(problem(&[("OAUTH_AUDIENCE", "api")]).starts_with("OAUTH_AUDIENCE:"));
}

#[test]
fn urls_must_be_http_or_https() {
    for name in ["SUPABASE_PROJECT_URL", "CLERK_ISSUER_URL"] {
        for bad in ["ftp://example.com", "example.com", "https://", "javascript:alert(1)"] {
            assert!(problem(&[(name, bad)]).starts_with(&format!("{name}:")), "{name}={bad}");
        }
    }
    let bad_jwks = problem(&[("OAUTH_JWKS_URL", "file:///etc/jwks.json"), ("OAUTH_ISSUER", "https://idp.example")]);
    assert!(bad_jwks.starts_with("OAUTH_JWKS_URL:"), "{bad_jwks}");
    let bad_issuer =
        problem(&[("OAUTH_JWKS_URL", "https://idp.example/jwks"), ("OAUTH_ISSUER", "https://idp.example?x=1")]);
    assert!(bad_issuer.starts_with("OAUTH_ISSUER:"), "{bad_issuer}");
}

#[test]
fn jwks_cache_seconds_is_bounded() {
    assert!(problem(&[("JWKS_CACHE_SECONDS", "0")]).starts_with("JWKS_CACHE_SECONDS:"));
    assert!(problem(&[("JWKS_CACHE_SECONDS", "ten")]).starts_with("JWKS_CACHE_SECONDS:"));
}

#[test]
fn role_claim_accepts_paths_users_cannot_edit() {
    for path in ["app_metadata.role", "public_metadata.role", "role", "https://example.com/claims.role"] {
        let identity = load(&[("AUTH_ROLE_CLAIM", path)]).unwrap();
        assert_eq!(identity.role_claim.unwrap().to_string(), path);
    }
    let claim = RoleClaim::new("app_metadata.role").unwrap();
    assert_eq!(claim.segments().collect::<Vec<_>>(), ["app_metadata", "role"]);
}

#[test]
fn role_claim_refuses_user_editable_metadata_naming_the_variable() {
    for path in ["user_metadata.role", "unsafe_metadata.role", "User_Metadata.role", "user_metadata"] {
        let message = problem(&[("AUTH_ROLE_CLAIM", path)]);
        assert!(message.starts_with("AUTH_ROLE_CLAIM:") && message.contains("user-editable"), "{message}");
    }
    for path in ["", ".", "app_metadata..role", "role."] {
        assert!(RoleClaim::new(path).is_err(), "{path:?}");
    }
}

#[test]
fn config_reports_identity_problems_and_redacts_the_secret() {
    let vars = |pairs: &'static [(&'static str, &'static str)]| {
        let map: HashMap<&str, &str> =
            pairs.iter().copied().chain([("SECRET_KEY", "test-secret-key-0123456789")]).collect();
        Config::from_lookup(move |name| map.get(name).map(|v| v.to_string()))
    };
    let err = vars(&[("AUTH_ROLE_CLAIM", "user_metadata.role")]).unwrap_err();
    assert!(err.to_string().contains("AUTH_ROLE_CLAIM:"), "{err}");
    let config =
        vars(&[("SUPABASE_JWT_SECRET", "super-secret-jwt"), ("CLERK_ISSUER_URL", "https://clerk.example")]).unwrap();
    assert!(!format!("{config:?}").contains("super-secret-jwt"));
    let described: HashMap<_, _> = config.describe().into_iter().collect();
    assert_eq!(described["SUPABASE_JWT_SECRET"], "[REDACTED]");
    assert_eq!(described["CLERK_ISSUER_URL"], "https://clerk.example");
    assert_eq!(described["JWKS_CACHE_SECONDS"], "600");
    assert_eq!(described["AUTH_ROLE_CLAIM"], "");
}
