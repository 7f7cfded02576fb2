//! Argon2id password hashing, off the async threads.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use tokio::sync::Semaphore;

/// Accepted password lengths, in characters.
pub const LENGTH: std::ops::RangeInclusive<usize> = 8..=128;

/// A hash of a random password, verified against when the account does not exist so that a
/// wrong email costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_blocking("not-a-real-password").unwrap_or_default());

/// Hashes in flight at once: each holds ~19 MiB for its duration, so an unbounded burst of
/// sign-ups would make the process balloon (and the allocator keep the memory).
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, std::num::NonZero::get)));

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("hashing a password: {err}"))
}

/// Hashes a password (Argon2id, random salt) on the blocking pool.
pub async fn hash(password: String) -> anyhow::Result<String> {
    let _permit = HASHING.acquire().await?;
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// Checks a password against a stored hash on the blocking pool; with no hash, checks against
/// a dummy so the time taken does not reveal whether the account exists.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let Ok(_permit) = HASHING.acquire().await else { return false };
    let result = tokio::task::spawn_blocking(move || {
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        PasswordHash::new(&stored)
            .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await;
    known && result.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_only_the_right_password() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(stored.clone())).await);
        assert!(!verify("wrong horse".into(), Some(stored)).await);
        assert!(!verify("not-a-real-password".into(), None).await, "the dummy never matches");
    }
}
