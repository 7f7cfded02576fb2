//! The Stripe routes: checkout, portal, invoices, cancel, resume, change plan; what refuses
//! them (no token, impersonation, bad input, not configured, Stripe failing).

use omnistack::auth::Role;
use omnistack_testkit::TestApp;
use reqwest::Method;
use serde_json::json;

use super::{FRONTEND, checkout, configured, purchase, stand, status, subscriber};
use crate::admin::account;
use crate::webhooks::assert_refused;

const ROUTES: [(&str, &str); 6] = [
    ("POST", "/api/v1/app/billing/checkout"),
    ("GET", "/api/v1/app/billing/portal?return_url=https%3A%2F%2Fapp.example.test%2Fbilling"),
    ("GET", "/api/v1/app/billing/invoices"),
    ("POST", "/api/v1/app/billing/cancel"),
    ("POST", "/api/v1/app/billing/resume"),
    ("POST", "/api/v1/app/billing/change-plan"),
];

fn body_for(path: &str) -> serde_json::Value {
    if path.ends_with("/checkout") {
        purchase("pro_monthly")
    } else if path.ends_with("/change-plan") {
        json!({"price": "enterprise_monthly"})
    } else {
        json!({"at_period_end": true})
    }
}

async fn call(client: &omnistack_testkit::TestClient, method: &str, path: &str) -> omnistack_testkit::TestResponse {
    match method {
        "GET" => client.get(path).await,
        _ => client.post_json(path, &body_for(path)).await,
    }
}

#[tokio::test]
async fn a_checkout_opens_a_subscription_session_for_the_accounts_one_customer() {
    let stand = stand().await;
    let (client, session) = stand.app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let res = checkout(&client, "pro_monthly").await;
    assert_eq!(res.status, 201, "{}", res.text);
    let body = res.json();
    let id = body["session_id"].as_str().unwrap();
    assert!(id.starts_with("cs_") && body["url"].as_str().unwrap().ends_with(id), "{body}");

    let sessions = stand.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1);
    let sent = &sessions[0];
    assert_eq!(sent["mode"], "subscription");
    assert_eq!(sent["client_reference_id"], user_id);
    assert_eq!(sent["line_items"]["data"][0]["price"]["id"], "price_pro");
    assert_eq!(sent["success_url"], format!("{FRONTEND}/billing/done"));
    let customer = omnistack_db::billing::find_stripe_customer(&stand.app.state.db, user_id.parse().unwrap())
        .await
        .unwrap()
        .expect("the customer is recorded");
    assert_eq!(sent["customer"], customer.as_str());
    let at_stripe = stand.stripe.call(Method::GET, &format!("/v1/customers/{customer}"), &[]).await;
    assert_eq!(at_stripe["metadata"]["user_id"], user_id);

    // Every call is authenticated, pins the API version, and every POST carries a key.
    let ours = |r: &omnistack_testkit::stripe::Recorded| {
        r.headers.get("user-agent").is_some_and(|ua| ua.to_str().unwrap().starts_with("omnistack/"))
    };
    let sent: Vec<_> = stand.stripe.requests().into_iter().filter(ours).collect();
    assert_eq!(sent.len(), 2, "a customer, then a session");
    for request in sent {
        assert_eq!(request.headers["stripe-version"], "2024-06-20", "{}", request.path);
        if request.method == "POST" {
            assert!(request.headers.contains_key("idempotency-key"), "{}", request.path);
        }
    }
    let created = stand.stripe.requests().into_iter().find(|r| r.path == "/v1/customers").unwrap();
    assert_eq!(created.headers["idempotency-key"], format!("customer-{user_id}").as_str());

    // A second checkout (the first was abandoned) reuses the customer.
    assert_eq!(checkout(&client, "enterprise_monthly").await.status, 201);
    assert_eq!(stand.stripe.customer_creations(), 1);
    assert_eq!(stand.stripe.checkout_sessions()[1]["customer"], customer.as_str());
}

