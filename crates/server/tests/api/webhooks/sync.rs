//! Clerk and Supabase keep the users table in sync: create, update, deactivate (sessions
//! revoked, audited), never reactivated by a late update.

use omnistack_db::admin_users;
use omnistack_db::identities::find_user_by_identity;
use omnistack_db::sessions::{self, SessionOrigin};
use omnistack_db::users::User;
use omnistack_testkit::TestApp;
use serde_json::{Value, json};

use super::*;

fn clerk_user(kind: &str, id: &str, email: &str, verified: bool, first_name: &str) -> Value {
    let status = if verified { "verified" } else { "unverified" };
    json!({"type": kind, "object": "event", "timestamp": 1_654_012_591_835_u64, "data": {
        "id": id, "object": "user", "first_name": first_name, "last_name": "Lovelace",
        "image_url": "https://img.clerk.com/ada.png",
        "primary_email_address_id": "idn_primary",
        "email_addresses": [{"id": "idn_primary", "email_address": email, "verification": {"status": status}}],
    }})
}

async fn linked(app: &TestApp, provider: &str, subject: &str) -> Option<User> {
    find_user_by_identity(&app.state.db, provider, subject).await.unwrap()
}

async fn live_session(app: &TestApp, user: &User) {
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let hash = format!("hash-{}", uuid::Uuid::new_v4());
    sessions::create_session(&app.state.db, user.id, &hash, expires, &SessionOrigin::default()).await.unwrap();
    assert_eq!(admin_users::count_live_sessions(&app.state.db, user.id).await.unwrap(), 1);
}

async fn deactivations(app: &TestApp, user: &User) -> usize {
    let filter = omnistack_db::audit::AuditFilter { action: Some("user.deactivated"), ..Default::default() };
    let (entries, _) = omnistack_db::audit::list_entries(&app.state.db, &filter, 0, 100).await.unwrap();
    entries.iter().filter(|e| e.resource_id.as_deref() == Some(&user.id.to_string())).count()
}

