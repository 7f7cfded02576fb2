//! One issuer's published keys, for tokens that are not sign-ins (Google Pub/Sub push tokens):
//! the same cache, single flight and key rotation as the identity providers', with the
//! caller's own claim rules.

use std::time::Duration;

use jsonwebtoken::Validation;
use serde::de::DeserializeOwned;

use super::AuthFailure;
use super::jwks::JwksCache;
use super::token;

/// The cached JWKS of one issuer.
pub struct PublishedKeys {
    cache: JwksCache,
}

impl std::fmt::Debug for PublishedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishedKeys").field("url", &self.cache.url()).finish()
    }
}

impl PublishedKeys {
    /// The keys published at `url` (fetched lazily, kept for `ttl`).
    pub fn new(name: &'static str, url: String, http: reqwest::Client, ttl: Duration) -> PublishedKeys {
        PublishedKeys { cache: JwksCache::new(name, url, http, ttl) }
    }

    /// The claims of `token` when its signature verifies with a published key whose algorithm
    /// is one of `validation.algorithms`, and `validation` (issuer, audience, times) holds.
    pub async fn verify<T: DeserializeOwned>(&self, token: &str, validation: &Validation) -> Result<T, AuthFailure> {
        let peeked = token::peek(token)?;
        if !validation.algorithms.contains(&peeked.algorithm) {
            return Err(AuthFailure::UnsupportedAlgorithm);
        }
        let key = self.cache.key(peeked.kid.as_deref(), peeked.algorithm).await?;
        let mut validation = validation.clone();
        validation.algorithms = vec![peeked.algorithm];
        Ok(jsonwebtoken::decode::<T>(token, &key.key, &validation)?.claims)
    }
}
