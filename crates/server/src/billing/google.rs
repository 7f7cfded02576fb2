//! Google Play: real-time developer notifications through Pub/Sub push, and purchases linked
//! from the app.
//!
//! A push is believed when its `Authorization: Bearer` OIDC token verifies against
//! `GOOGLE_PUBSUB_JWKS_URL` (RS256, issuer Google's, audience `GOOGLE_PUBSUB_AUDIENCE`, `email`
//! `GOOGLE_PUBSUB_SERVICE_ACCOUNT` and verified; 401 otherwise) and its notification's
//! `packageName` is `GOOGLE_PLAY_PACKAGE_NAME` (400 `INVALID_SIGNATURE` otherwise). The event id
//! is the Pub/Sub `messageId`.
//!
//! The notification only names a purchase token: the state applied is always the one the
//! Android Publisher API answers for it (`purchases.subscriptionsv2.get`), read with an OAuth
//! access token obtained by the JWT-bearer grant from `GOOGLE_PLAY_SERVICE_ACCOUNT_JSON` and
//! cached until shortly before it expires. Because the API gives the current state, the order
//! in which notifications arrive does not matter. A purchase is the SHA-256 of its token; a
//! new token whose `linkedPurchaseToken` is a linked purchase (an upgrade, a resubscription)
//! joins the same account. A purchase still waiting for acknowledgement is acknowledged. Each
//! purchase keeps the time of the newest answer applied, so of two concurrent lookups the one
//! asked for later wins, whichever commits last.
//!
//! | `subscriptionState` | the account's subscription |
//! |---|---|
//! | `ACTIVE` | `active` (`trialing` in a free-trial phase) until the latest line item's `expiryTime` |
//! | `IN_GRACE_PERIOD` | still `active` |
//! | `CANCELED` | `active` with `cancel_at_period_end` until `expiryTime`, then `canceled` |
//! | `ON_HOLD`, `PAUSED` | `past_due` (no access; Google may recover it) |
//! | `PENDING` | `incomplete` |
//! | `EXPIRED`, `PENDING_PURCHASE_CANCELED` | `canceled` |

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, Validation};
use omnistack_db::store_purchases;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::purchases;
use super::{Cause, Store, Subscription, SubscriptionStatus};
use crate::admin::audit::{Actor, AuditContext};
use crate::auth::external::{AuthFailure, PublishedKeys};
use crate::config::{BillingSettings, GoogleSettings, Plan};
use crate::error::{Error, FieldError, Result};
use crate::realtime::Hub;
use crate::telemetry::outbound;

/// Google's issuers of OIDC tokens.
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// The scope of the Publisher API.
const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
/// How long Google's keys are kept.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An access token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(120);
/// One call to Google.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Larger answers from Google are refused.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// Google Play's clients: the push token's keys, the Publisher API and its access token.
pub struct GooglePlay {
    settings: GoogleSettings,
    http: reqwest::Client,
    keys: PublishedKeys,
    signing_key: EncodingKey,
    token: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for GooglePlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GooglePlay").field("package", &self.settings.package_name).finish_non_exhaustive()
    }
}

/// A verified push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// The Pub/Sub `messageId`.
    pub message_id: String,
    /// `SUBSCRIPTION_PURCHASED`, `SUBSCRIPTION_RENEWED`, …, `VOIDED_PURCHASE`, `TEST`, …
    pub kind: String,
}

#[derive(Deserialize)]
struct PushClaims {
    email: Option<String>,
    email_verified: Option<bool>,
}

