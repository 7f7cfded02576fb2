//! Verification of access tokens issued by external identity providers: Supabase (JWKS or
//! the legacy HS256 secret), Clerk, and any OpenID Connect provider.
//!
//! A token is routed by its (not yet trusted) `iss` to the provider that claims it, then
//! verified with that provider's keys: the algorithm must suit the key, the signature must
//! match, and `exp`, `nbf` (60 s leeway), `iss`, `aud` (where expected) and `sub` must hold.
//! Keys are fetched lazily and cached per provider (see `jwks`). The result is an
//! [`ExternalIdentity`]; what to do with it (find or create a user) is decided elsewhere.

mod claims;
mod failure;
mod jwks;
mod keys;
mod provider;
mod published;
mod token;

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;

pub use failure::AuthFailure;
pub use published::PublishedKeys;

use crate::config::{IdentityProviders, RoleClaim};
use jwks::JwksCache;
use provider::{Issuer, KeySource, Provider};

/// Supabase access tokens are issued for this audience.
const SUPABASE_AUDIENCE: &str = "authenticated";
/// The path of Supabase's auth service under the project URL.
const SUPABASE_AUTH_PATH: &str = "/auth/v1";
/// Where JWKS are published under an issuer (Supabase, Clerk).
const JWKS_PATH: &str = "/.well-known/jwks.json";

/// Verifies external tokens. Cheap to clone: clones share providers and key caches.
#[derive(Clone)]
pub struct ExternalVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    providers: Vec<Provider>,
    role_claim: Option<RoleClaim>,
}

/// Who a verified external token says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// `supabase`, `clerk` or `oidc`.
    pub provider: &'static str,
    /// The provider's user id (`sub`), never empty.
    pub subject: String,
    /// `email`, `user_metadata.email` or `app_metadata.email`: the first shaped like an address.
    pub email: Option<String>,
    /// Whether a claim the provider sets vouches for that email (`email_verified` and the
    /// like, never `user_metadata`); false without an email.
    pub email_verified: bool,
    /// `name`, `full_name`, `user_metadata.full_name`, `user_metadata.name`, or
    /// `given_name` + `family_name`, whichever comes first.
    pub full_name: Option<String>,
    /// `picture`, `avatar_url`, `user_metadata.avatar_url`, `user_metadata.picture` or
    /// `image_url`: the first http(s) URL.
    pub avatar_url: Option<String>,
    /// `user`, `admin` or `super_admin`, only from the `AUTH_ROLE_CLAIM` claim.
    pub role: Option<String>,
    /// The provider's session id (`sid` or `session_id`).
    pub session_id: Option<String>,
}

impl ExternalVerifier {
    /// A verifier for the configured providers, fetching keys with `http`.
    pub fn new(settings: &IdentityProviders, http: reqwest::Client) -> Self {
        let jwks = |name, url: String| KeySource::Jwks(JwksCache::new(name, url, http.clone(), settings.jwks_cache));
        let mut providers = Vec::new();
        let supabase_issuer = settings.supabase_project_url.as_ref().map(|url| format!("{url}{SUPABASE_AUTH_PATH}"));
        if let Some(issuer) = &supabase_issuer {
            providers.push(Provider {
                name: "supabase",
                issuer: Issuer::Exact(issuer.clone()),
                audience: Some(SUPABASE_AUDIENCE.to_owned()),
                keys: jwks("supabase", format!("{issuer}{JWKS_PATH}")),
            });
        }
        if let Some(secret) = &settings.supabase_jwt_secret {
            providers.push(Provider {
                name: "supabase",
                issuer: supabase_issuer.map_or(Issuer::Suffix(SUPABASE_AUTH_PATH), Issuer::Exact),
                audience: Some(SUPABASE_AUDIENCE.to_owned()),
                keys: KeySource::Secret(DecodingKey::from_secret(secret.expose().as_bytes())),
            });
        }
        if let Some(issuer) = &settings.clerk_issuer_url {
            providers.push(Provider {
                name: "clerk",
                issuer: Issuer::Exact(issuer.clone()),
                audience: None,
                keys: jwks("clerk", format!("{issuer}{JWKS_PATH}")),
            });
        }
        if let Some(oidc) = &settings.oidc {
            providers.push(Provider {
                name: "oidc",
                issuer: Issuer::Exact(oidc.issuer.clone()),
                audience: oidc.audience.clone(),
                keys: jwks("oidc", oidc.jwks_url.clone()),
            });
        }
        ExternalVerifier { inner: Arc::new(Inner { providers, role_claim: settings.role_claim.clone() }) }
    }

    /// Whether any provider is configured.
    pub fn is_configured(&self) -> bool {
        !self.inner.providers.is_empty()
    }

    /// The names of the configured providers (`supabase`, `clerk`, `oidc`), each once.
    pub fn provider_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.inner.providers.iter().map(|provider| provider.name).collect();
        names.dedup();
        names
    }

    /// Whether some configured provider claims tokens of this issuer.
    pub fn handles(&self, issuer: &str) -> bool {
        self.inner.providers.iter().any(|provider| provider.claims_issuer(issuer))
    }

    /// Verifies `token` and reads the identity it carries.
    pub async fn verify(&self, token: &str) -> Result<ExternalIdentity, AuthFailure> {
        let peeked = token::peek(token)?;
        let provider = self.provider_for(&peeked)?;
        let (claims, subject) = provider.verify(token, &peeked).await?;
        Ok(claims::identity(provider.name, subject, &claims, self.inner.role_claim.as_ref()))
    }

    /// The provider that claims the token's issuer and may verify its algorithm.
    fn provider_for(&self, peeked: &token::UnverifiedToken) -> Result<&Provider, AuthFailure> {
        let issuer = peeked.issuer.as_deref().ok_or(AuthFailure::WrongIssuer)?;
        let mut claimed = self.inner.providers.iter().filter(|provider| provider.claims_issuer(issuer)).peekable();
        if claimed.peek().is_none() {
            return Err(AuthFailure::WrongIssuer);
        }
        claimed.find(|provider| provider.accepts(peeked.algorithm)).ok_or(AuthFailure::UnsupportedAlgorithm)
    }
}

impl fmt::Debug for ExternalVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for provider in &self.inner.providers {
            let issuer = match &provider.issuer {
                Issuer::Exact(issuer) => issuer.clone(),
                Issuer::Suffix(suffix) => format!("*{suffix}"),
            };
            let keys = match &provider.keys {
                KeySource::Jwks(cache) => cache.url().to_owned(),
                KeySource::Secret(_) => "[shared secret]".to_owned(),
            };
            list.entry(&format_args!("{} {issuer} ({keys})", provider.name));
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests;
