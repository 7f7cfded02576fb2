//! Google Play: Pub/Sub pushes whose OIDC bearer is checked against a test JWKS ([`FakeIdp`]),
//! and a fake Android Publisher API and OAuth token endpoint ([`FakePlay`]) that check the
//! bearer and the service account's assertion; the state applied is always Google's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Duration, SecondsFormat, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use omnistack_testkit::idp::FakeIdp;
use omnistack_testkit::{TestApp, TestAppBuilder, TestClient};
use serde_json::{Value, json};

use super::{assert_refused, impersonation_token, post, quick, status, stored, wait_for};

const PACKAGE: &str = "com.example.app";
const AUDIENCE: &str = "https://api.example.com/api/v1/public/webhooks/google";
const PUSHER: &str = "rtdn-push@example.iam.gserviceaccount.com";
const PLAY_ACCOUNT: &str = "play-api@example.iam.gserviceaccount.com";
const PRODUCT: &str = "pro_monthly";
const KEY: &str = include_str!("../../../../testkit/keys/rsa_b.pem");
const KEY_PUBLIC: &str = include_str!("../../../../testkit/keys/rsa_b.pub.pem");

#[derive(Default)]
struct Shared {
    base: Mutex<String>,
    subscriptions: Mutex<HashMap<String, Value>>,
    failures: AtomicUsize,
    token_requests: AtomicUsize,
    issued: Mutex<Vec<String>>,
    acknowledged: Mutex<Vec<String>>,
}

/// The Publisher API and the token endpoint, on `127.0.0.1:0`.
struct FakePlay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakePlay {
    async fn start() -> FakePlay {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        *shared.base.lock().unwrap() = format!("http://{addr}");
        let router = Router::new().fallback(serve).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        FakePlay { addr, shared }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, token: &str, subscription: Value) {
        self.shared.subscriptions.lock().unwrap().insert(token.to_owned(), subscription);
    }

    fn fail_next(&self, calls: usize) {
        self.shared.failures.store(calls, Ordering::SeqCst);
    }