/// A subscription as the Publisher API answers (`SubscriptionPurchaseV2`), the fields used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaySubscription {
    /// `SUBSCRIPTION_STATE_ACTIVE`, …
    pub state: String,
    /// The line items' product ids, latest expiry first.
    pub product_ids: Vec<String>,
    /// The latest line item's expiry.
    pub expiry: Option<DateTime<Utc>>,
    /// Whether a line item is in a free trial.
    pub free_trial: bool,
    /// `ACKNOWLEDGEMENT_STATE_PENDING` or `…_ACKNOWLEDGED`.
    pub acknowledged: bool,
    /// The token this one replaces (upgrade, downgrade, resubscription).
    pub linked_purchase_token: Option<String>,
    /// The account id the app set at purchase (`obfuscatedExternalAccountId`).
    pub external_account_id: Option<String>,
}

impl GooglePlay {
    /// The clients for `settings` (the key was checked when the configuration was read).
    pub fn new(settings: &GoogleSettings, http: reqwest::Client) -> anyhow::Result<GooglePlay> {
        let signing_key = EncodingKey::from_rsa_pem(settings.service_account.private_key.expose().as_bytes())
            .map_err(|_| anyhow::anyhow!("GOOGLE_PLAY_SERVICE_ACCOUNT_JSON: private_key is not an RSA key"))?;
        Ok(GooglePlay {
            keys: PublishedKeys::new("google", settings.jwks_url.clone(), http.clone(), JWKS_TTL),
            settings: settings.clone(),
            http,
            signing_key,
            token: Mutex::new(None),
        })
    }

    /// Verifies a push delivery: 401 for a bad bearer, 400 `INVALID_SIGNATURE` for another
    /// app's notification, 422 for a body that is not a Pub/Sub push.
    pub async fn verify_push(&self, headers: &HeaderMap, body: &[u8]) -> Result<Push> {
        let bearer = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Error::Authentication("a Pub/Sub push token is required (Authorization: Bearer)".into()))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_issuer(&ISSUERS);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims: PushClaims = self.keys.verify(bearer, &validation).await.map_err(|failure| match failure {
            // Google's keys cannot be fetched: Pub/Sub retries the push.
            AuthFailure::ProviderUnavailable => {
                Error::ServiceUnavailable("Google's signing keys are unavailable".into())
            }
            other => Error::Authentication(format!("the Pub/Sub push token is refused: {other}")),
        })?;
        let email = claims.email.unwrap_or_default();
        let expected = self.settings.push_service_account.as_bytes();
        if !bool::from(email.as_bytes().ct_eq(expected)) || claims.email_verified != Some(true) {
            return Err(Error::Authentication("the Pub/Sub push token is from another service account".into()));
        }
        let (message_id, notification) = decode_push(body)?;
        if notification.get("packageName").and_then(Value::as_str) != Some(self.settings.package_name.as_str()) {
            return Err(Error::InvalidSignature(
                "the notification is for another app (GOOGLE_PLAY_PACKAGE_NAME)".into(),
            ));
        }
        Ok(Push { message_id, kind: kind_of(&notification) })
    }

    /// An access token for the Publisher API: cached, else obtained by the JWT-bearer grant.
    async fn access_token(&self) -> Result<String> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let key = &self.settings.service_account;
        let now = Utc::now().timestamp();
        let claims =
            json!({"iss": key.client_email, "scope": SCOPE, "aud": key.token_uri, "iat": now, "exp": now + 3600});
        let mut header = Header::new(Algorithm::RS256);
        header.kid = key.private_key_id.clone();
        let assertion = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(|err| anyhow::anyhow!("signing the Google assertion: {err}"))?;
        let request = self
            .http
            .post(&key.token_uri)
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &assertion)])
            .timeout(CALL_TIMEOUT);
        let answer = read(request, "the Google token endpoint").await?;
        let (Some(token), Some(expires_in)) =
            (answer.get("access_token").and_then(Value::as_str), answer.get("expires_in").and_then(Value::as_u64))
        else {
            return Err(Error::ExternalService("the Google token endpoint answered without an access token".into()));
        };
        let lifetime = Duration::from_secs(expires_in.min(86_400)).saturating_sub(TOKEN_MARGIN);
        *cached = Some((token.to_owned(), Instant::now() + lifetime));
        Ok(token.to_owned())
    }

    fn purchase_url(&self, path: &str) -> String {
        format!(
            "{}/androidpublisher/v3/applications/{}/purchases/{path}",
            self.settings.api_base.trim_end_matches('/'),
            self.settings.package_name
        )
    }

    /// The subscription of `token` as Google holds it now. 404 when Google knows no such
    /// purchase; 502 when Google fails.
    pub async fn subscription(&self, token: &str) -> Result<PlaySubscription> {
        let url = self.purchase_url(&format!("subscriptionsv2/tokens/{}", encode_segment(token)));
        let access = self.access_token().await?;
        let request = self.http.get(url).bearer_auth(access).timeout(CALL_TIMEOUT);
        let answer = read(request, "the Android Publisher API").await?;
        parse_subscription(&answer).ok_or_else(|| {
            Error::ExternalService("the Android Publisher API answered an unreadable subscription".into())
        })
    }

    /// Acknowledges the purchase of `token` for `product_id` (Google refunds what stays
    /// unacknowledged for three days).
    pub async fn acknowledge(&self, product_id: &str, token: &str) -> Result<()> {
        let url = self.purchase_url(&format!(
            "subscriptions/{}/tokens/{}:acknowledge",
            encode_segment(product_id),
            encode_segment(token)
        ));
        let access = self.access_token().await?;
        let request = self.http.post(url).bearer_auth(access).json(&json!({})).timeout(CALL_TIMEOUT);
        // Answered with an empty body.
        let response = outbound::send(request)
            .await
            .map_err(|_| Error::ExternalService("the Android Publisher API is unreachable".into()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Error::ExternalService(format!("the Android Publisher API answered {}", response.status().as_u16())))
        }
    }
}

