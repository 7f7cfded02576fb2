//! The App Store: Server Notifications V2 and purchases linked from the app.
//!
//! A notification (`{"signedPayload": JWS}`) and the transaction and renewal info nested in it
//! are verified through their `x5c` chains ([`jws`]) when received; `data.bundleId` and
//! `data.environment` must be `APPLE_BUNDLE_ID` and `APPLE_ENVIRONMENT`. Stored notifications
//! are processed without verifying again (they were verified before they were stored).
//!
//! A purchase is `originalTransactionId`, linked to one account ([`link`], or the first
//! notification whose `appAccountToken` is an account's id). Each purchase keeps the
//! `signedDate` of the newest state applied; an older notification delivered late is ignored.
//!
//! | type | the account's subscription |
//! |---|---|
//! | `SUBSCRIBED`, `DID_RENEW` | `active` (`trialing` in a free trial) until `expiresDate` |
//! | `DID_FAIL_TO_RENEW` + `GRACE_PERIOD` | still `active`, until `gracePeriodExpiresDate` |
//! | `DID_FAIL_TO_RENEW` | `past_due` (Apple retries the payment) |
//! | `EXPIRED`, `GRACE_PERIOD_EXPIRED`, `REFUND`, `REVOKE` | `canceled` |
//! | `DID_CHANGE_RENEWAL_STATUS` | `cancel_at_period_end` = auto-renew off |
//! | any other | nothing (stored, marked processed) |

pub mod jws;

use chrono::{DateTime, Utc};
use omnistack_db::billing as db_billing;
use omnistack_db::store_purchases;
use rustls::pki_types::UnixTime;
use serde_json::Value;
use uuid::Uuid;

use self::jws::Roots;
use super::purchases::{self, from_millis};
use super::{Cause, Store, Subscription, SubscriptionStatus};
use crate::admin::audit::{Actor, AuditContext};
use crate::config::{AppleSettings, BillingSettings, Plan};
use crate::error::{Error, Result};
use crate::realtime::Hub;

/// A signed transaction (`JWSTransactionDecodedPayload`), the fields acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The purchase: the same across renewals.
    pub original_transaction_id: String,
    /// This transaction.
    pub transaction_id: String,
    /// The App Store product id.
    pub product_id: String,
    /// The app's bundle id.
    pub bundle_id: String,
    /// `Production` or `Sandbox`.
    pub environment: String,
    /// When the paid period ends.
    pub expires_date: Option<DateTime<Utc>>,
    /// Set when Apple refunded or revoked it.
    pub revocation_date: Option<DateTime<Utc>>,
    /// The UUID the app set at purchase (this service's account id).
    pub app_account_token: Option<String>,
    /// Whether it is a free trial (`offerDiscountType` `FREE_TRIAL`).
    pub free_trial: bool,
    /// When Apple signed it.
    pub signed_date: DateTime<Utc>,
}

/// Signed renewal info (`JWSRenewalInfoDecodedPayload`), the fields acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Renewal {
    /// `1`: renews; `0`: ends at the period's end.
    pub auto_renew: Option<bool>,
    /// The end of a billing grace period.
    pub grace_period_expires_date: Option<DateTime<Utc>>,
}

/// A notification (`responseBodyV2DecodedPayload`), the fields acted on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// `SUBSCRIBED`, `DID_RENEW`, …
    pub notification_type: String,
    /// `GRACE_PERIOD`, `AUTO_RENEW_DISABLED`, …
    pub subtype: Option<String>,
    /// Its id: what makes a redelivery a duplicate.
    pub uuid: String,
    /// When Apple signed it: what orders notifications of one purchase.
    pub signed_date: DateTime<Utc>,
    /// `data.signedTransactionInfo`.
    pub transaction: Option<Transaction>,
    /// `data.signedRenewalInfo`.
    pub renewal: Option<Renewal>,
}

impl Notification {
    /// The stored event type: `TYPE` or `TYPE:SUBTYPE`.
    pub fn event_type(&self) -> String {
        match &self.subtype {
            Some(subtype) => format!("{}:{subtype}", self.notification_type),
            None => self.notification_type.clone(),
        }
    }
}

