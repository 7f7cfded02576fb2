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