    fn acknowledged(&self) -> Vec<String> {
        self.shared.acknowledged.lock().unwrap().clone()
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path == "/token" && method == Method::POST {
        return token(&shared, &body);
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|b| shared.issued.lock().unwrap().iter().any(|issued| issued == b)) {
        return (StatusCode::UNAUTHORIZED, "{}").into_response();
    }
    if shared.failures.load(Ordering::SeqCst) > 0 {
        shared.failures.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, "{}").into_response();
    }
    let prefix = format!("/androidpublisher/v3/applications/{PACKAGE}/purchases/");
    let Some(rest) = path.strip_prefix(&prefix) else { return StatusCode::NOT_FOUND.into_response() };
    if let Some(token) = rest.strip_prefix("subscriptionsv2/tokens/") {
        return match shared.subscriptions.lock().unwrap().get(token) {
            Some(found) => axum::Json(found.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, "{}").into_response(),
        };
    }
    if let Some(ack) = rest.strip_prefix(&format!("subscriptions/{PRODUCT}/tokens/"))
        && let Some(token) = ack.strip_suffix(":acknowledge")
        && method == Method::POST
    {
        shared.acknowledged.lock().unwrap().push(token.to_owned());
        return StatusCode::OK.into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The JWT-bearer grant: the assertion must be signed by the service account's key, for this
/// endpoint, with the Publisher API's scope.
fn token(shared: &Shared, body: &[u8]) -> Response {
    shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = url_form(body);
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", shared.base.lock().unwrap())]);
    validation.set_issuer(&[PLAY_ACCOUNT]);
    let key = DecodingKey::from_rsa_pem(KEY_PUBLIC.as_bytes()).unwrap();
    let claims = form
        .get("assertion")
        .and_then(|assertion| jsonwebtoken::decode::<Value>(assertion, &key, &validation).ok())
        .map(|data| data.claims);
    let granted = form.get("grant_type").map(String::as_str) == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        && claims.is_some_and(|c| c["scope"] == "https://www.googleapis.com/auth/androidpublisher");
    if !granted {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response();
    }
    let issued = format!("ya29.test-{}", shared.token_requests.load(Ordering::SeqCst));
    shared.issued.lock().unwrap().push(issued.clone());
    axum::Json(json!({"access_token": issued, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

fn url_form(body: &[u8]) -> HashMap<String, String> {
    let decode = |s: &str| {
        let s = s.replace('+', " ");
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' && i + 2 < bytes.len() {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn subscription(state: &str, days: i64, pending: bool) -> Value {
    json!({
        "kind": "androidpublisher#subscriptionPurchaseV2",
        "subscriptionState": format!("SUBSCRIPTION_STATE_{state}"),
        "acknowledgementState": if pending { "ACKNOWLEDGEMENT_STATE_PENDING" } else { "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED" },
        "lineItems": [{
            "productId": PRODUCT,
            "expiryTime": (Utc::now() + Duration::days(days)).to_rfc3339_opts(SecondsFormat::Millis, true),
            "autoRenewingPlan": {"autoRenewEnabled": state == "ACTIVE"},
        }],
    })
}

async fn configured(idp: &FakeIdp, play: &FakePlay) -> TestAppBuilder {
    let key = json!({"type": "service_account", "client_email": PLAY_ACCOUNT, "private_key": KEY,
        "private_key_id": "play-key-1", "token_uri": format!("{}/token", play.base())});
    quick()
        .env("GOOGLE_PUBSUB_JWKS_URL", &idp.jwks_url())
        .env("GOOGLE_PUBSUB_AUDIENCE", AUDIENCE)
        .env("GOOGLE_PUBSUB_SERVICE_ACCOUNT", PUSHER)
        .env("GOOGLE_PLAY_PACKAGE_NAME", PACKAGE)
        .env("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON", &key.to_string())
        .env("GOOGLE_PLAY_API_BASE", &play.base())
        .env("GOOGLE_PRODUCTS", &format!("{PRODUCT}=pro,ent_monthly=enterprise"))
}

fn push_claims(idp: &FakeIdp, extra: Value) -> Value {
    let mut base = json!({"iss": "https://accounts.google.com", "aud": AUDIENCE, "email": PUSHER,
        "email_verified": true, "sub": "1234567890"});
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    idp.claims(base)
}

fn push_body(message_id: &str, package: &str, kind: i64, token: &str) -> Vec<u8> {
    let notification = json!({"version": "1.0", "packageName": package, "eventTimeMillis": "1767225600000",
        "subscriptionNotification": {"version": "1.0", "notificationType": kind, "purchaseToken": token,
        "subscriptionId": PRODUCT}});
    serde_json::to_vec(&json!({
        "message": {"data": STANDARD.encode(notification.to_string()), "messageId": message_id,
            "publishTime": "2026-12-01T00:00:00Z"},
        "subscription": "projects/example/subscriptions/play-rtdn",
    }))
    .unwrap()
}

async fn push(app: &TestApp, bearer: &str, body: Vec<u8>) -> omnistack_testkit::TestResponse {
    post(app, "google", &[("authorization", format!("Bearer {bearer}"))], body).await
}

async fn link(client: &TestClient, token: &str, product: &str) -> omnistack_testkit::TestResponse {
    client.post_json("/api/v1/app/billing/google/link", &json!({"purchase_token": token, "product_id": product})).await
}

#[tokio::test]
async fn a_linked_purchase_follows_googles_state_and_failures_are_retried_to_success() {
    let (idp, play) = (FakeIdp::start().await, FakePlay::start().await);
    let app = configured(&idp, &play).await.spawn().await;
    let (client, _) = app.signed_in_client().await;
    let bearer = idp.token(push_claims(&idp, json!({})));

    play.set("tok-A.1", subscription("ACTIVE", 30, true));
    let linked = link(&client, "tok-A.1", PRODUCT).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    assert_eq!((linked.json()["plan"].as_str(), linked.json()["store"].as_str()), (Some("pro"), Some("google")));
    assert_eq!(play.acknowledged(), ["tok-A.1"], "a pending purchase is acknowledged");

    // The notification says "renewed"; Google says canceled at the period's end: Google wins.
    play.set("tok-A.1", subscription("CANCELED", 30, false));
    let res = push(&app, &bearer, push_body("msg-1", PACKAGE, 2, "tok-A.1")).await;
    assert_eq!((res.status.as_u16(), res.json()["duplicate"].as_bool()), (200, Some(false)), "{}", res.text);
    wait_for(&app, "msg-1", "processed").await;
    let now = status(&client).await;
    assert_eq!((now["status"].as_str(), now["cancel_at_period_end"].as_bool()), (Some("active"), Some(true)));
    let again = push(&app, &bearer, push_body("msg-1", PACKAGE, 2, "tok-A.1")).await;
    assert_eq!(again.json()["duplicate"], true);

    // Google fails twice; the queue retries until it answers.
    play.set("tok-A.1", subscription("EXPIRED", -1, false));
    play.fail_next(2);
    push(&app, &bearer, push_body("msg-2", PACKAGE, 13, "tok-A.1")).await;
    let done = wait_for(&app, "msg-2", "processed").await;
    assert!(done.attempts >= 3, "{done:?}");
    let now = status(&client).await;
    assert_eq!((now["plan"].as_str(), now["status"].as_str()), (Some("free"), Some("canceled")));

    // A resubscription names its predecessor: the same account gets it.
    let mut renewed = subscription("ACTIVE", 30, false);
    renewed["linkedPurchaseToken"] = json!("tok-A.1");
    play.set("tok-B.2", renewed);
    push(&app, &bearer, push_body("msg-3", PACKAGE, 4, "tok-B.2")).await;
    wait_for(&app, "msg-3", "processed").await;
    assert_eq!(status(&client).await["status"], "active");

    // A purchase no account linked: processed, changes nobody.
    play.set("tok-C.3", subscription("ACTIVE", 30, false));
    push(&app, &bearer, push_body("msg-4", PACKAGE, 4, "tok-C.3")).await;
    wait_for(&app, "msg-4", "processed").await;
    assert_eq!(play.shared.token_requests.load(Ordering::SeqCst), 1, "the access token is cached");
}

#[tokio::test]
async fn pushes_without_googles_bearer_for_this_app_are_refused_and_nothing_is_stored() {
    let (idp, play) = (FakeIdp::start().await, FakePlay::start().await);
    let app = configured(&idp, &play).await.spawn().await;
    let body = || push_body("msg-x", PACKAGE, 4, "tok-X");
    let no_bearer = post(&app, "google", &[], body()).await;
    assert_refused(&no_bearer, 401, "AUTHENTICATION_ERROR");
    let now = chrono::Utc::now().timestamp();
    for (what, bearer) in [
        ("another key", idp.forged_token(push_claims(&idp, json!({})))),
        ("another audience", idp.token(push_claims(&idp, json!({"aud": "https://evil.example.com"})))),
        ("another issuer", idp.token(push_claims(&idp, json!({"iss": idp.issuer()})))),
        ("another service account", idp.token(push_claims(&idp, json!({"email": "evil@example.com"})))),
        ("an unverified email", idp.token(push_claims(&idp, json!({"email_verified": false})))),
        ("no email", idp.token(push_claims(&idp, json!({"email": null})))),
        ("expired", idp.token(push_claims(&idp, json!({"exp": now - 3600, "iat": now - 7200})))),
        ("not a token", "garbage".to_owned()),
    ] {
        let res = push(&app, &bearer, body()).await;
        assert_eq!(res.status, 401, "{what}: {}", res.text);
    }
    let bearer = idp.token(push_claims(&idp, json!({})));
    assert_refused(
        &push(&app, &bearer, push_body("msg-y", "com.evil.app", 4, "tok-X")).await,
        400,
        "INVALID_SIGNATURE",
    );
    let not_a_push = push(&app, &bearer, br#"{"message":{"data":"!!"}}"#.to_vec()).await;
    assert_refused(&not_a_push, 422, "VALIDATION_ERROR");
    assert!(stored(&app).await.is_empty());
    assert_eq!(push(&app, &bearer, body()).await.status, 200);

    let plain = quick().spawn().await;
    assert_refused(&push(&plain, &bearer, body()).await, 503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn linking_a_google_play_purchase_is_guarded() {
    let (idp, play) = (FakeIdp::start().await, FakePlay::start().await);
    let app = configured(&idp, &play).await.spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let (other, _) = app.signed_in_client().await;
    play.set("tok-L.1", subscription("ACTIVE", 30, false));

    let anonymous = reqwest::Client::new()
        .post(app.url("/api/v1/app/billing/google/link"))
        .json(&json!({"purchase_token": "tok-L.1", "product_id": PRODUCT}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let acting = app.client.with_token(&impersonation_token(&app, &user_id).await);
    assert_refused(&link(&acting, "tok-L.1", PRODUCT).await, 403, "AUTHORIZATION_ERROR");
    assert_refused(&link(&client, "tok-L.1", "unlisted_product").await, 422, "VALIDATION_ERROR");
    assert_refused(&link(&client, "tok-L.1", "ent_monthly").await, 422, "VALIDATION_ERROR");
    for (token, product) in [
        ("x".repeat(513), PRODUCT.to_owned()),
        ("tok\u{0}".to_owned(), PRODUCT.to_owned()),
        ("tok/../x".to_owned(), PRODUCT.to_owned()),
        ("tok-L.1".to_owned(), "pro\u{202e}".to_owned()),
        ("tok-L.1".to_owned(), "p".repeat(151)),
        (String::new(), PRODUCT.to_owned()),
    ] {
        assert_refused(&link(&client, &token, &product).await, 422, "VALIDATION_ERROR");
    }
    assert_refused(&link(&client, "tok-unknown", PRODUCT).await, 404, "NOT_FOUND");
    let mut someone_elses = subscription("ACTIVE", 30, false);
    someone_elses["externalAccountIdentifiers"] =
        json!({"obfuscatedExternalAccountId": "0190a000-0000-7000-8000-000000000002"});
    play.set("tok-M.1", someone_elses);
    assert_refused(&link(&client, "tok-M.1", PRODUCT).await, 403, "AUTHORIZATION_ERROR");
    play.fail_next(1);
    assert_refused(&link(&client, "tok-L.1", PRODUCT).await, 502, "EXTERNAL_SERVICE_ERROR");
    assert_eq!(status(&client).await["status"], "none", "nothing refused changed anything");

    assert_eq!(link(&client, "tok-L.1", PRODUCT).await.status, 200);
    assert_refused(&link(&other, "tok-L.1", PRODUCT).await, 409, "CONFLICT");
    assert_eq!(status(&other).await["status"], "none");

    let plain = quick().spawn().await;
    let (client, _) = plain.signed_in_client().await;
    assert_refused(&link(&client, "tok-L.1", PRODUCT).await, 503, "SERVICE_UNAVAILABLE");
}
