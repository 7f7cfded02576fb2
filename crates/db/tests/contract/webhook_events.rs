//! Inbound webhook events on both engines: stored once per provider and event id (inside a
//! transaction), processing recorded, listed with filters, replayed, counted.

use omnistack_db::testing::TestDatabase;
use omnistack_db::webhook_events::{self, NewWebhookEvent, WebhookEventFilter};

use super::migrated;

fn event<'a>(provider: &'a str, event_id: &'a str) -> NewWebhookEvent<'a> {
    NewWebhookEvent {
        provider,
        event_id,
        event_type: "user.created",
        headers: r#"{"content-type":"application/json"}"#,
        payload: r#"{"id":"evt_1","note":"\u0000 escaped"}"#,
    }
}

#[tokio::test]
async fn events_are_stored_once_per_provider_and_event_id() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;

    let mut tx = db.begin().await.unwrap();
    webhook_events::insert_event(&mut tx, &event("stripe", "evt_1")).await.unwrap().unwrap();
    drop(tx);
    assert_eq!(webhook_events::list_events(&db, WebhookEventFilter::default(), 0, 10).await.unwrap().1, 0);

    let mut tx = db.begin().await.unwrap();
    let stored = webhook_events::insert_event(&mut tx, &event("stripe", "evt_1")).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!((stored.status.as_str(), stored.attempts, stored.last_error.as_deref()), ("received", 0, None));
    assert_eq!(stored.payload, r#"{"id":"evt_1","note":"\u0000 escaped"}"#);
    assert!(webhook_events::insert_event(&db, &event("stripe", "evt_1")).await.unwrap().is_none(), "redelivery");
    let other = webhook_events::insert_event(&db, &event("clerk", "evt_1")).await.unwrap().unwrap();
    assert_ne!(other.id, stored.id, "another provider's id space");
    assert_eq!(webhook_events::find_event(&db, stored.id).await.unwrap().unwrap(), stored);
    assert!(webhook_events::find_event(&db, uuid::Uuid::now_v7()).await.unwrap().is_none());
}

#[tokio::test]
async fn processing_is_recorded_listed_replayed_and_counted() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let first = webhook_events::insert_event(&db, &event("stripe", "evt_a")).await.unwrap().unwrap();
    let second = webhook_events::insert_event(&db, &event("clerk", "msg_b")).await.unwrap().unwrap();

    assert!(webhook_events::mark_failed(&db, first.id, "database is down").await.unwrap());
    let failed = webhook_events::find_event(&db, first.id).await.unwrap().unwrap();
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 1));
    assert_eq!(failed.last_error.as_deref(), Some("database is down"));
    assert!(webhook_events::mark_processed(&db, first.id).await.unwrap());
    let processed = webhook_events::find_event(&db, first.id).await.unwrap().unwrap();
    assert_eq!((processed.status.as_str(), processed.attempts, processed.last_error), ("processed", 2, None));
    assert!(processed.processed_at.is_some());
    assert!(!webhook_events::mark_processed(&db, uuid::Uuid::now_v7()).await.unwrap());
    assert!(!webhook_events::mark_failed(&db, uuid::Uuid::now_v7(), "x").await.unwrap());

    let (all, total) = webhook_events::list_events(&db, WebhookEventFilter::default(), 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), vec![second.id, first.id], "newest first");
    let filter = WebhookEventFilter { provider: Some("stripe"), status: Some("processed") };
    let (only, total) = webhook_events::list_events(&db, filter, 0, 10).await.unwrap();
    assert_eq!((only.len(), total, only[0].id), (1, 1, first.id));
    let (page, total) = webhook_events::list_events(&db, WebhookEventFilter::default(), 1, 1).await.unwrap();
    assert_eq!((page.len(), total, page[0].id), (1, 2, first.id));
    let filter = WebhookEventFilter { provider: None, status: Some("failed") };
    assert_eq!(webhook_events::list_events(&db, filter, 0, 10).await.unwrap().1, 0);

    let mut tx = db.begin().await.unwrap();
    let replayed = webhook_events::mark_replayed(&mut tx, first.id).await.unwrap().unwrap();
    assert!(webhook_events::mark_replayed(&mut tx, uuid::Uuid::now_v7()).await.unwrap().is_none());
    tx.commit().await.unwrap();
    assert_eq!((replayed.status.as_str(), replayed.attempts), ("received", 2), "the history stays");

    let counts = webhook_events::count_by_status(&db).await.unwrap();
    assert_eq!(
        counts,
        vec![("clerk".to_owned(), "received".to_owned(), 1), ("stripe".to_owned(), "received".to_owned(), 1)]
    );
}