/// Verifies a notification's body at `now`: its signature and chain, the nested signed
/// objects', the bundle id and the environment. 400 `INVALID_SIGNATURE` otherwise.
pub fn verify_notification(settings: &AppleSettings, body: &[u8], now: UnixTime) -> Result<Notification> {
    let roots = roots(settings)?;
    let outer: Value = serde_json::from_slice(body).map_err(|_| jws::refused("the body is not JSON"))?;
    let signed = outer.get("signedPayload").and_then(Value::as_str).ok_or_else(|| jws::refused("no signedPayload"))?;
    let payload = jws::verify(signed, &roots, now)?;
    let scope = payload.get("data").or_else(|| payload.get("summary")).unwrap_or(&Value::Null);
    check_app(settings, text(scope, "bundleId"), text(scope, "environment"))?;
    let notification = parse_notification(&payload, &|nested| jws::verify(nested, &roots, now))?;
    if let Some(transaction) = &notification.transaction {
        check_app(settings, Some(&transaction.bundle_id), Some(&transaction.environment))?;
    }
    Ok(notification)
}

/// A stored notification's body, verified when it was received, read again.
pub fn decode_notification(body: &Value) -> Result<Notification> {
    let signed = body.get("signedPayload").and_then(Value::as_str).ok_or_else(|| jws::refused("no signedPayload"))?;
    let payload = jws::decode_unverified(signed)?;
    parse_notification(&payload, &jws::decode_unverified)
}

/// Verifies a signed transaction from the app at `now`, bundle id and environment included.
pub fn verify_transaction(settings: &AppleSettings, signed: &str, now: UnixTime) -> Result<Transaction> {
    let payload = jws::verify(signed, &roots(settings)?, now)?;
    let transaction = parse_transaction(&payload).ok_or_else(|| jws::refused("not a transaction"))?;
    check_app(settings, Some(&transaction.bundle_id), Some(&transaction.environment))?;
    Ok(transaction)
}

fn roots(settings: &AppleSettings) -> Result<Roots> {
    Roots::new(&settings.root_certs).map_err(|err| anyhow::anyhow!("APPLE_ROOT_CERTS: {err}").into())
}

fn check_app(settings: &AppleSettings, bundle_id: Option<&str>, environment: Option<&str>) -> Result<()> {
    if bundle_id != Some(settings.bundle_id.as_str()) {
        return Err(jws::refused("signed for another app (APPLE_BUNDLE_ID)"));
    }
    if environment != Some(settings.environment.as_str()) {
        return Err(jws::refused("signed for another environment (APPLE_ENVIRONMENT)"));
    }
    Ok(())
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key)?.as_str()
}

fn millis(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    value.get(key)?.as_i64().and_then(from_millis)
}

fn parse_notification(payload: &Value, nested: &dyn Fn(&str) -> Result<Value>) -> Result<Notification> {
    let malformed = || jws::refused("the notification lacks notificationType, notificationUUID or signedDate");
    let data = payload.get("data").unwrap_or(&Value::Null);
    let transaction = match text(data, "signedTransactionInfo") {
        Some(signed) => Some(parse_transaction(&nested(signed)?).ok_or_else(|| jws::refused("not a transaction"))?),
        None => None,
    };
    let renewal = match text(data, "signedRenewalInfo") {
        Some(signed) => {
            let info = nested(signed)?;
            Some(Renewal {
                auto_renew: info.get("autoRenewStatus").and_then(Value::as_i64).map(|s| s == 1),
                grace_period_expires_date: millis(&info, "gracePeriodExpiresDate"),
            })
        }
        None => None,
    };
    Ok(Notification {
        notification_type: text(payload, "notificationType").ok_or_else(malformed)?.to_owned(),
        subtype: text(payload, "subtype").map(str::to_owned),
        uuid: text(payload, "notificationUUID").ok_or_else(malformed)?.to_owned(),
        signed_date: millis(payload, "signedDate").ok_or_else(malformed)?,
        transaction,
        renewal,
    })
}

