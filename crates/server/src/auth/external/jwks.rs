//! One provider's published signing keys: fetched lazily, cached, refreshed early when an
//! unknown key id appears, and kept while the provider is unreachable.
//!
//! - Fresh for `JWKS_CACHE_SECONDS`; after that the next request refreshes the set.
//! - An unknown `kid` triggers one early refresh per [`KID_REFRESH_INTERVAL`], so a flood of
//!   made-up key ids cannot turn into a flood of requests to the provider.
//! - One fetch at a time: with keys in hand, requests keep using them while another request
//!   refreshes; without keys, they wait for that one fetch instead of starting their own.
//! - A failed fetch (unreachable, error status, garbage) keeps the last good set and is not
//!   retried for [`RETRY_AFTER_FAILURE`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use reqwest::header::ACCEPT;
use tokio::sync::Mutex;

use crate::telemetry::outbound;

use super::AuthFailure;
use super::keys::{KeySet, Lookup, VerifyingKey};

/// How long one JWKS request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two refreshes caused by unknown key ids.
pub(super) const KID_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How long after a failed fetch the provider is left alone.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Larger JWKS documents are refused; real ones are a few kilobytes.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// The cached key set of one provider.
pub(super) struct JwksCache {
    provider: &'static str,
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    state: RwLock<CacheState>,
    /// Held while fetching: the single flight.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct CacheState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    failed_at: Option<Instant>,
    /// Counts fetch attempts, so a request that waited can tell one happened meanwhile.
    attempts: u64,
    kid_refresh_at: Option<Instant>,
}

impl JwksCache {
    /// An empty cache for the JWKS at `url`.
    pub(super) fn new(provider: &'static str, url: String, http: reqwest::Client, ttl: Duration) -> JwksCache {
        JwksCache { provider, url, http, ttl, state: RwLock::new(CacheState::default()), fetching: Mutex::new(()) }
    }

    /// The JWKS URL.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The key that verifies a token with this `kid` and algorithm.
    pub(super) async fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Result<Arc<VerifyingKey>, AuthFailure> {
        let (cached, attempts, fresh) = self.read(|state| {
            let fresh = state.fetched_at.is_some_and(|at| at.elapsed() < self.ttl);
            (state.keys.clone(), state.attempts, fresh)
        });
        let (keys, just_fetched) = match cached {
            Some(keys) if fresh => (keys, false),
            cached => {
                let wait = cached.is_none();
                (self.refresh(attempts, wait).await?, true)
            }
        };
        match keys.find(kid, algorithm) {
            Lookup::Found(key) => return Ok(key),
            Lookup::WrongAlgorithm => return Err(AuthFailure::UnsupportedAlgorithm),
            Lookup::Missing if just_fetched || kid.is_none() => return Err(AuthFailure::UnknownKey),
            Lookup::Missing => {}
        }
        // The provider may have rotated its keys since the set was fetched.
        let keys = match self.claim_kid_refresh() {
            Some(attempts) => self.refresh(attempts, true).await?,
            None => {
                // Another request's refresh may be in flight: use its result.
                let _done = self.fetching.lock().await;
                self.current()?
            }
        };
        match keys.find(kid, algorithm) {
            Lookup::Found(key) => Ok(key),
            Lookup::WrongAlgorithm => Err(AuthFailure::UnsupportedAlgorithm),
            Lookup::Missing => Err(AuthFailure::UnknownKey),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&CacheState) -> T) -> T {
        f(&self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn write<T>(&self, f: impl FnOnce(&mut CacheState) -> T) -> T {
        f(&mut self.state.write().unwrap_or_else(PoisonError::into_inner))
    }

    fn current(&self) -> Result<Arc<KeySet>, AuthFailure> {
        self.read(|state| state.keys.clone()).ok_or(AuthFailure::ProviderUnavailable)
    }

    /// Takes the one early refresh allowed per interval; returns the attempt count it saw.
    fn claim_kid_refresh(&self) -> Option<u64> {
        self.write(|state| {
            if state.kid_refresh_at.is_some_and(|at| at.elapsed() < KID_REFRESH_INTERVAL) {
                return None;
            }
            state.kid_refresh_at = Some(Instant::now());
            Some(state.attempts)
        })
    }

    /// Fetches the set unless another request did since `seen_attempts`. Without `wait`, a
    /// fetch already in flight is not waited for: the cached keys answer meanwhile.
    async fn refresh(&self, seen_attempts: u64, wait: bool) -> Result<Arc<KeySet>, AuthFailure> {
        let _flight = if wait {
            self.fetching.lock().await
        } else {
            match self.fetching.try_lock() {
                Ok(guard) => guard,
                Err(_) => return self.current(),
            }
        };
        let skip = self.read(|state| {
            state.attempts != seen_attempts || state.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE)
        });
        if skip {
            return self.current();
        }
        let fetched = self.fetch().await;
        self.write(|state| {
            state.attempts += 1;
            match fetched {
                Ok(keys) => {
                    state.keys = Some(Arc::new(keys));
                    state.fetched_at = Some(Instant::now());
                    state.failed_at = None;
                }
                Err(reason) => {
                    tracing::warn!(
                        provider = self.provider,
                        url = %self.url,
                        reason,
                        cached = state.keys.is_some(),
                        "could not fetch the identity provider's signing keys"
                    );
                    state.failed_at = Some(Instant::now());
                }
            }
        });
        self.current()
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let request = self.http.get(&self.url).header(ACCEPT, "application/json").timeout(FETCH_TIMEOUT);
        let mut response = outbound::send(request).await.map_err(|err| format!("request failed: {err}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| format!("reading the body failed: {err}"))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("the body exceeds {MAX_DOCUMENT_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::from_document(&body)
    }
}