/// Sends `request` and reads a JSON object: 404 passes through as NOT_FOUND, every other
/// failure is 502 `EXTERNAL_SERVICE_ERROR` naming `what` (never the body or a credential).
async fn read(request: reqwest::RequestBuilder, what: &str) -> Result<Value> {
    let mut response =
        outbound::send(request).await.map_err(|_| Error::ExternalService(format!("{what} is unreachable")))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
        return Err(Error::NotFound("Google Play knows no such purchase".into()));
    }
    if !status.is_success() {
        return Err(Error::ExternalService(format!("{what} answered {}", status.as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|_| Error::ExternalService(format!("{what}'s answer was cut off")))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Error::ExternalService(format!("{what}'s answer is too large")));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| Error::ExternalService(format!("{what} answered something that is not JSON")))
}

/// A path segment: the characters Google's tokens and product ids use pass, the rest is
/// percent-encoded.
fn encode_segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The push's `message.messageId` and its decoded `message.data`; 422 when it is not a push.
pub fn decode_push(body: &[u8]) -> Result<(String, Value)> {
    let invalid = |m: &str| Error::Validation(vec![FieldError::new("body", m)]);
    let push: Value = serde_json::from_slice(body).map_err(|_| invalid("must be a JSON object"))?;
    let message = &push["message"];
    let id = message
        .get("messageId")
        .or_else(|| message.get("message_id"))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("must be a Pub/Sub push: message.messageId is missing"))?;
    let data = message
        .get("data")
        .and_then(Value::as_str)
        .and_then(|d| STANDARD.decode(d).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| invalid("must be a Pub/Sub push: message.data is not base64 JSON"))?;
    Ok((id.to_owned(), data))
}