fn parse_transaction(payload: &Value) -> Option<Transaction> {
    let bounded = |key: &str| text(payload, key).filter(|v| !v.is_empty() && v.len() <= 200).map(str::to_owned);
    Some(Transaction {
        original_transaction_id: bounded("originalTransactionId")?,
        transaction_id: bounded("transactionId")?,
        product_id: bounded("productId")?,
        bundle_id: bounded("bundleId")?,
        environment: bounded("environment")?,
        expires_date: millis(payload, "expiresDate"),
        revocation_date: millis(payload, "revocationDate"),
        app_account_token: bounded("appAccountToken"),
        free_trial: text(payload, "offerDiscountType") == Some("FREE_TRIAL"),
        signed_date: millis(payload, "signedDate")?,
    })
}

/// The plan of an App Store product; `None` when `APPLE_PRODUCTS` does not name it.
fn plan_of(billing: &BillingSettings, product_id: &str) -> Option<Plan> {
    billing.apple_products.get(product_id).copied()
}

/// The notification types that change a subscription (see the module documentation).
pub const ACTED_ON: [&str; 8] = [
    "SUBSCRIBED",
    "DID_RENEW",
    "DID_FAIL_TO_RENEW",
    "EXPIRED",
    "GRACE_PERIOD_EXPIRED",
    "REFUND",
    "REVOKE",
    "DID_CHANGE_RENEWAL_STATUS",
];

/// What `notification` makes of the account's subscription (`current`), or `None` when its
/// type changes nothing. `plan` is the product's plan (`None`: not in `APPLE_PRODUCTS`, an
/// error for a state that grants it).
pub fn next_state(
    notification: &Notification,
    plan: Option<Plan>,
    current: &Subscription,
    now: DateTime<Utc>,
) -> std::result::Result<Option<Subscription>, String> {
    let Some(transaction) = &notification.transaction else { return Ok(None) };
    let auto_renew_off = notification.renewal.as_ref().and_then(|r| r.auto_renew).map(|on| !on);
    let mine = current.store == Some(Store::Apple);
    let (status, end, cancel) = match notification.notification_type.as_str() {
        "SUBSCRIBED" | "DID_RENEW" => (granted(transaction), transaction.expires_date, auto_renew_off.unwrap_or(false)),
        "DID_FAIL_TO_RENEW" if notification.subtype.as_deref() == Some("GRACE_PERIOD") => {
            let grace = notification.renewal.as_ref().and_then(|r| r.grace_period_expires_date);
            (SubscriptionStatus::Active, grace.or(transaction.expires_date), auto_renew_off.unwrap_or(false))
        }
        "DID_FAIL_TO_RENEW" => (SubscriptionStatus::PastDue, transaction.expires_date, auto_renew_off.unwrap_or(false)),
        "EXPIRED" | "GRACE_PERIOD_EXPIRED" | "REFUND" | "REVOKE" => {
            (SubscriptionStatus::Canceled, transaction.expires_date, false)
        }
        "DID_CHANGE_RENEWAL_STATUS" => {
            let status = if mine {
                current.status
            } else if transaction.expires_date.is_some_and(|end| end > now) {
                granted(transaction)
            } else {
                SubscriptionStatus::Canceled
            };
            let off = notification.subtype.as_deref().map(|s| s == "AUTO_RENEW_DISABLED").or(auto_renew_off);
            (status, transaction.expires_date, off.unwrap_or(false))
        }
        _ => return Ok(None),
    };
    let status = if transaction.revocation_date.is_some() { SubscriptionStatus::Canceled } else { status };
    let plan = match plan {
        Some(plan) => plan,
        None if status.grants_plan() => {
            return Err(format!("the App Store product {:?} is not in APPLE_PRODUCTS", transaction.product_id));
        }
        None => current.plan,
    };
    Ok(Some(Subscription {
        plan,
        status,
        store: Some(Store::Apple),
        current_period_end: end,
        cancel_at_period_end: cancel,
    }))
}

/// `active`, or `trialing` in a free trial.
fn granted(transaction: &Transaction) -> SubscriptionStatus {
    if transaction.free_trial { SubscriptionStatus::Trialing } else { SubscriptionStatus::Active }
}

