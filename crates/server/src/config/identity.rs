//! Settings for verifying tokens issued by external identity providers (Supabase, Clerk,
//! any OpenID Connect provider).
//!
//! Every provider is optional; with none configured, external tokens are simply not
//! accepted. The role claim may not point into metadata that users can edit themselves.

use std::fmt;
use std::time::Duration;

use super::parse::{self, Vars};
use super::{Secret, redact_url};

/// Which external identity providers are trusted, and how their keys are cached.
#[derive(Clone, Debug)]
pub struct IdentityProviders {
    /// `SUPABASE_PROJECT_URL`: `https://<ref>.supabase.co`, without a trailing slash. Its
    /// tokens have the issuer `<url>/auth/v1` and keys at `<url>/auth/v1/.well-known/jwks.json`.
    pub supabase_project_url: Option<String>,
    /// `SUPABASE_JWT_SECRET`: the project's legacy HS256 signing secret.
    pub supabase_jwt_secret: Option<Secret>,
    /// `CLERK_ISSUER_URL`: the Clerk Frontend API URL, without a trailing slash; keys at
    /// `<url>/.well-known/jwks.json`.
    pub clerk_issuer_url: Option<String>,
    /// `OAUTH_JWKS_URL`, `OAUTH_ISSUER` and `OAUTH_AUDIENCE`: any other OIDC provider.
    pub oidc: Option<OidcProvider>,
    /// `JWKS_CACHE_SECONDS`: how long a fetched key set is used before it is fetched again.
    pub jwks_cache: Duration,
    /// `AUTH_ROLE_CLAIM`: where a token may carry the caller's role.
    pub role_claim: Option<RoleClaim>,
}

/// A generic OpenID Connect provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcProvider {
    /// `OAUTH_JWKS_URL`: where the provider publishes its signing keys.
    pub jwks_url: String,
    /// `OAUTH_ISSUER`: the exact `iss` of its tokens.
    pub issuer: String,
    /// `OAUTH_AUDIENCE`: when set, `aud` must contain it.
    pub audience: Option<String>,
}

/// A dotted path to the claim holding a role, e.g. `app_metadata.role`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleClaim {
    path: String,
}

/// Claim objects that users can edit about themselves, so never a source of privilege.
const USER_EDITABLE_ROOTS: [&str; 3] = ["user_metadata", "unsafe_metadata", "raw_user_meta_data"];

/// The default of `JWKS_CACHE_SECONDS`.
const DEFAULT_JWKS_CACHE_SECONDS: u64 = 600;

impl RoleClaim {
    /// Checks a dotted claim path: non-empty segments, not rooted in user-editable metadata.
    pub fn new(path: &str) -> Result<RoleClaim, String> {
        let path = path.trim();
        if path.is_empty() || path.split('.').any(|segment| segment.trim().is_empty()) {
            return Err(format!("must be a dotted claim path such as app_metadata.role, got {path:?}"));
        }
        let root = path.split('.').next().unwrap_or_default().to_ascii_lowercase();
        if USER_EDITABLE_ROOTS.contains(&root.as_str()) {
            return Err(format!(
                "{path:?} is user-editable metadata, so anyone could grant themselves a role; \
                 use app_metadata (Supabase) or public_metadata (Clerk)"
            ));
        }
        Ok(RoleClaim { path: path.to_owned() })
    }

    /// The path as configured.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's segments, outermost first.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.path.split('.')
    }
}

impl fmt::Display for RoleClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl Default for IdentityProviders {
    /// No provider configured, keys cached for the default 600 s.
    fn default() -> Self {
        IdentityProviders {
            supabase_project_url: None,
            supabase_jwt_secret: None,
            clerk_issuer_url: None,
            oidc: None,
            jwks_cache: Duration::from_secs(DEFAULT_JWKS_CACHE_SECONDS),
            role_claim: None,
        }
    }
}

