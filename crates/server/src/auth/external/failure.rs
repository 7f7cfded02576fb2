//! Why an external token was refused, in words safe to show the client.

use jsonwebtoken::errors::ErrorKind;

/// Why an external token was refused. Messages name the kind of failure only; library
/// details are never included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Not a JWT: wrong shape, bad encoding, unreadable header or claims.
    #[error("malformed token")]
    Malformed,
    /// `alg` is `none`, unknown, or not one this token's key may use.
    #[error("unsupported token algorithm")]
    UnsupportedAlgorithm,
    /// The signature does not match the signing key.
    #[error("token signature is invalid")]
    InvalidSignature,
    /// `exp` has passed.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is missing or belongs to no configured provider.
    #[error("wrong token issuer")]
    WrongIssuer,
    /// `aud` does not contain the expected audience.
    #[error("wrong token audience")]
    WrongAudience,
    /// `sub` is missing or empty.
    #[error("token has no subject")]
    MissingSubject,
    /// No published key matches the token's `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The provider's keys could not be fetched and none are cached.
    #[error("identity provider unavailable")]
    ProviderUnavailable,
}

impl From<jsonwebtoken::errors::Error> for AuthFailure {
    fn from(err: jsonwebtoken::errors::Error) -> Self {
        match err.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::Signing(_)
            | ErrorKind::Provider(_) => AuthFailure::InvalidSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::UnsupportedAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => AuthFailure::UnsupportedAlgorithm,
            ErrorKind::ExpiredSignature => AuthFailure::Expired,
            ErrorKind::ImmatureSignature => AuthFailure::NotYetValid,
            ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
            ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
            ErrorKind::InvalidSubject => AuthFailure::MissingSubject,
            ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
                "iss" => AuthFailure::WrongIssuer,
                "aud" => AuthFailure::WrongAudience,
                "sub" => AuthFailure::MissingSubject,
                _ => AuthFailure::Malformed,
            },
            _ => AuthFailure::Malformed,
        }
    }
}

impl From<AuthFailure> for crate::error::Error {
    /// 503 when the provider is unreachable, 401 with a `Bearer error="invalid_token"`
    /// challenge otherwise.
    fn from(failure: AuthFailure) -> Self {
        match failure {
            AuthFailure::ProviderUnavailable => crate::error::Error::ServiceUnavailable(failure.to_string()),
            other => crate::error::Error::InvalidToken(other.to_string()),
        }
    }
}
