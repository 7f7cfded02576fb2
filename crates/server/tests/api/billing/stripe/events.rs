//! Stripe's events through the real intake: the subscription is re-read before it is written,
//! so order and age do not matter; payment failures reach the account; a Stripe that fails
//! during processing is retried until it answers.

use std::time::Duration;

use omnistack_testkit::stripe::FakeStripe;
use reqwest::Method;
use serde_json::json;

use super::{checkout, deliver, stand, stand_with, status, subscriber};
use crate::realtime::connect;
use crate::webhooks::{STRIPE_SECRET, now, post_stripe, wait_for};

#[tokio::test]
async fn a_subscription_update_delivered_before_the_checkout_completion_still_ends_right() {
    let stand = stand().await;
    let (client, session) = stand.app.signed_in_client().await;
    let res = checkout(&client, "pro_monthly").await;
    assert_eq!(res.status, 201, "{}", res.text);
    let session_object = stand.stripe.checkout_sessions()[0].clone();
    let subscription = stand.stripe.pay_checkout(&session_object).await;

    // Stripe's order is not guaranteed: the update first …
    deliver(&stand.app, &FakeStripe::event("customer.subscription.updated", &subscription)).await;
    let now_status = status(&client).await;
    assert_eq!((now_status["plan"].as_str(), now_status["status"].as_str()), (Some("pro"), Some("active")));
    assert_eq!(now_status["store"], "stripe");
    assert!(now_status["current_period_end"].is_string());
    // … then the completion, which finds it done.
    let mut completed = session_object.clone();
    completed["subscription"] = subscription["id"].clone();
    deliver(&stand.app, &FakeStripe::event("checkout.session.completed", &completed)).await;
    assert_eq!(status(&client).await, now_status);
    let user_id = session["user"]["id"].as_str().unwrap();
    assert_eq!(changes(&stand.app, user_id).await, 1, "written once");
}

#[tokio::test]
async fn an_older_event_after_a_newer_one_does_not_bring_back_the_old_state() {
    let stand = stand().await;
    let (client, _, subscription) = subscriber(&stand, "pro_monthly").await;
    let old = FakeStripe::event("customer.subscription.updated", &subscription);
    let id = subscription["id"].as_str().unwrap();
    let item = subscription["items"]["data"][0]["id"].as_str().unwrap();
    let newer = stand
        .stripe
        .call(
            Method::POST,
            &format!("/v1/subscriptions/{id}"),
            &[("items[0][id]", item), ("items[0][price]", "price_ent")],
        )
        .await;
    deliver(&stand.app, &FakeStripe::event("customer.subscription.updated", &newer)).await;
    assert_eq!(status(&client).await["plan"], "enterprise");
    // The late event still says `pro`; the server reads Stripe's answer instead.
    assert_eq!(old["data"]["object"]["items"]["data"][0]["price"]["id"], "price_pro");
    deliver(&stand.app, &old).await;
    assert_eq!(status(&client).await["plan"], "enterprise");
}

