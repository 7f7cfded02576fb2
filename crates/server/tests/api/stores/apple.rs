//! The App Store: notifications and transactions signed by a test CA's chain
//! (`tests/fixtures/apple`, made by its `make.sh`), verified, stored once, applied in signed
//! order; and `POST /app/billing/apple/link`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use omnistack_testkit::{TestApp, TestAppBuilder};
use serde_json::{Value, json};

use super::{assert_refused, changes, impersonation_token, post, quick, status, stored, wait_for};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apple");
const BUNDLE: &str = "com.example.app";
const PRO: &str = "com.example.pro.monthly";
const DAY: i64 = 86_400_000;

/// A signing key and the chain sent with it in `x5c`.
type Signer = (&'static str, [&'static str; 3]);
const GOOD: Signer = ("leaf.key", ["leaf.pem", "intermediate.pem", "root.pem"]);
/// The leaf's certificate with another key: a forgery.
const FORGED: Signer = ("other-leaf.key", ["leaf.pem", "intermediate.pem", "root.pem"]);
/// A whole chain to a root that is not configured.
const OTHER_ROOT: Signer = ("other-leaf.key", ["other-leaf.pem", "other-intermediate.pem", "other-root.pem"]);
const EXPIRED: Signer = ("leaf.key", ["expired-leaf.pem", "intermediate.pem", "root.pem"]);
/// A leaf of the right chain that is not a receipt-signing certificate.
const PLAIN: Signer = ("leaf.key", ["plain-leaf.pem", "intermediate.pem", "root.pem"]);

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

/// The base64 DER of a PEM certificate (its body).
fn der(name: &str) -> String {
    read(name).lines().filter(|line| !line.starts_with("-----")).collect()
}

fn sign(payload: &Value, (key, chain): Signer) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(chain.iter().map(|name| der(name)).collect());
    jsonwebtoken::encode(&header, payload, &EncodingKey::from_ec_pem(read(key).as_bytes()).unwrap()).unwrap()
}

fn transaction(original: &str, expires: i64, signed: i64, account: Option<&str>) -> Value {
    json!({
        "originalTransactionId": original, "transactionId": format!("{original}-{signed}"), "productId": PRO,
        "bundleId": BUNDLE, "environment": "Sandbox", "expiresDate": expires, "signedDate": signed,
        "appAccountToken": account, "type": "Auto-Renewable Subscription",
    })
}

struct Note<'a> {
    kind: &'a str,
    subtype: Option<&'a str>,
    uuid: &'a str,
    signed: i64,
    transaction: Value,
    renewal: Option<Value>,
}

fn payload(note: &Note<'_>, signer: Signer) -> Value {
    json!({
        "notificationType": note.kind, "subtype": note.subtype, "notificationUUID": note.uuid, "version": "2.0",
        "signedDate": note.signed,
        "data": {
            "bundleId": BUNDLE, "environment": "Sandbox",
            "signedTransactionInfo": sign(&note.transaction, signer),
            "signedRenewalInfo": note.renewal.as_ref().map(|r| sign(r, GOOD)),
        },
    })
}

fn body(signed_payload: String) -> Vec<u8> {
    serde_json::to_vec(&json!({ "signedPayload": signed_payload })).unwrap()
}

fn notification(note: &Note<'_>) -> Vec<u8> {
    body(sign(&payload(note, GOOD), GOOD))
}

fn configured() -> TestAppBuilder {
    quick()
        .env("APPLE_ROOT_CERTS", &format!("{DIR}/root.pem"))
        .env("APPLE_BUNDLE_ID", BUNDLE)
        .env("APPLE_ENVIRONMENT", "Sandbox")
        .env("APPLE_PRODUCTS", &format!("{PRO}=pro,com.example.enterprise=enterprise"))
}

async fn deliver(app: &TestApp, body: Vec<u8>) -> Value {
    let res = post(app, "apple", &[], body).await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()
}

