//! A fake external identity provider: serves a JWKS on `127.0.0.1:0` and mints tokens.
//!
//! The JWKS holds one key of each kind (RSA without `alg`, RSA pinned to RS256, EC P-256,
//! EC P-384, Ed25519), loaded from `keys/`. [`FakeIdp::rotate`] replaces every key id (and
//! the RSA key itself); the server can be made to fail, to serve garbage, or be stopped,
//! and it counts JWKS requests. Every response closes its connection, so a stopped
//! provider is really unreachable rather than kept alive in a client's pool.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{CommonParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const RSA_A: &str = include_str!("../keys/rsa_a.pem");
const RSA_A_PUBLIC: &str = include_str!("../keys/rsa_a.pub.pem");
const RSA_B: &str = include_str!("../keys/rsa_b.pem");
const RSA_B_PUBLIC: &str = include_str!("../keys/rsa_b.pub.pem");
const EC_P256: &str = include_str!("../keys/ec_p256.pem");
const EC_P384: &str = include_str!("../keys/ec_p384.pem");
const ED25519: &str = include_str!("../keys/ed25519.pem");

/// The subject of [`FakeIdp::claims`].
pub const SUBJECT: &str = "user_fake_123";

/// One of the provider's published signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeKey {
    /// RSA published without `alg`: RS256, RS384, RS512 and PS256 tokens verify with it.
    Rsa,
    /// The same kind of RSA key published with `alg: RS256`.
    RsaPinned,
    /// EC P-256, `alg: ES256`.
    Es256,
    /// EC P-384, `alg: ES384`.
    Es384,
    /// Ed25519, `alg: EdDSA`.
    Ed25519,
}

impl FakeKey {
    const ALL: [FakeKey; 5] = [FakeKey::Rsa, FakeKey::RsaPinned, FakeKey::Es256, FakeKey::Es384, FakeKey::Ed25519];

    /// The algorithm its JWK is built for.
    pub fn algorithm(self) -> Algorithm {
        match self {
            FakeKey::Rsa | FakeKey::RsaPinned => Algorithm::RS256,
            FakeKey::Es256 => Algorithm::ES256,
            FakeKey::Es384 => Algorithm::ES384,
            FakeKey::Ed25519 => Algorithm::EdDSA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FakeKey::Rsa => "rsa",
            FakeKey::RsaPinned => "rsa-pinned",
            FakeKey::Es256 => "es256",
            FakeKey::Es384 => "es384",
            FakeKey::Ed25519 => "ed25519",
        }
    }

    /// The private key at `generation`; RSA alternates between two keys on rotation.
    fn encoding_key(self, generation: u64) -> EncodingKey {
        let loaded = match self {
            FakeKey::Rsa | FakeKey::RsaPinned => EncodingKey::from_rsa_pem(rsa_pem(generation).as_bytes()),
            FakeKey::Es256 => EncodingKey::from_ec_pem(EC_P256.as_bytes()),
            FakeKey::Es384 => EncodingKey::from_ec_pem(EC_P384.as_bytes()),
            FakeKey::Ed25519 => EncodingKey::from_ed_pem(ED25519.as_bytes()),
        };
        loaded.expect("test key loads")
    }

    fn jwk(self, generation: u64) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding_key(generation), self.algorithm()).expect("JWK builds");
        jwk.common = CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_id: Some(kid(self, generation)),
            key_algorithm: if self == FakeKey::Rsa { None } else { jwk.common.key_algorithm },
            ..CommonParameters::default()
        };
        jwk
    }
}

fn rsa_pem(generation: u64) -> &'static str {
    if generation.is_multiple_of(2) { RSA_A } else { RSA_B }
}

fn kid(key: FakeKey, generation: u64) -> String {
    format!("{}-{generation}", key.name())
}

/// What the provider's JWKS endpoint does.
#[derive(Default)]
struct Shared {
    generation: AtomicU64,
    failing: AtomicBool,
    garbage: AtomicBool,
    jwks_requests: AtomicUsize,
    traceparents: std::sync::Mutex<Vec<String>>,
}

