//! The service's own tokens: HS256 access JWTs, and opaque random tokens stored as hashes
//! (refresh, email verification, password reset).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// This service (`JWT_ISSUER`).
    pub iss: String,
    /// The account id.
    pub sub: String,
    /// Expiry (unix seconds).
    pub exp: i64,
    /// Issued at (unix seconds).
    pub iat: i64,
    /// Unique token id.
    pub jti: String,
    /// The sign-in session (for an impersonation token, the impersonation session).
    pub sid: String,
    /// RFC 8693 actor: on an impersonation token, the admin acting as `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<ActClaim>,
    /// On an impersonation token, the impersonation session it is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imp: Option<String>,
}

/// The RFC 8693 `act` claim: who acts on behalf of the subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActClaim {
    /// The acting party (an admin's id).
    pub sub: String,
}

/// What a verified access token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The account the token acts as.
    pub user_id: Uuid,
    /// Its sign-in session (for an impersonation token, the impersonation session).
    pub session_id: Uuid,
    /// For an impersonation token: the impersonation session and the admin behind it.
    pub impersonation: Option<ImpersonationClaim>,
}

/// The binding of an impersonation token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImpersonationClaim {
    /// The `impersonation_sessions` row the guard checks on every request.
    pub session_id: Uuid,
    /// The admin (`act.sub`).
    pub admin_id: Uuid,
}

/// Signs and checks access tokens with `SECRET_KEY`. Cheap to clone (it lives in the
/// per-request state): the keys are shared.
#[derive(Clone)]
pub struct AccessTokens {
    inner: std::sync::Arc<Keys>,
}

struct Keys {
    issuer: String,
    ttl: Duration,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// What [`AccessTokens::verify`] checks, built once.
    validation: Validation,
    /// Tokens verified here, by the SHA-256 of their text: what each says, and its `exp`.
    verified: Mutex<HashMap<[u8; 32], (Verified, i64)>>,
}

/// At most this many verified tokens are remembered per instance (about 60 bytes each).
pub const REMEMBERED_TOKENS: usize = 10_000;

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("issuer", &self.inner.issuer)
            .field("ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

impl AccessTokens {
    /// Keys from the secret.
    pub fn new(secret: &str, issuer: &str, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        AccessTokens {
            inner: std::sync::Arc::new(Keys {
                issuer: issuer.to_owned(),
                ttl,
                encoding: EncodingKey::from_secret(secret.as_bytes()),
                decoding: DecodingKey::from_secret(secret.as_bytes()),
                validation,
                verified: Mutex::default(),
            }),
        }
    }

    /// The `iss` of these tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Lifetime in seconds (the `expires_in` of token responses).
    pub fn ttl_seconds(&self) -> u64 {
        self.inner.ttl.as_secs()
    }

    /// A signed access token for `user_id` in `session_id`.
    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.inner.issuer.clone(),
            sub: user_id.to_string(),
            exp: now + self.inner.ttl.as_secs() as i64,
            iat: now,
            jti: Uuid::new_v4().to_string(),
            sid: session_id.to_string(),
            act: None,
            imp: None,
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.inner.encoding)?)
    }

    /// A signed token acting as `user_id` for `admin_id` (the RFC 8693 `act` claim), bound to
    /// impersonation session `impersonation_id`, valid for `ttl`.
    pub fn issue_impersonation(
        &self,
        user_id: Uuid,
        impersonation_id: Uuid,
        admin_id: Uuid,
        ttl: Duration,
    ) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.inner.issuer.clone(),
            sub: user_id.to_string(),
            exp: now + ttl.as_secs() as i64,
            iat: now,
            jti: Uuid::new_v4().to_string(),
            sid: impersonation_id.to_string(),
            act: Some(ActClaim { sub: admin_id.to_string() }),
            imp: Some(impersonation_id.to_string()),
        };
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.inner.encoding)?)
    }

    /// What `token` says, if [`verify`](Self::verify) accepted it here before and it has not
    /// expired since. An access token is sent with every request of its life: this spares
    /// each later request the signature, the two base64 decodes and the JSON parses. Nothing
    /// is remembered that the signature did not prove, and the lookup compares hashes, never
    /// the token itself. Whether the account and session still hold is not remembered: the
    /// guard reads that every time.
    pub fn recall(&self, token: &str) -> Option<Verified> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        let verified = self.inner.verified.lock().unwrap_or_else(PoisonError::into_inner);
        // Strictly before its expiry: at the last second, `verify` decides.
        verified.get(&key).filter(|(_, exp)| *exp > now).map(|(what, _)| *what)
    }

    /// Remembers a verified token for [`recall`](Self::recall). At the bound, expired entries
    /// go; if none had, all do (verifying again is only slower).
    fn remember(&self, token: &str, what: Verified, exp: i64) {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut verified = self.inner.verified.lock().unwrap_or_else(PoisonError::into_inner);
        if verified.len() >= REMEMBERED_TOKENS && !verified.contains_key(&key) {
            let now = chrono::Utc::now().timestamp();
            verified.retain(|_, (_, exp)| *exp > now);
            if verified.len() >= REMEMBERED_TOKENS {
                verified.clear();
            }
        }
        verified.insert(key, (what, exp));
    }

    /// Checks signature (HS256 only), issuer and expiry; returns what the token says.
    pub fn verify(&self, token: &str) -> Result<Verified, &'static str> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.inner.decoding, &self.inner.validation).map_err(
            |err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "token expired",
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "token signature is invalid",
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => "token algorithm is not accepted",
                _ => "token is malformed",
            },
        )?;
        let user = Uuid::parse_str(&data.claims.sub).map_err(|_| "token subject is invalid")?;
        let session = Uuid::parse_str(&data.claims.sid).map_err(|_| "token session is invalid")?;
        let impersonation = match (&data.claims.imp, &data.claims.act) {
            (None, None) => None,
            (Some(imp), Some(act)) => Some(ImpersonationClaim {
                session_id: Uuid::parse_str(imp).map_err(|_| "token impersonation is invalid")?,
                admin_id: Uuid::parse_str(&act.sub).map_err(|_| "token actor is invalid")?,
            }),
            _ => return Err("token impersonation is invalid"),
        };
        let verified = Verified { user_id: user, session_id: session, impersonation };
        self.remember(token, verified, data.claims.exp);
        Ok(verified)
    }
}