impl IdentityProviders {
    /// Reads the identity-provider variables, recording each problem in `vars`.
    pub(super) fn from_vars(vars: &mut Vars<'_>) -> IdentityProviders {
        let supabase_project_url = vars.optional("SUPABASE_PROJECT_URL", base_url).flatten();
        let supabase_jwt_secret =
            vars.optional("SUPABASE_JWT_SECRET", |v| Ok(Secret::new(v))).flatten().filter(|s| !s.expose().is_empty());
        let clerk_issuer_url = vars.optional("CLERK_ISSUER_URL", base_url).flatten();
        let jwks_url = vars.optional("OAUTH_JWKS_URL", http_url).flatten();
        let has_jwks_url = jwks_url.is_some();
        let issuer = vars
            .parse("OAUTH_ISSUER", "", |v| match (v.is_empty(), has_jwks_url) {
                (true, false) => Ok(None),
                (true, true) => Err("is required when OAUTH_JWKS_URL is set".into()),
                (false, false) => Err("needs OAUTH_JWKS_URL too".into()),
                (false, true) => issuer_url(v).map(Some),
            })
            .flatten();
        let audience = vars
            .optional("OAUTH_AUDIENCE", |v| {
                if has_jwks_url { Ok(v.to_owned()) } else { Err("needs OAUTH_JWKS_URL and OAUTH_ISSUER too".into()) }
            })
            .flatten();
        let oidc = jwks_url.zip(issuer).map(|(jwks_url, issuer)| OidcProvider { jwks_url, issuer, audience });
        let jwks_cache = vars
            .parse("JWKS_CACHE_SECONDS", &DEFAULT_JWKS_CACHE_SECONDS.to_string(), |v| parse::number(v, 1, 86_400))
            .unwrap_or(DEFAULT_JWKS_CACHE_SECONDS);
        let role_claim = vars.optional("AUTH_ROLE_CLAIM", RoleClaim::new).flatten();
        IdentityProviders {
            supabase_project_url,
            supabase_jwt_secret,
            clerk_issuer_url,
            oidc,
            jwks_cache: Duration::from_secs(jwks_cache),
            role_claim,
        }
    }

    /// Every identity variable as `(VARIABLE, value)`, the secret redacted.
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        let url = |value: Option<&String>| value.map(|v| redact_url(v)).unwrap_or_default();
        let oidc = self.oidc.as_ref();
        vec![
            ("SUPABASE_PROJECT_URL", url(self.supabase_project_url.as_ref())),
            ("SUPABASE_JWT_SECRET", self.supabase_jwt_secret.as_ref().map(Secret::to_string).unwrap_or_default()),
            ("CLERK_ISSUER_URL", url(self.clerk_issuer_url.as_ref())),
            ("OAUTH_JWKS_URL", url(oidc.map(|o| &o.jwks_url))),
            ("OAUTH_ISSUER", url(oidc.map(|o| &o.issuer))),
            ("OAUTH_AUDIENCE", oidc.and_then(|o| o.audience.clone()).unwrap_or_default()),
            ("JWKS_CACHE_SECONDS", self.jwks_cache.as_secs().to_string()),
            ("AUTH_ROLE_CLAIM", self.role_claim.as_ref().map(RoleClaim::to_string).unwrap_or_default()),
        ]
    }
}

/// An absolute http(s) URL with a host and no fragment, kept as written.
fn http_url(value: &str) -> Result<String, String> {
    let invalid = || format!("must be an http(s) URL, got {value:?}");
    let parsed = reqwest::Url::parse(value).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid());
    }
    if parsed.fragment().is_some() {
        return Err(format!("must not carry a fragment, got {value:?}"));
    }
    Ok(value.to_owned())
}

/// An issuer identifier: an http(s) URL without query or fragment (OpenID Connect
/// Discovery §3), kept exactly as written because `iss` is compared verbatim.
fn issuer_url(value: &str) -> Result<String, String> {
    let url = http_url(value)?;
    if url.contains('?') {
        return Err(format!("must not carry a query, got {value:?}"));
    }
    Ok(url)
}

/// An issuer URL without a trailing slash, so paths can be appended to it.
fn base_url(value: &str) -> Result<String, String> {
    issuer_url(value).map(|url| url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;