/// The notification's kind: its subscription notification type by name, or its kind.
pub fn kind_of(notification: &Value) -> String {
    if let Some(sub) = notification.get("subscriptionNotification") {
        let name = match sub.get("notificationType").and_then(Value::as_i64) {
            Some(1) => "SUBSCRIPTION_RECOVERED",
            Some(2) => "SUBSCRIPTION_RENEWED",
            Some(3) => "SUBSCRIPTION_CANCELED",
            Some(4) => "SUBSCRIPTION_PURCHASED",
            Some(5) => "SUBSCRIPTION_ON_HOLD",
            Some(6) => "SUBSCRIPTION_IN_GRACE_PERIOD",
            Some(7) => "SUBSCRIPTION_RESTARTED",
            Some(8) => "SUBSCRIPTION_PRICE_CHANGE_CONFIRMED",
            Some(9) => "SUBSCRIPTION_DEFERRED",
            Some(10) => "SUBSCRIPTION_PAUSED",
            Some(11) => "SUBSCRIPTION_PAUSE_SCHEDULE_CHANGED",
            Some(12) => "SUBSCRIPTION_REVOKED",
            Some(13) => "SUBSCRIPTION_EXPIRED",
            Some(17) => "SUBSCRIPTION_ITEMS_CHANGED",
            Some(19) => "SUBSCRIPTION_PRICE_CHANGE_UPDATED",
            Some(20) => "SUBSCRIPTION_PENDING_PURCHASE_CANCELED",
            _ => "SUBSCRIPTION_OTHER",
        };
        return name.to_owned();
    }
    for (key, name) in [
        ("voidedPurchaseNotification", "VOIDED_PURCHASE"),
        ("oneTimeProductNotification", "ONE_TIME_PRODUCT"),
        ("testNotification", "TEST"),
    ] {
        if notification.get(key).is_some() {
            return name.to_owned();
        }
    }
    "OTHER".to_owned()
}

/// The purchase token a stored push is about (subscription or voided subscription), if any.
pub fn token_of(notification: &Value) -> Option<&str> {
    let token = notification["subscriptionNotification"]["purchaseToken"].as_str().or_else(|| {
        let voided = &notification["voidedPurchaseNotification"];
        // productType 1: a subscription.
        (voided["productType"].as_i64() == Some(1)).then(|| voided["purchaseToken"].as_str()).flatten()
    })?;
    (!token.is_empty() && token.len() <= 512).then_some(token)
}

/// The SHA-256 (hex) a purchase is stored under: tokens are bearer-like and long.
pub fn purchase_id(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn parse_subscription(answer: &Value) -> Option<PlaySubscription> {
    let state = answer.get("subscriptionState")?.as_str()?.to_owned();
    let mut items: Vec<(Option<DateTime<Utc>>, String, bool)> = answer
        .get("lineItems")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let product = item.get("productId")?.as_str()?.to_owned();
                    let expiry = item.get("expiryTime").and_then(Value::as_str).and_then(|t| t.parse().ok());
                    let trial = item["offerPhase"].get("freeTrial").is_some();
                    Some((expiry, product, trial))
                })
                .collect()
        })
        .unwrap_or_default();
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let text = |value: &Value| value.as_str().filter(|s| !s.is_empty() && s.len() <= 512).map(str::to_owned);
    Some(PlaySubscription {
        state,
        expiry: items.first().and_then(|item| item.0),
        free_trial: items.first().is_some_and(|item| item.2),
        product_ids: items.into_iter().map(|item| item.1).collect(),
        acknowledged: answer.get("acknowledgementState").and_then(Value::as_str)
            != Some("ACKNOWLEDGEMENT_STATE_PENDING"),
        linked_purchase_token: text(&answer["linkedPurchaseToken"]),
        external_account_id: text(&answer["externalAccountIdentifiers"]["obfuscatedExternalAccountId"]),
    })
}

/// The plan of the subscription's products (the first `GOOGLE_PRODUCTS` names).
fn plan_of(billing: &BillingSettings, subscription: &PlaySubscription) -> Option<(Plan, String)> {
    subscription.product_ids.iter().find_map(|id| billing.google_products.get(id).map(|plan| (*plan, id.clone())))
}