/// What a linked transaction alone says: `active` (or `trialing`) until `expiresDate` unless it
/// was revoked or has expired; `cancel_at_period_end` is kept from an App Store subscription.
pub fn linked_state(transaction: &Transaction, plan: Plan, current: &Subscription, now: DateTime<Utc>) -> Subscription {
    let live = transaction.revocation_date.is_none() && transaction.expires_date.is_some_and(|end| end > now);
    let mine = current.store == Some(Store::Apple);
    Subscription {
        plan,
        status: if live { granted(transaction) } else { SubscriptionStatus::Canceled },
        store: Some(Store::Apple),
        current_period_end: transaction.expires_date,
        cancel_at_period_end: live && mine && current.cancel_at_period_end,
    }
}

/// Applies a stored notification (event `event_id`). Returns the account and its new
/// subscription when it changed, for announcing after commit. A notification of a purchase no
/// account has linked (and whose `appAccountToken` names none), an older one than the state
/// applied, or a type that changes nothing, is ignored. An error is worth retrying unless it
/// says the product is not configured (then the admin fixes `APPLE_PRODUCTS` and replays).
pub async fn apply_notification(
    db: &omnistack_db::Db,
    billing: &BillingSettings,
    notification: &Notification,
) -> std::result::Result<Option<(Uuid, Subscription)>, ApplyError> {
    let Some(transaction) = &notification.transaction else { return Ok(None) };
    let mut tx = db.begin().await?;
    let purchase_id = &transaction.original_transaction_id;
    let mut purchase = store_purchases::find_purchase(&mut tx, Store::Apple.as_str(), purchase_id).await?;
    if purchase.is_none() {
        // The app set the account's id as appAccountToken at purchase: Apple vouches for it.
        if let Some(user_id) = transaction.app_account_token.as_deref().and_then(|t| t.parse::<Uuid>().ok())
            && db_billing::find_subscription(&mut tx, user_id).await?.is_some()
        {
            let row = purchases::link_to(&mut tx, Store::Apple, purchase_id, user_id, &transaction.product_id)
                .await
                .map_err(ApplyError::Retry)?;
            purchase = Some(row);
        }
    }
    let Some(purchase) = purchase else {
        tracing::info!(apple.original_transaction_id = %purchase_id, "App Store notification for a purchase no account has linked");
        return Ok(None);
    };
    if !ACTED_ON.contains(&notification.notification_type.as_str()) {
        return Ok(None);
    }
    // Takes the purchase's row: a concurrent notification of it waits, then compares again.
    if !store_purchases::advance_signed(&mut tx, purchase.id, notification.signed_date, &transaction.product_id).await?
    {
        tracing::info!(apple.notification = %notification.uuid, "App Store notification older than the state applied: ignored");
        return Ok(None);
    }
    let current = super::current_in(&mut tx, purchase.user_id).await.map_err(ApplyError::Retry)?;
    let plan = plan_of(billing, &transaction.product_id);
    let Some(next) = next_state(notification, plan, &current, Utc::now()).map_err(ApplyError::Permanent)? else {
        return Ok(None);
    };
    if !purchases::may_replace(&current, &next) {
        tx.commit().await?;
        return Ok(None);
    }
    let cause = Cause {
        actor: Actor::anonymous(),
        source: "apple.webhook",
        reference: Some(notification.uuid.clone()),
        context: AuditContext::new(None, None),
    };
    let changed = super::apply(&mut tx, purchase.user_id, &next, &cause).await.map_err(ApplyError::Retry)?;
    tx.commit().await?;
    Ok(changed.map(|sub| (purchase.user_id, sub)))
}

/// Why applying failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Worth another attempt (the database).
    #[error("{0}")]
    Retry(Error),
    /// Will not pass until the configuration changes.
    #[error("{0}")]
    Permanent(String),
}

impl From<omnistack_db::DbError> for ApplyError {
    fn from(err: omnistack_db::DbError) -> Self {
        ApplyError::Retry(err.into())
    }
}