/// A running fake identity provider.
pub struct FakeIdp {
    addr: SocketAddr,
    issuer_path: String,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl FakeIdp {
    /// A provider whose issuer is its base URL (`http://127.0.0.1:<port>`), like Clerk.
    pub async fn start() -> FakeIdp {
        FakeIdp::start_at("").await
    }

    /// A provider whose issuer is its base URL plus `issuer_path` (Supabase: `/auth/v1`).
    /// Its JWKS is served at `<issuer>/.well-known/jwks.json` (any path ending in `jwks.json`).
    pub async fn start_at(issuer_path: &str) -> FakeIdp {
        let shared = Arc::new(Shared::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let addr = listener.local_addr().expect("local address");
        let router = Router::new().fallback(serve_jwks).with_state(shared.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakeIdp { addr, issuer_path: issuer_path.trim_end_matches('/').to_owned(), shared, server: Some(server) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `iss` of its tokens.
    pub fn issuer(&self) -> String {
        format!("{}{}", self.base_url(), self.issuer_path)
    }

    /// Where its JWKS is served.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.issuer())
    }

    /// How many JWKS requests it has answered (or failed).
    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// The current key id of `key`.
    pub fn kid(&self, key: FakeKey) -> String {
        kid(key, self.generation())
    }

    /// The current RSA public key in PEM form, as an attacker could obtain it.
    pub fn rsa_public_pem(&self) -> &'static str {
        if self.generation().is_multiple_of(2) { RSA_A_PUBLIC } else { RSA_B_PUBLIC }
    }

    /// Publishes new key ids for every key and a different RSA key; old ids disappear.
    pub fn rotate(&self) {
        self.shared.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// While set, the JWKS endpoint answers 500.
    pub fn set_failing(&self, failing: bool) {
        self.shared.failing.store(failing, Ordering::SeqCst);
    }

    /// While set, the JWKS endpoint answers 200 with a body that is not a JWKS.
    pub fn set_garbage(&self, garbage: bool) {
        self.shared.garbage.store(garbage, Ordering::SeqCst);
    }

    /// Stops serving: its port refuses connections from now on.
    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// The `traceparent` headers of the JWKS requests received so far.
    pub fn traceparents(&self) -> Vec<String> {
        self.shared.traceparents.lock().map(|seen| seen.clone()).unwrap_or_default()
    }

    /// Claims of a valid token: `iss`, `sub` ([`SUBJECT`]), `iat`, `exp` (in an hour), with
    /// `extra` merged in; an `extra` value of `null` removes that claim.
    pub fn claims(&self, extra: Value) -> Value {
        let now = now();
        let mut claims = json!({ "iss": self.issuer(), "sub": SUBJECT, "iat": now, "exp": now + 3600 });
        if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
            for (name, value) in extra {
                if value.is_null() {
                    claims.remove(&name);
                } else {
                    claims.insert(name, value);
                }
            }
        }
        claims
    }

    /// `claims`, signed RS256 with the RSA key and its current `kid`.
    pub fn token(&self, claims: Value) -> String {
        self.token_with(FakeKey::Rsa, FakeKey::Rsa.algorithm(), claims)
    }

    /// `claims`, signed with `key` using `algorithm`, with the key's current `kid`.
    pub fn token_with(&self, key: FakeKey, algorithm: Algorithm, claims: Value) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(self.kid(key));
        self.token_with_header(key, header, claims)
    }

    /// `claims` under any header, signed with `key` (whose family must suit `header.alg`).
    pub fn token_with_header(&self, key: FakeKey, header: Header, claims: Value) -> String {
        jsonwebtoken::encode(&header, &claims, &key.encoding_key(self.generation())).expect("token signs")
    }

    /// `claims`, RS256 with the RSA key's current `kid`, but signed by an RSA key that the
    /// provider does not publish.
    pub fn forged_token(&self, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid(FakeKey::Rsa));
        let stranger = EncodingKey::from_rsa_pem(rsa_pem(self.generation() + 1).as_bytes()).expect("test key loads");
        jsonwebtoken::encode(&header, &claims, &stranger).expect("token signs")
    }

    /// `claims` under `header` (HS256, HS384 or HS512), signed with a shared secret.
    pub fn hmac_token(&self, secret: &[u8], header: Header, claims: Value) -> String {
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).expect("token signs")
    }

    /// `header.claims.` with no signature, for any header (e.g. `{"alg": "none"}`).
    pub fn unsigned_token(&self, header: Value, claims: Value) -> String {
        let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
        format!("{}.{}.", encode(&header), encode(&claims))
    }

    fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::SeqCst)
    }
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

async fn serve_jwks(State(shared): State<Arc<Shared>>, uri: Uri, headers: axum::http::HeaderMap) -> Response {
    if let Some(traceparent) = headers.get("traceparent").and_then(|v| v.to_str().ok())
        && let Ok(mut seen) = shared.traceparents.lock()
    {
        seen.push(traceparent.to_owned());
    }
    let mut response = if !uri.path().ends_with("jwks.json") {
        StatusCode::NOT_FOUND.into_response()
    } else {
        shared.jwks_requests.fetch_add(1, Ordering::SeqCst);
        if shared.failing.load(Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "provider is down").into_response()
        } else if shared.garbage.load(Ordering::SeqCst) {
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], "<html>maintenance</html>").into_response()
        } else {
            let generation = shared.generation.load(Ordering::SeqCst);
            let set = JwkSet { keys: FakeKey::ALL.iter().map(|key| key.jwk(generation)).collect() };
            axum::Json(set).into_response()
        }
    };
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