#[tokio::test]
async fn a_failed_payment_mails_the_account_and_tells_its_sockets() {
    let stand = stand().await;
    let (client, user_id, subscription) = subscriber(&stand, "pro_monthly").await;
    let token = client_token(&stand, &user_id).await;
    let mut socket = connect(&stand.app, &token).await;
    let invoice = json!({
        "id": "in_test_failed_1", "object": "invoice", "customer": subscription["customer"],
        "subscription": subscription["id"], "status": "open", "amount_due": 1200, "currency": "eur",
        "hosted_invoice_url": "https://invoice.stripe.com/i/acct_test/in_test_failed_1",
    });
    let event = FakeStripe::event("invoice.payment_failed", &invoice);
    deliver(&stand.app, &event).await;
    let message = socket.next_of_type_within("billing.updated", Duration::from_secs(10)).await;
    assert_eq!(message["data"]["plan"], "pro", "{message}");
    let user = omnistack_db::users::find_user(&stand.app.state.db, user_id.parse().unwrap()).await.unwrap().unwrap();
    let to = user.email.unwrap();
    let mail = stand.app.mail.wait_for(&to, "payment did not go through").await;
    assert!(mail.body().contains("12.00 EUR"), "{}", mail.body());
    assert!(mail.body().contains("https://invoice.stripe.com/i/acct_test/in_test_failed_1"));

    // A replay (an admin's, or Stripe's redelivery under a new event id) mails once.
    deliver(&stand.app, &FakeStripe::event("invoice.payment_failed", &invoice)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = stand.app.mail.messages().into_iter().filter(|m| m.subject().contains("did not go through")).count();
    assert_eq!(sent, 1);
    assert_eq!(status(&client).await["plan"], "pro", "Stripe still retries the payment: the plan stays");
}

async fn client_token(stand: &super::Stand, user_id: &str) -> String {
    // A fresh sign-in for the socket: the account's own token.
    let user = omnistack_db::users::find_user(&stand.app.state.db, user_id.parse().unwrap()).await.unwrap().unwrap();
    let res = stand
        .app
        .client
        .post_json(
            "/api/v1/public/auth/login",
            &json!({"email": user.email.unwrap(), "password": "correct-horse-battery"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    res.json()["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_deleted_subscription_leaves_the_account_canceled_on_free() {
    let stand = stand().await;
    let (client, _, subscription) = subscriber(&stand, "pro_monthly").await;
    let id = subscription["id"].as_str().unwrap();
    let ended = stand.stripe.call(Method::DELETE, &format!("/v1/subscriptions/{id}"), &[]).await;
    deliver(&stand.app, &FakeStripe::event("customer.subscription.deleted", &ended)).await;
    let now_status = status(&client).await;
    assert_eq!((now_status["status"].as_str(), now_status["plan"].as_str()), (Some("canceled"), Some("free")));
    assert_eq!(now_status["subscribed_plan"], "pro");
    // A forged "active" copy of the deleted subscription changes nothing: Stripe is asked.
    let mut forged = ended.clone();
    forged["status"] = json!("active");
    deliver(&stand.app, &FakeStripe::event("customer.subscription.updated", &forged)).await;
    assert_eq!(status(&client).await["plan"], "free");
}

#[tokio::test]
async fn invoice_paid_syncs_and_a_deleted_customer_cancels_and_is_forgotten() {
    let stand = stand().await;
    let (client, user_id, subscription) = subscriber(&stand, "pro_monthly").await;
    let invoices = stand
        .stripe
        .call(Method::GET, &format!("/v1/invoices?customer={}", subscription["customer"].as_str().unwrap()), &[])
        .await;
    deliver(&stand.app, &FakeStripe::event("invoice.paid", &invoices["data"][0])).await;
    assert_eq!(status(&client).await["status"], "active");
    let customer = json!({"id": subscription["customer"], "object": "customer", "deleted": true});
    deliver(&stand.app, &FakeStripe::event("customer.deleted", &customer)).await;
    let now_status = status(&client).await;
    assert_eq!((now_status["status"].as_str(), now_status["plan"].as_str()), (Some("canceled"), Some("free")));
    let held =
        omnistack_db::billing::find_stripe_customer(&stand.app.state.db, user_id.parse().unwrap()).await.unwrap();
    assert_eq!(held, None);
}

#[tokio::test]
async fn events_about_customers_no_account_holds_are_ignored_not_retried() {
    let stand = stand().await;
    let stranger = stand.stripe.call(Method::POST, "/v1/customers", &[("email", "stranger@example.com")]).await;
    stand.stripe.add_card(stranger["id"].as_str().unwrap()).await;
    let subscription = stand
        .stripe
        .call(
            Method::POST,
            "/v1/subscriptions",
            &[("customer", stranger["id"].as_str().unwrap()), ("items[0][price]", "price_pro")],
        )
        .await;
    let event = FakeStripe::event("customer.subscription.created", &subscription);
    deliver(&stand.app, &event).await;
    let stored = wait_for(&stand.app, event["id"].as_str().unwrap(), "processed").await;
    assert_eq!(stored.attempts, 1);
    // A completion naming an account that does not exist is ignored too.
    let session = json!({"id": "cs_test_x", "object": "checkout.session", "mode": "subscription",
        "customer": stranger["id"], "client_reference_id": uuid::Uuid::now_v7().to_string(), "subscription": subscription["id"]});
    deliver(&stand.app, &FakeStripe::event("checkout.session.completed", &session)).await;
}

#[tokio::test]
async fn a_stripe_that_fails_during_processing_is_retried_until_it_answers() {
    let stand = stand_with(|builder| builder.env("JOBS_RETRY_BASE_SECONDS", "1").env("JOBS_MAX_ATTEMPTS", "10")).await;
    let (client, _) = stand.app.signed_in_client().await;
    assert_eq!(checkout(&client, "pro_monthly").await.status, 201);
    let session_object = stand.stripe.checkout_sessions()[0].clone();
    let subscription = stand.stripe.pay_checkout(&session_object).await;
    stand.stripe.set_failing(true);
    let event = FakeStripe::event("customer.subscription.created", &subscription);
    let res = post_stripe(&stand.app, serde_json::to_vec(&event).unwrap(), STRIPE_SECRET, now()).await;
    assert_eq!(res.status, 200, "stored and answered at once, whatever Stripe does");
    let failed = wait_for(&stand.app, event["id"].as_str().unwrap(), "failed").await;
    assert!(failed.last_error.unwrap().contains("Stripe"), "the attempt's error is kept");
    assert_eq!(status(&client).await["plan"], "free");
    stand.stripe.set_failing(false);
    let done = wait_for(&stand.app, event["id"].as_str().unwrap(), "processed").await;
    assert!(done.attempts >= 2, "{}", done.attempts);
    assert_eq!(status(&client).await["plan"], "pro");
}

async fn changes(app: &omnistack_testkit::TestApp, user_id: &str) -> i64 {
    let filter = omnistack_db::audit::AuditFilter {
        action: Some("billing.subscription_changed"),
        resource_id: Some(user_id),
        ..Default::default()
    };
    omnistack_db::audit::list_entries(&app.state.db, &filter, 0, 100).await.unwrap().1
}

#[tokio::test]
async fn an_admin_replay_of_a_stripe_event_changes_nothing_twice() {
    let stand = stand().await;
    let (client, user_id, subscription) = subscriber(&stand, "pro_monthly").await;
    let event = FakeStripe::event("customer.subscription.updated", &subscription);
    deliver(&stand.app, &event).await;
    let stored = wait_for(&stand.app, event["id"].as_str().unwrap(), "processed").await;
    let before = changes(&stand.app, &user_id).await;
    let admin = crate::admin::account(&stand.app, omnistack::auth::Role::Admin).await;
    let res = admin.client.post_json(&format!("/api/v1/admin/webhooks/{}/replay", stored.id), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let replayed = wait_for(&stand.app, event["id"].as_str().unwrap(), "processed").await;
    assert!(replayed.attempts >= 1);
    assert_eq!(changes(&stand.app, &user_id).await, before, "the same state is not written again");
    assert_eq!(status(&client).await["plan"], "pro");
}