/// What Google's state makes of the account's subscription. `plan` is the product's plan
/// (`None`: not in `GOOGLE_PRODUCTS`, an error for a state that grants it).
pub fn next_state(
    subscription: &PlaySubscription,
    plan: Option<Plan>,
    current: &Subscription,
    now: DateTime<Utc>,
) -> std::result::Result<Subscription, String> {
    let live = subscription.expiry.is_some_and(|end| end > now);
    let granted = if subscription.free_trial { SubscriptionStatus::Trialing } else { SubscriptionStatus::Active };
    let (status, cancel) = match subscription.state.as_str() {
        "SUBSCRIPTION_STATE_ACTIVE" | "SUBSCRIPTION_STATE_IN_GRACE_PERIOD" => (granted, false),
        "SUBSCRIPTION_STATE_CANCELED" if live => (granted, true),
        "SUBSCRIPTION_STATE_ON_HOLD" | "SUBSCRIPTION_STATE_PAUSED" => (SubscriptionStatus::PastDue, false),
        "SUBSCRIPTION_STATE_PENDING" => (SubscriptionStatus::Incomplete, false),
        _ => (SubscriptionStatus::Canceled, false),
    };
    let plan = match plan {
        Some(plan) => plan,
        None if status.grants_plan() => {
            return Err(format!("the Google Play products {:?} are not in GOOGLE_PRODUCTS", subscription.product_ids));
        }
        None => current.plan,
    };
    Ok(Subscription {
        plan,
        status,
        store: Some(Store::Google),
        current_period_end: subscription.expiry,
        cancel_at_period_end: cancel,
    })
}

/// Why applying a push failed.
pub use super::apple::ApplyError;

/// Applies Google's current state of the purchase `token`: the account that linked it (or its
/// predecessor through `linkedPurchaseToken`) gets it; a purchase no account has linked is
/// ignored (the app links it). Returns the account and its new subscription when it changed.
pub async fn apply_token(
    db: &omnistack_db::Db,
    billing: &BillingSettings,
    play: &GooglePlay,
    token: &str,
    reference: &str,
) -> std::result::Result<Option<(Uuid, Subscription)>, ApplyError> {
    // When Google's answer was asked for: a state read earlier and applied later is stale.
    let read_at = omnistack_db::time::now();
    let subscription = match play.subscription(token).await {
        Ok(subscription) => subscription,
        Err(Error::NotFound(_)) => {
            return Err(ApplyError::Permanent("Google Play knows no such purchase token".into()));
        }
        Err(err) => return Err(ApplyError::Retry(err)),
    };
    let id = purchase_id(token);
    let mut tx = db.begin().await?;
    let mut purchase = store_purchases::find_purchase(&mut tx, Store::Google.as_str(), &id).await?;
    if purchase.is_none()
        && let Some(previous) = &subscription.linked_purchase_token
    {
        let earlier = store_purchases::find_purchase(&mut tx, Store::Google.as_str(), &purchase_id(previous)).await?;
        if let Some(earlier) = earlier {
            let product = subscription.product_ids.first().cloned().unwrap_or_default();
            let row = purchases::link_to(&mut tx, Store::Google, &id, earlier.user_id, &product)
                .await
                .map_err(ApplyError::Retry)?;
            purchase = Some(row);
        }
    }
    let Some(purchase) = purchase else {
        tracing::info!("Google Play notification for a purchase no account has linked");
        return Ok(None);
    };
    let product = subscription.product_ids.first().map_or("", String::as_str);
    if !store_purchases::advance_signed(&mut tx, purchase.id, read_at, product).await? {
        tracing::info!("a newer Google Play state of this purchase was applied meanwhile");
        return Ok(None);
    }
    let current = super::current_in(&mut tx, purchase.user_id).await.map_err(ApplyError::Retry)?;
    let plan = plan_of(billing, &subscription);
    let next =
        next_state(&subscription, plan.as_ref().map(|p| p.0), &current, Utc::now()).map_err(ApplyError::Permanent)?;
    let cause = Cause {
        actor: Actor::anonymous(),
        source: "google.webhook",
        reference: Some(reference.to_owned()),
        context: AuditContext::new(None, None),
    };
    let changed = if purchases::may_replace(&current, &next) {
        super::apply(&mut tx, purchase.user_id, &next, &cause).await.map_err(ApplyError::Retry)?
    } else {
        None
    };
    tx.commit().await?;
    acknowledge_if_pending(play, &subscription, plan.map(|p| p.1), token).await.map_err(ApplyError::Retry)?;
    Ok(changed.map(|sub| (purchase.user_id, sub)))
}