/// A new opaque token (256 random bits, URL-safe) and the hash to store for it.
pub fn new_opaque_token() -> anyhow::Result<(String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_opaque_token(&token);
    Ok((token, hash))
}

/// The stored form of an opaque token. A fast hash is enough: the token has 256 bits of entropy.
pub fn hash_opaque_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The unverified `iss` claim of a JWT, to pick its verifier. Nothing else is trusted from it.
pub fn peek_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Issuer {
        iss: Option<String>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Issuer>(&bytes).ok()?.iss
}

/// The unverified `exp` claim of a JWT (Unix seconds). Only for a token already verified: a
/// realtime socket reads it to close itself when the token it was opened with expires.
pub fn peek_expiry(token: &str) -> Option<i64> {
    #[derive(Deserialize)]
    struct Expiry {
        exp: Option<i64>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Expiry>(&bytes).ok()?.exp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(secret: &str) -> AccessTokens {
        AccessTokens::new(secret, "omnistack", Duration::from_secs(900))
    }

    #[test]
    fn issued_tokens_verify_and_carry_user_and_session() {
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = tokens("s3cret").issue(user, session).unwrap();
        let verified = tokens("s3cret").verify(&token).unwrap();
        assert_eq!((verified.user_id, verified.session_id, verified.impersonation), (user, session, None));
        assert_eq!(peek_issuer(&token).as_deref(), Some("omnistack"));
        let expiry = peek_expiry(&token).unwrap();
        assert!((expiry - chrono::Utc::now().timestamp() - 900).abs() <= 1);
    }

    #[test]
    fn another_secret_or_issuer_is_rejected() {
        let token = tokens("s3cret").issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        assert_eq!(tokens("other").verify(&token), Err("token signature is invalid"));
        let foreign = AccessTokens::new("s3cret", "someone-else", Duration::from_secs(60));
        assert!(foreign.verify(&token).is_err());
    }

    #[test]
    fn impersonation_tokens_carry_the_act_claim_and_their_session() {
        let (user, imp, admin) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let token = tokens("s3cret").issue_impersonation(user, imp, admin, Duration::from_secs(300)).unwrap();
        let verified = tokens("s3cret").verify(&token).unwrap();
        assert_eq!(verified.user_id, user);
        assert_eq!(verified.impersonation, Some(ImpersonationClaim { session_id: imp, admin_id: admin }));
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["act"], serde_json::json!({"sub": admin.to_string()}));
        assert!((peek_expiry(&token).unwrap() - chrono::Utc::now().timestamp() - 300).abs() <= 1);
    }

    #[test]
    fn a_verified_token_is_recalled_until_it_expires_and_nothing_else_is() {
        let keys = tokens("s3cret");
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let token = keys.issue(user, session).unwrap();
        assert_eq!(keys.recall(&token), None, "not verified yet");
        let verified = keys.verify(&token).unwrap();
        assert_eq!(keys.recall(&token), Some(verified));
        // A token differing in one character of its signature is neither recalled nor valid.
        let mut forged = token.clone();
        let last = if forged.ends_with('A') { "B" } else { "A" };
        forged.replace_range(forged.len() - 1.., last);
        assert_eq!(keys.recall(&forged), None);
        assert!(keys.verify(&forged).is_err());
        assert_eq!(keys.recall(&forged), None);
        // Another key's memory is its own.
        assert_eq!(tokens("s3cret").recall(&token), None);

        // Expired: verified when it still held, it is not recalled once its `exp` has passed.
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            iss: "omnistack".into(),
            sub: user.to_string(),
            exp: now - 1,
            iat: now - 60,
            jti: "j".into(),
            sid: session.to_string(),
            act: None,
            imp: None,
        };
        let expired = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.inner.encoding).unwrap();
        keys.remember(&expired, verified, now - 1);
        assert_eq!(keys.recall(&expired), None);
        assert_eq!(keys.verify(&expired), Err("token expired"));
    }

    #[test]
    fn the_memory_of_verified_tokens_is_bounded() {
        let keys = tokens("s3cret");
        let what = Verified { user_id: Uuid::now_v7(), session_id: Uuid::now_v7(), impersonation: None };
        let exp = chrono::Utc::now().timestamp() + 900;
        for i in 0..REMEMBERED_TOKENS + 10 {
            keys.remember(&format!("token-{i}"), what, exp);
            assert!(keys.inner.verified.lock().unwrap().len() <= REMEMBERED_TOKENS);
        }
        assert_eq!(keys.recall(&format!("token-{}", REMEMBERED_TOKENS + 9)), Some(what));
    }

    #[test]
    fn opaque_tokens_are_random_and_hashed() {
        let (a, hash_a) = new_opaque_token().unwrap();
        let (b, _) = new_opaque_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(hash_opaque_token(&a), hash_a);
        assert_eq!(hash_a.len(), 64);
    }
}