/// Links the App Store purchase of `signed` (a signed transaction from the app) to `user` and
/// applies what it says. 403 when its `appAccountToken` names another account; 409 when
/// another account holds the purchase; 422 for a product not in `APPLE_PRODUCTS`.
pub async fn link(
    db: &omnistack_db::Db,
    hub: &Hub,
    settings: &AppleSettings,
    billing: &BillingSettings,
    user: &omnistack_db::users::User,
    context: AuditContext,
    signed: &str,
) -> Result<Subscription> {
    let transaction = verify_transaction(settings, signed, UnixTime::now())?;
    if let Some(token) = &transaction.app_account_token
        && token.parse::<Uuid>().ok() != Some(user.id)
    {
        return Err(Error::Authorization("this purchase was made for another account (appAccountToken)".into()));
    }
    let plan = plan_of(billing, &transaction.product_id).ok_or_else(|| {
        Error::Validation(vec![crate::error::FieldError::new(
            "signed_transaction",
            "is for a product this service does not offer (APPLE_PRODUCTS)",
        )])
    })?;
    let mut tx = db.begin().await?;
    let purchase = purchases::link_to(
        &mut tx,
        Store::Apple,
        &transaction.original_transaction_id,
        user.id,
        &transaction.product_id,
    )
    .await?;
    let newer =
        store_purchases::advance_signed(&mut tx, purchase.id, transaction.signed_date, &transaction.product_id).await?;
    let current = super::current_in(&mut tx, user.id).await?;
    let next = linked_state(&transaction, plan, &current, Utc::now());
    let cause = Cause {
        actor: Actor::user(user),
        source: "apple.link",
        reference: Some(transaction.transaction_id.clone()),
        context,
    };
    let changed = if newer && purchases::may_replace(&current, &next) {
        super::apply(&mut tx, user.id, &next, &cause).await?
    } else {
        None
    };
    tx.commit().await?;
    if let Some(sub) = &changed {
        super::announce(hub, user.id, sub).await;
    }
    super::current(db, user.id).await
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn note(kind: &str, subtype: Option<&str>, trial: bool, renewal: Option<Renewal>) -> Notification {
        let now = Utc::now();
        Notification {
            notification_type: kind.into(),
            subtype: subtype.map(Into::into),
            uuid: "u".into(),
            signed_date: now,
            transaction: Some(Transaction {
                original_transaction_id: "1".into(),
                transaction_id: "2".into(),
                product_id: "p".into(),
                bundle_id: "b".into(),
                environment: "Sandbox".into(),
                expires_date: Some(now + Duration::days(30)),
                revocation_date: None,
                app_account_token: None,
                free_trial: trial,
                signed_date: now,
            }),
            renewal,
        }
    }

    fn status_after(n: &Notification, current: &Subscription) -> Option<(SubscriptionStatus, bool)> {
        next_state(n, Some(Plan::Pro), current, Utc::now()).unwrap().map(|s| (s.status, s.cancel_at_period_end))
    }

    #[test]
    fn each_type_maps_to_its_state() {
        use SubscriptionStatus::{Active, Canceled, PastDue, Trialing};
        let none = Subscription::none();
        let off = Some(Renewal { auto_renew: Some(false), grace_period_expires_date: None });
        assert_eq!(status_after(&note("SUBSCRIBED", None, true, None), &none), Some((Trialing, false)));
        assert_eq!(status_after(&note("DID_RENEW", None, false, off.clone()), &none), Some((Active, true)));
        assert_eq!(status_after(&note("DID_FAIL_TO_RENEW", None, false, None), &none), Some((PastDue, false)));
        assert_eq!(
            status_after(&note("DID_FAIL_TO_RENEW", Some("GRACE_PERIOD"), false, None), &none),
            Some((Active, false))
        );
        for kind in ["EXPIRED", "GRACE_PERIOD_EXPIRED", "REFUND", "REVOKE"] {
            assert_eq!(status_after(&note(kind, None, false, None), &none), Some((Canceled, false)), "{kind}");
        }
        let apple_past_due =
            Subscription { status: PastDue, store: Some(Store::Apple), plan: Plan::Pro, ..Subscription::none() };
        let change = note("DID_CHANGE_RENEWAL_STATUS", Some("AUTO_RENEW_DISABLED"), false, None);
        assert_eq!(status_after(&change, &apple_past_due), Some((PastDue, true)), "keeps its own status");
        assert_eq!(status_after(&note("PRICE_INCREASE", None, false, None), &none), None);
        assert!(next_state(&note("DID_RENEW", None, false, None), None, &none, Utc::now()).is_err());
        let canceled = next_state(&note("EXPIRED", None, false, None), None, &apple_past_due, Utc::now());
        assert_eq!(canceled.unwrap().unwrap().plan, Plan::Pro, "an unlisted product may still end");
    }
}