async fn acknowledge_if_pending(
    play: &GooglePlay,
    subscription: &PlaySubscription,
    product: Option<String>,
    token: &str,
) -> Result<()> {
    let payable =
        matches!(subscription.state.as_str(), "SUBSCRIPTION_STATE_ACTIVE" | "SUBSCRIPTION_STATE_IN_GRACE_PERIOD");
    match product {
        Some(product) if !subscription.acknowledged && payable => play.acknowledge(&product, token).await,
        _ => Ok(()),
    }
}

/// A purchase the app reports: its token and product id.
#[derive(Clone, Copy, Debug)]
pub struct ReportedPurchase<'a> {
    /// The purchase token.
    pub token: &'a str,
    /// The subscription's product id.
    pub product_id: &'a str,
}

/// Links the Google Play purchase `token` of `product_id` to `user`, verified with the
/// Publisher API, and applies its state. 404 when Google knows no such purchase; 403 when the
/// app set another account's id at purchase; 409 when another account holds it; 422 for a
/// product not in `GOOGLE_PRODUCTS` or not in the purchase.
pub async fn link(
    db: &omnistack_db::Db,
    hub: &Hub,
    play: &GooglePlay,
    billing: &BillingSettings,
    user: &omnistack_db::users::User,
    context: AuditContext,
    purchase: ReportedPurchase<'_>,
) -> Result<Subscription> {
    let ReportedPurchase { token, product_id } = purchase;
    let invalid = |field: &str, m: &str| Error::Validation(vec![FieldError::new(field, m)]);
    let plan = billing
        .google_products
        .get(product_id)
        .copied()
        .ok_or_else(|| invalid("product_id", "is a product this service does not offer (GOOGLE_PRODUCTS)"))?;
    let read_at = omnistack_db::time::now();
    let subscription = play.subscription(token).await?;
    if !subscription.product_ids.iter().any(|id| id == product_id) {
        return Err(invalid("product_id", "is not the product of this purchase"));
    }
    if let Some(account) = subscription.external_account_id.as_deref().and_then(|id| id.parse::<Uuid>().ok())
        && account != user.id
    {
        return Err(Error::Authorization("this purchase was made for another account".into()));
    }
    let mut tx = db.begin().await?;
    let purchase = purchases::link_to(&mut tx, Store::Google, &purchase_id(token), user.id, product_id).await?;
    let newer = store_purchases::advance_signed(&mut tx, purchase.id, read_at, product_id).await?;
    let current = super::current_in(&mut tx, user.id).await?;
    let next = next_state(&subscription, Some(plan), &current, Utc::now()).map_err(|m| invalid("product_id", &m))?;
    let cause = Cause { actor: Actor::user(user), source: "google.link", reference: None, context };
    let changed = if newer && purchases::may_replace(&current, &next) {
        super::apply(&mut tx, user.id, &next, &cause).await?
    } else {
        None
    };
    tx.commit().await?;
    if let Some(sub) = &changed {
        super::announce(hub, user.id, sub).await;
    }
    acknowledge_if_pending(play, &subscription, Some(product_id.to_owned()), token).await?;
    super::current(db, user.id).await
}

