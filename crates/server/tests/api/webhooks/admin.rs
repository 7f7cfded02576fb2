//! The admin webhook log: list with filters, inspect (headers without secrets), replay
//! (audited, processed again), and the attacks on each route.

use omnistack::auth::Role;
use serde_json::json;

use super::*;
use crate::admin::{account, entries};

const LOG: &str = "/api/v1/admin/webhooks";

#[tokio::test]
async fn admins_list_inspect_and_replay_events_and_stored_headers_hold_no_secret() {
    let app = configured().spawn().await;
    let admin = account(&app, Role::Admin).await;
    assert_eq!(post_stripe(&app, stripe_event("evt_log_1", "invoice.paid"), STRIPE_SECRET, now()).await.status, 200);
    let payload =
        json!({"type": "INSERT", "schema": "public", "table": "orders", "record": {"id": 7}, "old_record": null});
    let headers = [
        ("authorization", format!("Bearer {SUPABASE_SECRET}")),
        ("cookie", "session=very-secret-cookie".to_owned()),
        ("x-api-key", "another-secret".to_owned()),
        ("user-agent", "pg_net/0.8".to_owned()),
    ];
    assert_eq!(post(&app, "supabase", &headers, serde_json::to_vec(&payload).unwrap()).await.status, 200);
    wait_for(&app, "evt_log_1", "processed").await;

    let res = admin.client.get(LOG).await;
    assert_eq!(res.status, 200, "{}", res.text);
    let list = res.json();
    assert_eq!((list["total"].as_i64(), list["skip"].as_i64(), list["limit"].as_i64()), (Some(2), Some(0), Some(20)));
    assert_eq!(list["items"][0]["provider"], "supabase", "newest first");
    assert!(list["items"][0].get("payload").is_none(), "a listing carries no payload");
    let res = admin.client.get(&format!("{LOG}?provider=stripe&status=processed")).await;
    let only = res.json();
    assert_eq!((only["total"].as_i64(), only["items"][0]["event_id"].as_str()), (Some(1), Some("evt_log_1")));
    assert_eq!(admin.client.get(&format!("{LOG}?status=failed")).await.json()["total"], 0);
    assert_eq!(admin.client.get(&format!("{LOG}?limit=1&skip=1")).await.json()["items"][0]["provider"], "stripe");

    let supabase_id = list["items"][0]["id"].as_str().unwrap().to_owned();
    let detail = admin.client.get(&format!("{LOG}/{supabase_id}")).await.json();
    assert_eq!(detail["payload"]["table"], "orders");
    assert_eq!(detail["headers"]["user-agent"], "pg_net/0.8");
    assert_eq!(detail["headers"]["content-type"], "application/json");
    let shown = detail["headers"].to_string();
    for secret in [SUPABASE_SECRET, "very-secret-cookie", "another-secret", "authorization", "cookie"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    for event in stored(&app).await {
        assert!(
            !event.headers.contains(SUPABASE_SECRET) && !event.headers.contains("very-secret"),
            "{}",
            event.headers
        );
    }
    let stripe_id = list["items"][1]["id"].as_str().unwrap().to_owned();
    let detail = admin.client.get(&format!("{LOG}/{stripe_id}")).await.json();
    assert!(detail["headers"]["stripe-signature"].as_str().unwrap().starts_with("t="), "the signature, not the secret");
    assert_eq!((detail["attempts"].as_i64(), detail["status"].as_str()), (Some(1), Some("processed")));

    let res = admin.client.post_json(&format!("{LOG}/{stripe_id}/replay"), &json!({})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json()["status"], "received");
    let replayed = wait_for(&app, "evt_log_1", "processed").await;
    assert_eq!(replayed.attempts, 2, "processed again");
    let audit = entries(&admin.client, "webhook.replayed").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0]["resource_id"].as_str(), audit[0]["actor_id"].as_str()),
        (Some(stripe_id.as_str()), Some(admin.id.as_str()))
    );
    assert_eq!(audit[0]["details"]["event_id"], "evt_log_1");
}

#[tokio::test]
async fn the_webhook_log_refuses_outsiders_users_unknown_ids_and_odd_input() {
    let app = configured().spawn().await;
    let user = account(&app, Role::User).await;
    let admin = account(&app, Role::Admin).await;
    assert_eq!(post_stripe(&app, stripe_event("evt_guarded", "invoice.paid"), STRIPE_SECRET, now()).await.status, 200);
    let id = stored(&app).await[0].id.to_string();
    let routes = [LOG.to_owned(), format!("{LOG}/{id}")];
    for path in &routes {
        assert_refused(&app.client.get(path).await, 401, "AUTHENTICATION_ERROR");
        assert_refused(&user.client.get(path).await, 403, "AUTHORIZATION_ERROR");
    }
    let replay = format!("{LOG}/{id}/replay");
    assert_refused(&app.client.post_json(&replay, &json!({})).await, 401, "AUTHENTICATION_ERROR");
    assert_refused(&user.client.post_json(&replay, &json!({})).await, 403, "AUTHORIZATION_ERROR");

    let unknown = uuid::Uuid::now_v7();
    assert_refused(&admin.client.get(&format!("{LOG}/{unknown}")).await, 404, "NOT_FOUND");
    assert_refused(&admin.client.get(&format!("{LOG}/not-a-uuid")).await, 404, "NOT_FOUND");
    assert_refused(&admin.client.post_json(&format!("{LOG}/{unknown}/replay"), &json!({})).await, 404, "NOT_FOUND");
    for query in [
        "provider=paypal",
        "status=lost",
        "limit=0",
        "limit=101",
        "skip=-1",
        "provider=stri%00pe",
        "status=%E2%80%AEfailed",
    ] {
        assert_refused(&admin.client.get(&format!("{LOG}?{query}")).await, 422, "VALIDATION_ERROR");
    }
    assert!(entries(&admin.client, "webhook.replayed").await.is_empty(), "refusals replay nothing");

    // Revoking the admin role revokes the log.
    omnistack::users::set_role_by_email(&app.state.db, &admin.email, Role::User).await.unwrap();
    assert_refused(&admin.client.get(LOG).await, 403, "AUTHORIZATION_ERROR");
}