#[tokio::test]
async fn a_linked_purchase_follows_signed_notifications_in_signed_order_and_once() {
    let app = configured().spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let t0 = now_ms();

    let signed = sign(&transaction("2000001", t0 + 30 * DAY, t0 - 10_000, Some(&user_id)), GOOD);
    let linked = client.post_json("/api/v1/app/billing/apple/link", &json!({"signed_transaction": signed})).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    let linked = linked.json();
    assert_eq!(
        (linked["plan"].as_str(), linked["status"].as_str(), linked["store"].as_str()),
        (Some("pro"), Some("active"), Some("apple"))
    );
    let again = client.post_json("/api/v1/app/billing/apple/link", &json!({"signed_transaction": signed})).await;
    assert_eq!(again.status, 200, "linking one's own purchase again is harmless: {}", again.text);

    let renew = notification(&Note {
        kind: "DID_RENEW",
        subtype: None,
        uuid: "a1b2c3d4-0000-4000-8000-000000000001",
        signed: t0 + 1_000,
        transaction: transaction("2000001", t0 + 60 * DAY, t0 + 1_000, None),
        renewal: Some(json!({"autoRenewStatus": 1, "originalTransactionId": "2000001"})),
    });
    assert_eq!(deliver(&app, renew.clone()).await["duplicate"], false);
    wait_for(&app, "a1b2c3d4-0000-4000-8000-000000000001", "processed").await;
    let renewed = status(&client).await;
    let end: chrono::DateTime<chrono::Utc> = renewed["current_period_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(end.timestamp_millis(), t0 + 60 * DAY);
    let recorded = changes(&app, &user_id).await;
    assert_eq!(deliver(&app, renew).await["duplicate"], true, "a redelivery is answered, not stored again");
    assert_eq!(stored(&app).await.len(), 1);

    let steps = [
        ("DID_CHANGE_RENEWAL_STATUS", Some("AUTO_RENEW_DISABLED"), 2_000, None, ("pro", "active", true)),
        (
            "DID_FAIL_TO_RENEW",
            Some("GRACE_PERIOD"),
            3_000,
            Some(json!({"autoRenewStatus": 1, "gracePeriodExpiresDate": t0 + 65 * DAY})),
            ("pro", "active", false),
        ),
        ("DID_FAIL_TO_RENEW", None, 4_000, None, ("free", "past_due", false)),
        ("EXPIRED", Some("VOLUNTARY"), 6_000, None, ("free", "canceled", false)),
        // Signed before EXPIRED, delivered after it: ignored.
        ("DID_RENEW", None, 5_000, None, ("free", "canceled", false)),
    ];
    for (i, (kind, subtype, offset, renewal, (plan, state, cancel))) in steps.into_iter().enumerate() {
        let uuid = format!("a1b2c3d4-0000-4000-8000-00000000010{i}");
        let note = Note {
            kind,
            subtype,
            uuid: &uuid,
            signed: t0 + offset,
            transaction: transaction("2000001", t0 + 60 * DAY, t0 + offset, None),
            renewal,
        };
        deliver(&app, notification(&note)).await;
        wait_for(&app, &uuid, "processed").await;
        let now = status(&client).await;
        assert_eq!(
            (now["plan"].as_str(), now["status"].as_str(), now["cancel_at_period_end"].as_bool()),
            (Some(plan), Some(state), Some(cancel)),
            "after {kind} {subtype:?}"
        );
        if subtype == Some("GRACE_PERIOD") {
            let end: chrono::DateTime<chrono::Utc> = now["current_period_end"].as_str().unwrap().parse().unwrap();
            assert_eq!(end.timestamp_millis(), t0 + 65 * DAY, "access lasts until the grace period ends");
        }
    }
    assert_eq!(changes(&app, &user_id).await, recorded + 4, "each change written once; the stale one not at all");
}

#[tokio::test]
async fn forged_foreign_and_tampered_notifications_are_refused_and_nothing_is_stored() {
    let app = configured().spawn().await;
    let t0 = now_ms();
    let note = |uuid: &'static str| Note {
        kind: "SUBSCRIBED",
        subtype: Some("INITIAL_BUY"),
        uuid,
        signed: t0,
        transaction: transaction("2000009", t0 + 30 * DAY, t0, None),
        renewal: None,
    };
    let good = payload(&note("b0000000-0000-4000-8000-000000000001"), GOOD);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut changed = good.clone();
        change(&mut changed);
        changed
    };
    let tampered = {
        let signed = sign(&good, GOOD);
        let parts: Vec<&str> = signed.split('.').collect();
        let forged_claims = URL_SAFE_NO_PAD.encode(with(&|p| p["notificationType"] = json!("REFUND")).to_string());
        format!("{}.{forged_claims}.{}", parts[0], parts[2])
    };
    let hs256 = {
        let header = Header { x5c: Some(GOOD.1.iter().map(|n| der(n)).collect()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(b"a guessed secret")).unwrap()
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("another key with the leaf's certificate", "leaf's key", body(sign(&good, FORGED))),
        ("a chain to another root", "configured root", body(sign(&good, OTHER_ROOT))),
        ("an expired leaf", "expired", body(sign(&good, EXPIRED))),
        ("a leaf that is not for receipts", "not an App Store signing", body(sign(&good, PLAIN))),
        ("a leaf alone", "x5c chain", {
            let mut header = Header::new(Algorithm::ES256);
            header.x5c = Some(vec![der("leaf.pem")]);
            body(
                jsonwebtoken::encode(&header, &good, &EncodingKey::from_ec_pem(read("leaf.key").as_bytes()).unwrap())
                    .unwrap(),
            )
        }),
        ("another app", "APPLE_BUNDLE_ID", body(sign(&with(&|p| p["data"]["bundleId"] = json!("com.evil.app")), GOOD))),
        (
            "another environment",
            "APPLE_ENVIRONMENT",
            body(sign(&with(&|p| p["data"]["environment"] = json!("Production")), GOOD)),
        ),
        ("a tampered payload", "leaf's key", body(tampered)),
        ("HS256 with the chain", "ES256", body(hs256)),
        (
            "a forged nested transaction",
            "leaf's key",
            body(sign(&payload(&note("b0000000-0000-4000-8000-000000000002"), FORGED), GOOD)),
        ),
        ("no signedPayload", "signedPayload", serde_json::to_vec(&json!({"notificationType": "SUBSCRIBED"})).unwrap()),
        ("not a JWS", "base64url", body("not.a.jws".to_owned())),
    ];
    for (what, reason, body) in cases {
        let res = post(&app, "apple", &[], body).await;
        assert_refused(&res, 400, "INVALID_SIGNATURE");
        assert!(res.text.contains(reason), "{what}: {}", res.text);
        assert!(!res.text.contains("BEGIN"), "{what}: {}", res.text);
    }
    assert!(stored(&app).await.is_empty(), "nothing refused is stored");
    deliver(&app, body(sign(&good, GOOD))).await;
    assert_eq!(stored(&app).await.len(), 1, "the genuine one is");

    let plain = quick().spawn().await;
    assert_refused(&post(&plain, "apple", &[], body(sign(&good, GOOD))).await, 503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn a_notification_links_its_purchase_by_app_account_token_and_a_refund_ends_it() {
    let app = configured().spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let t0 = now_ms();
    let subscribed = Note {
        kind: "SUBSCRIBED",
        subtype: Some("INITIAL_BUY"),
        uuid: "c0000000-0000-4000-8000-000000000001",
        signed: t0,
        transaction: transaction("2000020", t0 + 7 * DAY, t0, Some(&user_id)),
        renewal: None,
    };
    deliver(&app, notification(&subscribed)).await;
    wait_for(&app, subscribed.uuid, "processed").await;
    assert_eq!(status(&client).await["status"], "active");

    // Nobody's purchase: stored and processed, changes nobody.
    let stranger = Note {
        uuid: "c0000000-0000-4000-8000-000000000002",
        transaction: transaction("2000021", t0 + 7 * DAY, t0, Some("0190a000-0000-7000-8000-000000000000")),
        ..subscribed
    };
    deliver(&app, notification(&stranger)).await;
    wait_for(&app, stranger.uuid, "processed").await;

    let mut refunded = transaction("2000020", t0 + 7 * DAY, t0 + 1_000, None);
    refunded["revocationDate"] = json!(t0 + 900);
    let refund = Note {
        kind: "REFUND",
        subtype: None,
        uuid: "c0000000-0000-4000-8000-000000000003",
        signed: t0 + 1_000,
        transaction: refunded,
        renewal: None,
    };
    deliver(&app, notification(&refund)).await;
    wait_for(&app, refund.uuid, "processed").await;
    let now = status(&client).await;
    assert_eq!((now["plan"].as_str(), now["status"].as_str()), (Some("free"), Some("canceled")));
}

#[tokio::test]
async fn linking_an_app_store_purchase_is_guarded() {
    let app = configured().spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let (other, _) = app.signed_in_client().await;
    let t0 = now_ms();
    let link = |client: &omnistack_testkit::TestClient, signed: String| {
        let client = client.clone();
        async move { client.post_json("/api/v1/app/billing/apple/link", &json!({"signed_transaction": signed})).await }
    };
    let mine = sign(&transaction("2000030", t0 + DAY, t0, None), GOOD);

    let anonymous = reqwest::Client::new()
        .post(app.url("/api/v1/app/billing/apple/link"))
        .json(&json!({"signed_transaction": mine}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let acting = app.client.with_token(&impersonation_token(&app, &user_id).await);
    assert_refused(
        &acting.post_json("/api/v1/app/billing/apple/link", &json!({"signed_transaction": mine})).await,
        403,
        "AUTHORIZATION_ERROR",
    );
    let for_other = sign(&transaction("2000031", t0 + DAY, t0, Some("0190a000-0000-7000-8000-000000000001")), GOOD);
    assert_refused(&link(&client, for_other).await, 403, "AUTHORIZATION_ERROR");
    let mut unknown_product = transaction("2000032", t0 + DAY, t0, None);
    unknown_product["productId"] = json!("com.example.unlisted");
    assert_refused(&link(&client, sign(&unknown_product, GOOD)).await, 422, "VALIDATION_ERROR");
    for bad in ["x".repeat(16 * 1024 + 1), "a.b.c\u{0}".to_owned(), "a.b.c\u{202e}".to_owned(), String::new()] {
        assert_refused(&link(&client, bad).await, 422, "VALIDATION_ERROR");
    }
    assert_refused(
        &link(&client, sign(&transaction("2000033", t0 + DAY, t0, None), FORGED)).await,
        400,
        "INVALID_SIGNATURE",
    );
    assert_eq!(status(&client).await["status"], "none", "nothing refused changed anything");

    assert_eq!(link(&client, mine.clone()).await.status, 200);
    assert_refused(&link(&other, mine.clone()).await, 409, "CONFLICT");
    assert_eq!(status(&other).await["status"], "none");

    let plain = quick().spawn().await;
    let (client, _) = plain.signed_in_client().await;
    assert_refused(&link(&client, mine).await, 503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn concurrent_notifications_delivered_in_any_order_end_in_the_newest_state() {
    let app = configured().spawn().await;
    let (client, session) = app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap().to_owned();
    let t0 = now_ms();
    let signed = sign(&transaction("2000040", t0 + 30 * DAY, t0 - 10_000, Some(&user_id)), GOOD);
    assert_eq!(
        client.post_json("/api/v1/app/billing/apple/link", &json!({"signed_transaction": signed})).await.status,
        200
    );

    // The newest (EXPIRED) is sent first; older renewals race it.
    let mut bodies = Vec::new();
    for i in (0..6i64).rev() {
        let kind = if i == 5 { "EXPIRED" } else { "DID_RENEW" };
        let uuid = format!("d0000000-0000-4000-8000-00000000000{i}");
        let note = Note {
            kind,
            subtype: None,
            uuid: &uuid,
            signed: t0 + 1_000 * (i + 1),
            transaction: transaction("2000040", t0 + (31 + i) * DAY, t0 + 1_000 * (i + 1), None),
            renewal: None,
        };
        bodies.push((uuid.clone(), notification(&note)));
    }
    let deliveries = bodies.iter().map(|(_, body)| deliver(&app, body.clone()));
    futures::future::join_all(deliveries).await;
    for (uuid, _) in &bodies {
        wait_for(&app, uuid, "processed").await;
    }
    let now = status(&client).await;
    assert_eq!((now["plan"].as_str(), now["status"].as_str()), (Some("free"), Some("canceled")));
}