/// Shared handle.
pub type Play = Arc<GooglePlay>;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(state: &str, days: i64, extra: Value) -> PlaySubscription {
        let mut value = json!({
            "subscriptionState": format!("SUBSCRIPTION_STATE_{state}"),
            "acknowledgementState": "ACKNOWLEDGEMENT_STATE_PENDING",
            "lineItems": [
                {"productId": "old", "expiryTime": (Utc::now() - chrono::Duration::days(5)).to_rfc3339()},
                {"productId": "pro_monthly", "expiryTime": (Utc::now() + chrono::Duration::days(days)).to_rfc3339()},
            ],
        });
        if let (Some(value), Value::Object(extra)) = (value.as_object_mut(), extra) {
            value.extend(extra);
        }
        parse_subscription(&value).unwrap()
    }

    #[test]
    fn the_publisher_apis_state_maps_to_a_subscription() {
        use SubscriptionStatus::{Active, Canceled, Incomplete, PastDue};
        let none = Subscription::none();
        let state = |s: &PlaySubscription| {
            let next = next_state(s, Some(Plan::Pro), &none, Utc::now()).unwrap();
            (next.status, next.cancel_at_period_end)
        };
        let active = answer("ACTIVE", 30, json!({}));
        assert_eq!((active.product_ids[0].as_str(), active.acknowledged), ("pro_monthly", false), "latest first");
        assert_eq!(state(&active), (Active, false));
        assert_eq!(state(&answer("IN_GRACE_PERIOD", 3, json!({}))), (Active, false));
        assert_eq!(state(&answer("CANCELED", 3, json!({}))), (Active, true));
        assert_eq!(state(&answer("CANCELED", -1, json!({}))), (Canceled, false));
        assert_eq!(state(&answer("ON_HOLD", -1, json!({}))), (PastDue, false));
        assert_eq!(state(&answer("PAUSED", -1, json!({}))), (PastDue, false));
        assert_eq!(state(&answer("PENDING", 1, json!({}))), (Incomplete, false));
        assert_eq!(state(&answer("EXPIRED", -1, json!({}))), (Canceled, false));
        let trial = answer("ACTIVE", 7, json!({}));
        let mut trial_value = json!({"subscriptionState": "SUBSCRIPTION_STATE_ACTIVE", "lineItems": [
            {"productId": "pro_monthly", "expiryTime": "2099-01-01T00:00:00Z", "offerPhase": {"freeTrial": {}}}]});
        assert!(!trial.free_trial && parse_subscription(&trial_value).unwrap().free_trial);
        trial_value["linkedPurchaseToken"] = json!("prev");
        assert_eq!(parse_subscription(&trial_value).unwrap().linked_purchase_token.as_deref(), Some("prev"));
        assert!(next_state(&active, None, &none, Utc::now()).is_err(), "an unlisted product grants nothing");
    }

    #[test]
    fn notifications_are_named_and_tokens_hashed() {
        let sub = json!({"subscriptionNotification": {"notificationType": 4, "purchaseToken": "t"}});
        assert_eq!((kind_of(&sub).as_str(), token_of(&sub)), ("SUBSCRIPTION_PURCHASED", Some("t")));
        let voided = json!({"voidedPurchaseNotification": {"productType": 1, "purchaseToken": "v"}});
        assert_eq!((kind_of(&voided).as_str(), token_of(&voided)), ("VOIDED_PURCHASE", Some("v")));
        let one_time = json!({"voidedPurchaseNotification": {"productType": 2, "purchaseToken": "v"}});
        assert_eq!(token_of(&one_time), None);
        assert_eq!((kind_of(&json!({"testNotification": {}})).as_str(), token_of(&json!({}))), ("TEST", None));
        assert_eq!(purchase_id("t").len(), 64);
        assert_eq!(encode_segment("a.b-c_d~/x?"), "a.b-c_d~%2Fx%3F");
    }
}
