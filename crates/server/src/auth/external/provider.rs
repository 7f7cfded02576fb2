//! One trusted issuer: which tokens it claims, which algorithms and keys verify them, and
//! which registered claims they must carry.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::AuthFailure;
use super::jwks::JwksCache;
use super::keys::ASYMMETRIC_ALGORITHMS;
use super::token::UnverifiedToken;

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY_SECONDS: u64 = 60;

/// Which `iss` values a provider claims.
pub(super) enum Issuer {
    /// Exactly this issuer.
    Exact(String),
    /// Any issuer ending so (the legacy Supabase secret, when no project URL is set).
    Suffix(&'static str),
}

/// Where a provider's verifying keys come from.
pub(super) enum KeySource {
    /// A published JWKS: asymmetric algorithms only.
    Jwks(JwksCache),
    /// A shared HS256 secret.
    Secret(DecodingKey),
}

/// A trusted token issuer.
pub(super) struct Provider {
    /// `supabase`, `clerk` or `oidc`.
    pub(super) name: &'static str,
    pub(super) issuer: Issuer,
    /// When set, `aud` must contain it.
    pub(super) audience: Option<String>,
    pub(super) keys: KeySource,
}

/// The longest `sub` accepted (providers use ids of a few dozen characters).
const MAX_SUBJECT_CHARS: usize = 255;

impl Provider {
    /// Whether tokens from `issuer` are this provider's.
    pub(super) fn claims_issuer(&self, issuer: &str) -> bool {
        match &self.issuer {
            Issuer::Exact(expected) => issuer == expected,
            Issuer::Suffix(suffix) => issuer.ends_with(suffix) && issuer.len() > suffix.len(),
        }
    }

    /// Whether this provider's keys may verify `algorithm`.
    pub(super) fn accepts(&self, algorithm: Algorithm) -> bool {
        match &self.keys {
            KeySource::Jwks(_) => ASYMMETRIC_ALGORITHMS.contains(&algorithm),
            KeySource::Secret(_) => algorithm == Algorithm::HS256,
        }
    }

    /// Checks the signature and registered claims; returns the claims and the subject.
    pub(super) async fn verify(&self, token: &str, peeked: &UnverifiedToken) -> Result<(Value, String), AuthFailure> {
        let validation = self.validation(peeked.algorithm);
        let decoded = match &self.keys {
            KeySource::Jwks(cache) => {
                let key = cache.key(peeked.kid.as_deref(), peeked.algorithm).await?;
                jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            }
            KeySource::Secret(secret) => jsonwebtoken::decode::<Value>(token, secret, &validation),
        };
        let claims = decoded.map_err(AuthFailure::from)?.claims;
        let subject = claims.get("sub").and_then(Value::as_str).map(str::trim).filter(|sub| !sub.is_empty());
        let subject = subject.ok_or(AuthFailure::MissingSubject)?.to_owned();
        // The subject is stored as the identity's key: bounded, and printable.
        if subject.chars().count() > MAX_SUBJECT_CHARS || subject.chars().any(char::is_control) {
            return Err(AuthFailure::Malformed);
        }
        Ok((claims, subject))
    }

    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "iss", "sub"];
        if let Issuer::Exact(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}
