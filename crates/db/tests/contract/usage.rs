//! Usage aggregates on both engines: deltas add up per account, metric and day (and per
//! dimension), only when their transaction commits; totals cover a range of days exactly.

use chrono::NaiveDate;
use omnistack_db::testing::TestDatabase;
use omnistack_db::usage::{self, UsageDelta};
use omnistack_db::users::{self, NewUser};

use super::migrated;

fn delta(user_id: uuid::Uuid, day: NaiveDate, value: i64) -> UsageDelta {
    UsageDelta {
        user_id,
        metric: "api_requests".into(),
        day,
        value,
        dimensions: vec![("endpoint".into(), "/api/v1/app/users/me".into())],
    }
}

#[tokio::test]
async fn deltas_add_up_per_day_within_their_transaction() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = NewUser { email: Some("meter@example.com"), role: "user", ..NewUser::default() };
    let ada = users::insert_user(&db, &user).await.unwrap();
    let (first, second) =
        (NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());

    let mut tx = db.begin().await.unwrap();
    usage::add(&mut tx, &[delta(ada.id, first, 5)]).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(usage::total(&db, ada.id, "api_requests", first, second).await.unwrap(), 0);

    let mut tx = db.begin().await.unwrap();
    usage::add(&mut tx, &[delta(ada.id, first, 5), delta(ada.id, first, 2), delta(ada.id, second, -1)]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(usage::total(&db, ada.id, "api_requests", first, first).await.unwrap(), 7);
    assert_eq!(usage::total(&db, ada.id, "api_requests", first, second).await.unwrap(), 6);
    assert_eq!(usage::total(&db, ada.id, "ai_tokens", first, second).await.unwrap(), 0);
    assert_eq!(UsageDelta::day_of(omnistack_db::time::now()), omnistack_db::time::now().date_naive());
}

#[tokio::test]
async fn a_flush_batch_applies_once_and_dimensions_add_up_on_their_own() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = NewUser { email: Some("batch@example.com"), role: "user", ..NewUser::default() };
    let ada = users::insert_user(&db, &user).await.unwrap();
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
    let batch = uuid::Uuid::now_v7();
    let total = UsageDelta { dimensions: vec![], ..delta(ada.id, day, 3) };
    let by_endpoint = |item: &str, value| usage::DimensionDelta {
        user_id: ada.id,
        metric: "api_requests".into(),
        day,
        name: "endpoint".into(),
        item: item.into(),
        value,
    };
    for _ in 0..2 {
        let mut tx = db.begin().await.unwrap();
        if usage::claim_flush(&mut tx, batch).await.unwrap() {
            usage::add(&mut tx, std::slice::from_ref(&total)).await.unwrap();
            usage::add_dimensions(&mut tx, &[by_endpoint("/a", 2), by_endpoint("/b", 1)]).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    assert_eq!(usage::total(&db, ada.id, "api_requests", day, day).await.unwrap(), 3);
    let dims = usage::dimension_totals(&db, ada.id, "api_requests", day, day).await.unwrap();
    assert_eq!(dims, vec![("endpoint".into(), "/a".into(), 2), ("endpoint".into(), "/b".into(), 1)]);
    // Usage of an account that no longer exists is dropped, not a failed batch.
    let mut tx = db.begin().await.unwrap();
    usage::add(&mut tx, &[delta(uuid::Uuid::now_v7(), day, 5)]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(usage::prune_flushes(&db, omnistack_db::time::now() + chrono::Duration::days(1)).await.unwrap(), 1);
}

#[tokio::test]
async fn ingested_events_and_meter_events_are_kept_once_by_id() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = NewUser { email: Some("ingest@example.com"), role: "user", ..NewUser::default() };
    let ada = users::insert_user(&db, &user).await.unwrap();
    let now = omnistack_db::time::now();
    let event = usage::NewUsageEvent {
        id: "evt-1",
        user_id: ada.id,
        metric: "ai_tokens",
        value: -4,
        occurred_at: now,
        dimensions: "{}",
    };
    let meter = usage::NewMeterEvent {
        identifier: "evt_abc".into(),
        user_id: ada.id,
        metric: "ai_tokens".into(),
        event_name: "tokens".into(),
        stripe_customer_id: "cus_1".into(),
        value: -4,
        occurred_at: now,
    };
    let mut tx = db.begin().await.unwrap();
    assert_eq!(usage::find_account_customer(&mut tx, ada.id).await.unwrap(), Some(None));
    assert_eq!(usage::find_account_customer(&mut tx, uuid::Uuid::now_v7()).await.unwrap(), None);
    assert!(usage::insert_event(&mut tx, &event).await.unwrap());
    assert!(!usage::insert_event(&mut tx, &event).await.unwrap());
    assert!(usage::queue_meter_event(&mut tx, &meter).await.unwrap());
    assert!(!usage::queue_meter_event(&mut tx, &meter).await.unwrap());
    tx.commit().await.unwrap();

    let sync = usage::meter_sync(&db).await.unwrap();
    assert_eq!((sync.pending, sync.sent, sync.failed), (1, 0, 0));
    assert!(sync.oldest_pending_at.is_some());
    assert!(usage::mark_meter_event_failed(&db, "evt_abc", "HTTP 500").await.unwrap());
    let failed = usage::find_meter_event(&db, "evt_abc").await.unwrap().unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.attempts, failed.last_error.as_deref()),
        ("failed", 1, Some("HTTP 500"))
    );
    assert!(usage::mark_meter_event_sent(&db, "evt_abc").await.unwrap());
    assert!(!usage::mark_meter_event_sent(&db, "evt_abc").await.unwrap());
    assert!(!usage::mark_meter_event_failed(&db, "evt_abc", "late").await.unwrap());
    let sync = usage::meter_sync(&db).await.unwrap();
    assert_eq!((sync.pending, sync.sent, sync.failed, sync.oldest_pending_at), (0, 1, 0, None));
    assert!(usage::find_meter_event(&db, "missing").await.unwrap().is_none());
}