#[tokio::test]
async fn ten_concurrent_first_checkouts_create_one_customer() {
    let stand = stand().await;
    let (client, session) = stand.app.signed_in_client().await;
    let user_id = session["user"]["id"].as_str().unwrap();
    let attempts = (0..10).map(|_| checkout(&client, "pro_monthly"));
    for res in futures::future::join_all(attempts).await {
        assert_eq!(res.status, 201, "{}", res.text);
    }
    let customers = stand.stripe.call(Method::GET, "/v1/customers?limit=100", &[]).await;
    let customers = customers["data"].as_array().unwrap();
    assert_eq!(customers.len(), 1, "one customer at Stripe: {customers:?}");
    assert_eq!(customers[0]["metadata"]["user_id"], user_id);
    let sessions = stand.stripe.checkout_sessions();
    assert_eq!(sessions.len(), 10);
    assert!(sessions.iter().all(|s| s["customer"] == customers[0]["id"]), "every session for the one customer");
    assert_eq!(stand.stripe.customer_creations(), 1);
}

#[tokio::test]
async fn bad_prices_open_redirects_and_oversized_urls_are_refused() {
    let stand = stand().await;
    let (client, _) = stand.app.signed_in_client().await;
    let path = "/api/v1/app/billing/checkout";
    for price in ["gold_monthly", "price_pro", "", "pro_monthly\u{0}"] {
        assert_refused(&client.post_json(path, &purchase(price)).await, 422, "VALIDATION_ERROR");
    }
    assert_refused(&client.post_json(path, &purchase(&"p".repeat(201))).await, 422, "VALIDATION_ERROR");
    for evil in [
        "https://evil.test/phish",
        "https://app.example.test.evil.test/",
        "https://app.example.test@evil.test/",
        "http://app.example.test/",
        "//evil.test",
        "javascript:alert(1)",
    ] {
        for field in ["success_url", "cancel_url"] {
            let mut body = purchase("pro_monthly");
            body[field] = json!(evil);
            assert_refused(&client.post_json(path, &body).await, 400, "BAD_REQUEST");
        }
        let res = client.get(&format!("/api/v1/app/billing/portal?return_url={}", urlencode(evil))).await;
        assert_refused(&res, 400, "BAD_REQUEST");
    }
    let mut other_origin = purchase("pro_monthly");
    other_origin["success_url"] = json!("https://billing.example.test/thanks");
    assert_eq!(client.post_json(path, &other_origin).await.status, 201, "BILLING_REDIRECT_ORIGINS is allowed");
    let long = format!("{FRONTEND}/{}", "a".repeat(2048));
    let mut body = purchase("pro_monthly");
    body["success_url"] = json!(long);
    assert_refused(&client.post_json(path, &body).await, 422, "VALIDATION_ERROR");
    let mut body = purchase("pro_monthly");
    body["cancel_url"] = json!(format!("{FRONTEND}/a b"));
    assert_refused(&client.post_json(path, &body).await, 422, "VALIDATION_ERROR");
    assert_refused(&client.get("/api/v1/app/billing/portal").await, 422, "VALIDATION_ERROR");
    for limit in ["0", "101", "-1", "x"] {
        let res = client.get(&format!("/api/v1/app/billing/invoices?limit={limit}")).await;
        assert_refused(&res, 422, "VALIDATION_ERROR");
    }
    assert_refused(
        &client.post_json("/api/v1/app/billing/change-plan", &json!({"price": "gold"})).await,
        422,
        "VALIDATION_ERROR",
    );
    assert_eq!(stand.stripe.checkout_sessions().len(), 1, "only the allowed one reached Stripe");
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn without_a_token_every_stripe_route_is_401_and_with_an_impersonation_token_403() {
    let stand = stand().await;
    for (method, path) in ROUTES {
        assert_refused(&call(&stand.app.client, method, path).await, 401, "AUTHENTICATION_ERROR");
    }
    let admin = account(&stand.app, Role::Admin).await;
    let (user, user_id, _) = subscriber(&stand, "pro_monthly").await;
    let res = admin
        .client
        .post_json(
            "/api/v1/admin/impersonations",
            &json!({"user_id": user_id, "reason": "support ticket #4521: billing question", "duration_minutes": 5}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    let acting = stand.app.client.with_token(res.json()["access_token"].as_str().unwrap());
    let before = stand.stripe.requests().len();
    for (method, path) in ROUTES {
        assert_refused(&call(&acting, method, path).await, 403, "AUTHORIZATION_ERROR");
    }
    assert_eq!(stand.stripe.requests().len(), before, "nothing reached Stripe");
    assert_eq!(status(&acting).await["plan"], "pro", "the status still answers");
    assert_eq!(status(&user).await["cancel_at_period_end"], false);
}

#[tokio::test]
async fn without_stripe_configured_the_stripe_routes_are_503_and_the_status_answers_free() {
    let app = TestApp::spawn().await;
    let (client, _) = app.signed_in_client().await;
    for (method, path) in ROUTES {
        assert_refused(&call(&client, method, path).await, 503, "SERVICE_UNAVAILABLE");
    }
    assert_eq!(status(&client).await["plan"], "free");
}

#[tokio::test]
async fn a_failing_or_unreachable_stripe_is_502_never_500() {
    let stand = stand().await;
    let (client, _) = stand.app.signed_in_client().await;
    stand.stripe.set_failing(true);
    for (method, path) in ROUTES {
        let res = call(&client, method, path).await;
        // Routes that need a customer first answer 404 (none yet) or an empty list without
        // calling Stripe; those that call it answer 502.
        assert!(matches!(res.status.as_u16(), 200 | 404 | 502), "{method} {path}: {}", res.text);
        assert_ne!(res.status, 500);
    }
    assert_refused(&checkout(&client, "pro_monthly").await, 502, "EXTERNAL_SERVICE_ERROR");
    stand.stripe.set_failing(false);
    assert_eq!(checkout(&client, "pro_monthly").await.status, 201, "a failed attempt left nothing in the way");
    stand.stripe.set_failing(true);
    let res = client.get("/api/v1/app/billing/portal?return_url=https%3A%2F%2Fapp.example.test%2F").await;
    assert_refused(&res, 502, "EXTERNAL_SERVICE_ERROR");
    assert_refused(&client.get("/api/v1/app/billing/invoices").await, 502, "EXTERNAL_SERVICE_ERROR");

    // Nothing listening at all.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let app = configured(&format!("http://{closed}")).spawn().await;
    let (client, _) = app.signed_in_client().await;
    let res = checkout(&client, "pro_monthly").await;
    assert_refused(&res, 502, "EXTERNAL_SERVICE_ERROR");
    assert!(!res.text.contains("127.0.0.1"), "no internals in the message: {}", res.text);
}

#[tokio::test]
async fn the_portal_opens_for_the_accounts_customer_and_invoices_list_newest_first() {
    let stand = stand().await;
    let (fresh, _) = stand.app.signed_in_client().await;
    let portal = "/api/v1/app/billing/portal?return_url=https%3A%2F%2Fapp.example.test%2Fbilling";
    assert_refused(&fresh.get(portal).await, 404, "NOT_FOUND");
    let res = fresh.get("/api/v1/app/billing/invoices").await;
    assert_eq!((res.status.as_u16(), res.json()), (200, json!({"items": []})));

    let (client, _, subscription) = subscriber(&stand, "pro_monthly").await;
    let res = client.get(portal).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert!(res.json()["url"].as_str().unwrap().starts_with("https://billing.stripe.com/p/session/"));
    let sent = stand.stripe.requests().into_iter().rfind(|r| r.path == "/v1/billing_portal/sessions").unwrap();
    assert_eq!(sent.field("customer"), subscription["customer"].as_str());
    assert_eq!(sent.field("return_url"), Some("https://app.example.test/billing"));

    let res = client.get("/api/v1/app/billing/invoices?limit=5").await;
    assert_eq!(res.status, 200, "{}", res.text);
    let items = res.json()["items"].as_array().unwrap().clone();
    assert!(!items.is_empty(), "the first invoice");
    assert!(items[0]["id"].as_str().unwrap().starts_with("in_"));
    assert_eq!((items[0]["amount_due"].as_i64(), items[0]["currency"].as_str()), (Some(1200), Some("eur")));
    let listed = stand.stripe.requests().into_iter().rfind(|r| r.path.starts_with("/v1/invoices")).unwrap();
    assert!(listed.path.contains("limit=5") && listed.path.contains("customer=cus_"), "{}", listed.path);
}

#[tokio::test]
async fn cancel_resume_and_change_plan_act_on_the_subscription_at_stripe_and_show_at_once() {
    let stand = stand().await;
    let (fresh, _) = stand.app.signed_in_client().await;
    for path in ["/api/v1/app/billing/cancel", "/api/v1/app/billing/resume"] {
        assert_refused(&fresh.post_json(path, &json!({})).await, 404, "NOT_FOUND");
    }
    let (client, _, subscription) = subscriber(&stand, "pro_monthly").await;
    let sub_path = format!("/v1/subscriptions/{}", subscription["id"].as_str().unwrap());
    assert_eq!(status(&client).await["plan"], "pro");

    let res = client.post_json("/api/v1/app/billing/cancel", &json!({"at_period_end": true})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!((res.json()["plan"].as_str(), res.json()["cancel_at_period_end"].as_bool()), (Some("pro"), Some(true)));
    assert_eq!(stand.stripe.call(Method::GET, &sub_path, &[]).await["cancel_at_period_end"], true);

    let res = client.post_json("/api/v1/app/billing/resume", &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["cancel_at_period_end"], false);
    assert_eq!(stand.stripe.call(Method::GET, &sub_path, &[]).await["cancel_at_period_end"], false);

    let res = client.post_json("/api/v1/app/billing/change-plan", &json!({"price": "enterprise_monthly"})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!((res.json()["plan"].as_str(), res.json()["status"].as_str()), (Some("enterprise"), Some("active")));
    let changed = stand.stripe.requests().into_iter().rfind(|r| r.field("items[0][price]").is_some()).unwrap();
    assert_eq!(changed.field("proration_behavior"), Some("create_prorations"));
    assert_eq!(changed.field("items[0][id]"), subscription["items"]["data"][0]["id"].as_str());
    let at_stripe = stand.stripe.call(Method::GET, &sub_path, &[]).await;
    assert_eq!(at_stripe["items"]["data"][0]["price"]["id"], "price_ent");
    assert_eq!(checkout(&client, "pro_monthly").await.status, 409, "subscribed: change the plan instead");

    let res = client.post_json("/api/v1/app/billing/cancel", &json!({"at_period_end": false})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!((res.json()["status"].as_str(), res.json()["plan"].as_str()), (Some("canceled"), Some("free")));
    assert_eq!(stand.stripe.call(Method::GET, &sub_path, &[]).await["status"], "canceled");
    assert_refused(&client.post_json("/api/v1/app/billing/resume", &json!({})).await, 404, "NOT_FOUND");

    // Each change is audited once, with the account as the actor.
    let changes = omnistack_db::audit::list_entries(
        &stand.app.state.db,
        &omnistack_db::audit::AuditFilter { action: Some("billing.subscription_changed"), ..Default::default() },
        0,
        100,
    )
    .await
    .unwrap()
    .1;
    assert_eq!(changes, 5, "checkout, cancel, resume, change, cancel now");
}

#[tokio::test]
async fn a_revoked_session_or_a_deactivated_account_loses_the_stripe_routes() {
    let stand = stand().await;
    let (client, session) = stand.app.signed_in_client().await;
    assert_eq!(checkout(&client, "pro_monthly").await.status, 201);
    let res = stand
        .app
        .client
        .post_json("/api/v1/public/auth/logout", &json!({"refresh_token": session["refresh_token"]}))
        .await;
    assert_eq!(res.status, 204);
    for (method, path) in ROUTES {
        assert_refused(&call(&client, method, path).await, 401, "AUTHENTICATION_ERROR");
    }

    let admin = account(&stand.app, Role::Admin).await;
    let user = account(&stand.app, Role::User).await;
    assert_eq!(checkout(&user.client, "pro_monthly").await.status, 201);
    let res = admin.client.post_json(&format!("/api/v1/admin/users/{}/deactivate", user.id), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let before = stand.stripe.checkout_sessions().len();
    for (method, path) in ROUTES {
        let res = call(&user.client, method, path).await;
        assert!(matches!(res.status.as_u16(), 401 | 403), "{method} {path}: {}", res.text);
    }
    assert_eq!(stand.stripe.checkout_sessions().len(), before);
}

#[tokio::test]
async fn stripe_refusing_our_request_is_502_and_a_declined_payment_409() {
    let stand = stand().await;
    let (client, _, _) = subscriber(&stand, "pro_monthly").await;
    stand.stripe.set_refusal(Some((402, "card_error")));
    let res = client.post_json("/api/v1/app/billing/change-plan", &json!({"price": "enterprise_monthly"})).await;
    assert_refused(&res, 409, "CONFLICT");
    stand.stripe.set_refusal(Some((400, "invalid_request_error")));
    let res = client.post_json("/api/v1/app/billing/change-plan", &json!({"price": "enterprise_monthly"})).await;
    assert_refused(&res, 502, "EXTERNAL_SERVICE_ERROR");
    assert!(res.json()["error"]["message"].as_str().unwrap().contains("invalid_request_error"), "{}", res.text);
    stand.stripe.set_refusal(None);
    assert_eq!(status(&client).await["plan"], "pro", "nothing changed");
}