#[tokio::test]
async fn clerk_user_events_create_update_and_deactivate_the_linked_account() {
    let app = configured().spawn().await;
    let created = clerk_user("user.created", "user_2clerk", "Ada@Example.com", true, "Ada");
    assert_eq!(post_clerk(&app, "msg_created", &created).await.status, 200);
    wait_for(&app, "msg_created", "processed").await;
    let user = linked(&app, "clerk", "user_2clerk").await.expect("provisioned");
    assert_eq!((user.email.as_deref(), user.email_verified), (Some("ada@example.com"), true));
    assert_eq!(user.full_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(user.role, "user");
    assert_eq!((user.login_count, user.last_login_at), (0, None), "created by the directory, not a sign-in");

    let updated = clerk_user("user.updated", "user_2clerk", "ada@example.com", true, "Augusta Ada");
    assert_eq!(post_clerk(&app, "msg_updated", &updated).await.status, 200);
    wait_for(&app, "msg_updated", "processed").await;
    let user = linked(&app, "clerk", "user_2clerk").await.unwrap();
    assert_eq!(user.full_name.as_deref(), Some("Augusta Ada Lovelace"));

    live_session(&app, &user).await;
    let deleted = json!({"type": "user.deleted", "object": "event", "data": {"id": "user_2clerk", "object": "user", "deleted": true}});
    assert_eq!(post_clerk(&app, "msg_deleted", &deleted).await.status, 200);
    wait_for(&app, "msg_deleted", "processed").await;
    let user = linked(&app, "clerk", "user_2clerk").await.unwrap();
    assert!(!user.is_active && user.deactivated_at.is_some(), "deleted at Clerk = deactivated here");
    assert_eq!(admin_users::count_live_sessions(&app.state.db, user.id).await.unwrap(), 0, "sessions revoked");
    assert_eq!(deactivations(&app, &user).await, 1, "audited");

    // A late update (delivered out of order) never brings the account back.
    let late = clerk_user("user.updated", "user_2clerk", "ada@example.com", true, "Zombie");
    assert_eq!(post_clerk(&app, "msg_late", &late).await.status, 200);
    wait_for(&app, "msg_late", "processed").await;
    let user = linked(&app, "clerk", "user_2clerk").await.unwrap();
    assert!(!user.is_active);
    assert_eq!(user.full_name.as_deref(), Some("Augusta Ada Lovelace"));
    // A second delete changes nothing and is not audited again.
    assert_eq!(post_clerk(&app, "msg_deleted_again", &deleted).await.status, 200);
    wait_for(&app, "msg_deleted_again", "processed").await;
    assert_eq!(deactivations(&app, &user).await, 1);
}

#[tokio::test]
async fn an_unverified_clerk_email_never_takes_an_existing_accounts_email() {
    let app = configured().spawn().await;
    let (_, session) = app.signed_in_client().await;
    let taken = session["user"]["email"].as_str().unwrap().to_owned();
    let created = clerk_user("user.created", "user_2other", &taken, false, "Mallory");
    assert_eq!(post_clerk(&app, "msg_taken", &created).await.status, 200);
    wait_for(&app, "msg_taken", "processed").await;
    let user = linked(&app, "clerk", "user_2other").await.unwrap();
    assert_eq!(user.email, None, "only a verified email becomes the account's");
    assert_eq!(user.unverified_email.as_deref(), Some(taken.as_str()));
}

fn supabase_change(kind: &str, record: Value, old_record: Value) -> Value {
    json!({"type": kind, "schema": "auth", "table": "users", "record": record, "old_record": old_record})
}

#[tokio::test]
async fn supabase_auth_users_changes_create_update_and_deactivate_the_linked_account() {
    let app = configured().spawn().await;
    let id = "6f1c7a52-1111-4a3b-9c1d-000000000001";
    let row = |email: &str, confirmed: Option<&str>, name: &str| {
        json!({"id": id, "email": email, "email_confirmed_at": confirmed, "deleted_at": null,
            "raw_user_meta_data": {"full_name": name, "avatar_url": "https://cdn.example/g.png"}})
    };
    let insert = supabase_change("INSERT", row("grace@example.com", None, "Grace"), Value::Null);
    assert_eq!(post_supabase(&app, &insert).await.status, 200);
    let user = wait_until(&app, id, |u| u.is_some()).await.unwrap();
    assert_eq!((user.email.as_deref(), user.unverified_email.as_deref()), (None, Some("grace@example.com")));

    let confirm = supabase_change(
        "UPDATE",
        row("grace@example.com", Some("2026-01-01T00:00:00Z"), "Grace Hopper"),
        row("grace@example.com", None, "Grace"),
    );
    assert_eq!(post_supabase(&app, &confirm).await.status, 200);
    let user = wait_until(&app, id, |u| u.is_some_and(|u| u.email_verified)).await.unwrap();
    assert_eq!((user.email.as_deref(), user.full_name.as_deref()), (Some("grace@example.com"), Some("Grace Hopper")));

    live_session(&app, &user).await;
    let delete =
        supabase_change("DELETE", Value::Null, row("grace@example.com", Some("2026-01-01T00:00:00Z"), "Grace Hopper"));
    assert_eq!(post_supabase(&app, &delete).await.status, 200);
    let user = wait_until(&app, id, |u| u.is_some_and(|u| !u.is_active)).await.unwrap();
    assert_eq!(admin_users::count_live_sessions(&app.state.db, user.id).await.unwrap(), 0);
    assert_eq!(deactivations(&app, &user).await, 1);

    // A soft delete (deleted_at set) deactivates too.
    let other = "6f1c7a52-1111-4a3b-9c1d-000000000002";
    let insert = supabase_change("INSERT", json!({"id": other, "email": "soft@example.com"}), Value::Null);
    assert_eq!(post_supabase(&app, &insert).await.status, 200);
    wait_until(&app, other, |u| u.is_some()).await;
    let soft =
        supabase_change("UPDATE", json!({"id": other, "deleted_at": "2026-02-01T00:00:00Z"}), json!({"id": other}));
    assert_eq!(post_supabase(&app, &soft).await.status, 200);
    wait_until(&app, other, |u| u.is_some_and(|u| !u.is_active)).await;
}

/// Waits (at most 10 s) for the Supabase-linked account `subject` to satisfy `done`.
async fn wait_until(app: &TestApp, subject: &str, done: impl Fn(Option<&User>) -> bool) -> Option<User> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let user = linked(app, "supabase", subject).await;
        if done(user.as_ref()) {
            return user;
        }
        assert!(tokio::time::Instant::now() < deadline, "the account never got there: {user:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
