//! Subscriptions, whatever the store: the caller's status, and changes written once.

use chrono::{Duration, Utc};
use omnistack::admin::audit::{Actor, AuditContext};
use omnistack::billing::{self, Cause, Store, Subscription, SubscriptionStatus};
use omnistack::config::Plan;
use omnistack_db::audit::AuditFilter;
use omnistack_testkit::TestApp;
use serde_json::json;
use uuid::Uuid;

fn webhook_cause() -> Cause {
    Cause {
        actor: Actor::anonymous(),
        source: "test",
        reference: Some("evt_1".into()),
        context: AuditContext::new(None, None),
    }
}

fn pro(status: SubscriptionStatus) -> Subscription {
    Subscription {
        plan: Plan::Pro,
        status,
        store: Some(Store::Stripe),
        current_period_end: Some(Utc::now() + Duration::days(30)),
        cancel_at_period_end: false,
    }
}

async fn changes_recorded(app: &TestApp, user_id: &str) -> i64 {
    let filter = AuditFilter {
        action: Some("billing.subscription_changed"),
        resource_id: Some(user_id),
        ..AuditFilter::default()
    };
    omnistack_db::audit::list_entries(&app.state.db, &filter, 0, 100).await.unwrap().1
}

#[tokio::test]
async fn a_new_account_is_on_free_with_no_subscription_and_strangers_get_401() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    let res = client.get("/api/v1/app/billing/status").await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        res.json(),
        json!({"plan": "free", "subscribed_plan": "free", "status": "none", "store": null,
               "current_period_end": null, "cancel_at_period_end": false})
    );
    let anonymous = reqwest::get(app.url("/api/v1/app/billing/status")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_change_is_written_and_audited_once_and_the_plan_follows_the_status() {
    let app = TestApp::spawn().await;
    let (client, session) = app.signed_in_client().await;
    let id_text = session["user"]["id"].as_str().unwrap().to_owned();
    let user_id: Uuid = id_text.parse().unwrap();
    let active = pro(SubscriptionStatus::Active);
    for _ in 0..2 {
        let mut tx = app.state.db.begin().await.unwrap();
        billing::apply(&mut tx, user_id, &active, &webhook_cause()).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(changes_recorded(&app, &id_text).await, 1, "the same state again is no change");
    let status = client.get("/api/v1/app/billing/status").await.json();
    assert_eq!(
        (status["plan"].as_str(), status["status"].as_str(), status["store"].as_str()),
        (Some("pro"), Some("active"), Some("stripe"))
    );
    assert!(client.get("/api/v1/app/users/me").await.json()["subscription_status"] == "active");

    let mut tx = app.state.db.begin().await.unwrap();
    let changed = billing::apply(&mut tx, user_id, &pro(SubscriptionStatus::PastDue), &webhook_cause()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed.map(|s| s.effective_plan()), Some(Plan::Free));
    let status = client.get("/api/v1/app/billing/status").await.json();
    assert_eq!((status["plan"].as_str(), status["subscribed_plan"].as_str()), (Some("free"), Some("pro")));
    assert_eq!(changes_recorded(&app, &id_text).await, 2);
}

#[tokio::test]
async fn concurrent_deliveries_of_one_state_record_one_change() {
    let app = TestApp::spawn().await;
    let (_, session) = app.signed_in_client().await;
    let id_text = session["user"]["id"].as_str().unwrap().to_owned();
    let user_id: Uuid = id_text.parse().unwrap();
    let next = pro(SubscriptionStatus::Trialing);
    let attempts = (0..6).map(|_| {
        let (db, next) = (app.state.db.clone(), next.clone());
        tokio::spawn(async move {
            let mut tx = db.begin().await.unwrap();
            let changed = billing::apply(&mut tx, user_id, &next, &webhook_cause()).await.unwrap();
            tx.commit().await.unwrap();
            changed.is_some()
        })
    });
    let changed = futures::future::join_all(attempts).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(changed, 1);
    assert_eq!(changes_recorded(&app, &id_text).await, 1);
}

#[tokio::test]
async fn a_change_for_an_unknown_account_is_not_found_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin().await.unwrap();
    let err = billing::apply(&mut tx, Uuid::now_v7(), &pro(SubscriptionStatus::Active), &webhook_cause()).await;
    assert!(matches!(err, Err(omnistack::error::Error::NotFound(_))));
    // Ended here: a transaction left open holds its locks past the test database's clean-up.
    tx.commit().await.unwrap();
}
