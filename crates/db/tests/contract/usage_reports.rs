//! Usage reports on both engines: totals, days, breakdowns and the busiest accounts read the
//! aggregates exactly; the alert feed sees what changed; an alert is claimed once.

use chrono::{Duration, NaiveDate};
use omnistack_db::testing::TestDatabase;
use omnistack_db::usage::{self, UsageDelta};
use omnistack_db::usage_reports::{self as reports, DayValue, DimensionItem, MetricTotal};
use omnistack_db::users::{self, NewUser};

use super::migrated;

fn delta(user_id: uuid::Uuid, metric: &str, day: NaiveDate, value: i64, model: &str) -> UsageDelta {
    UsageDelta {
        user_id,
        metric: metric.into(),
        day,
        value,
        dimensions: vec![("model".into(), model.into()), ("provider".into(), "openai".into())],
    }
}

#[tokio::test]
async fn reports_read_the_daily_aggregates_exactly() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..NewUser::default() })
        .await
        .unwrap();
    let bob = users::insert_user(&db, &NewUser { email: Some("bob@example.com"), role: "user", ..NewUser::default() })
        .await
        .unwrap();
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let second = first + Duration::days(1);
    let before = omnistack_db::time::now();
    let mut tx = db.begin().await.unwrap();
    usage::add(
        &mut tx,
        &[
            delta(ada.id, "ai_tokens", first, 100, "gpt"),
            delta(ada.id, "ai_tokens", second, 30, "claude"),
            delta(ada.id, "ai_tokens", second, 20, "gpt"),
            delta(ada.id, "ai_requests", second, 3, "gpt"),
            delta(bob.id, "ai_tokens", second, 500, "gpt"),
        ],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let totals = reports::metric_totals(&db, ada.id, first, second).await.unwrap();
    assert_eq!(
        totals,
        vec![
            MetricTotal { metric: "ai_requests".into(), value: 3 },
            MetricTotal { metric: "ai_tokens".into(), value: 150 }
        ]
    );
    assert_eq!(reports::metric_totals(&db, ada.id, first, first).await.unwrap()[0].value, 100);
    let year = (first - Duration::days(200), first + Duration::days(165));
    assert_eq!(reports::metric_totals(&db, ada.id, year.0, year.1).await.unwrap(), totals);

    let days = reports::daily_values(&db, ada.id, "ai_tokens", first, second + Duration::days(3)).await.unwrap();
    assert_eq!(days, vec![DayValue { day: first, value: 100 }, DayValue { day: second, value: 50 }]);

    let item =
        |name: &str, item: &str, value, total| DimensionItem { name: name.into(), item: item.into(), value, total };
    let top = reports::top_items(&db, ada.id, "ai_tokens", first, second, 1).await.unwrap();
    assert_eq!(top, vec![item("model", "gpt", 120, 150), item("provider", "openai", 150, 150)]);
    let all = reports::top_items(&db, ada.id, "ai_tokens", first, second, 20).await.unwrap();
    assert_eq!(all[..2], [item("model", "gpt", 120, 150), item("model", "claude", 30, 150)]);
    // Whole months come from the monthly roll-up: the same answer.
    let november = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    assert_eq!(reports::top_items(&db, ada.id, "ai_tokens", first, november, 20).await.unwrap(), all);
    let around = (first - Duration::days(20), november + Duration::days(20));
    assert_eq!(reports::top_items(&db, ada.id, "ai_tokens", around.0, around.1, 20).await.unwrap(), all);
    assert!(
        reports::top_items(&db, ada.id, "ai_tokens", second + Duration::days(1), second + Duration::days(9), 20)
            .await
            .unwrap()
            .is_empty()
    );

    // The months hold the sums of their days.
    let busiest = reports::top_users(&db, "ai_tokens", "2026-11", false, 10).await.unwrap();
    assert_eq!(busiest.iter().map(|u| (u.user_id, u.value)).collect::<Vec<_>>(), vec![(bob.id, 500), (ada.id, 150)]);
    assert_eq!(busiest[1].email.as_deref(), Some("ada@example.com"));
    assert_eq!(reports::top_users(&db, "ai_tokens", "2026-12", true, 1).await.unwrap()[0].user_id, bob.id);
    assert!(reports::top_users(&db, "ai_tokens", "2026-10", false, 10).await.unwrap().is_empty());
    assert!(reports::top_users(&db, "ai_tokens", "2026-12", false, 10).await.unwrap().is_empty());
    assert!(reports::top_users(&db, "ai_tokens", "2026-10", true, 10).await.unwrap().is_empty());

    let changed = reports::changed_since(&db, before - Duration::seconds(1), 100).await.unwrap();
    assert_eq!(changed.len(), 4, "one row per account, metric and day: {changed:?}");
    assert!(changed.iter().any(|c| c.user_id == bob.id && c.metric == "ai_tokens"));
    let last = changed.iter().map(|c| c.updated_at).max().unwrap();
    assert!(reports::changed_since(&db, last, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_alert_is_claimed_once_and_only_when_its_transaction_commits() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..NewUser::default() })
        .await
        .unwrap();
    let now = omnistack_db::time::now();

    let mut tx = db.begin().await.unwrap();
    assert!(reports::claim_alert(&mut tx, ada.id, "ai_requests", "2026-12", 80, now).await.unwrap());
    tx.rollback().await.unwrap();
    assert!(reports::claimed_alerts(&db, ada.id, "ai_requests", "2026-12").await.unwrap().is_empty());

    let mut tx = db.begin().await.unwrap();
    assert!(reports::claim_alert(&mut tx, ada.id, "ai_requests", "2026-12", 80, now).await.unwrap());
    assert!(!reports::claim_alert(&mut tx, ada.id, "ai_requests", "2026-12", 80, now).await.unwrap());
    assert!(reports::claim_alert(&mut tx, ada.id, "ai_requests", "2026-12", 100, now).await.unwrap());
    assert!(reports::claim_alert(&mut tx, ada.id, "ai_requests", "2027-01", 80, now).await.unwrap());
    tx.commit().await.unwrap();

    let mut tx = db.begin().await.unwrap();
    assert!(!reports::claim_alert(&mut tx, ada.id, "ai_requests", "2026-12", 100, now).await.unwrap());
    tx.rollback().await.unwrap();
    assert_eq!(reports::claimed_alerts(&db, ada.id, "ai_requests", "2026-12").await.unwrap(), vec![80, 100]);
}

#[tokio::test]
async fn upgrading_to_the_monthly_roll_ups_backfills_them_from_the_daily_rows() {
    let database = TestDatabase::create().await;
    let db = omnistack_db::Db::connect(database.url(), &omnistack_db::DbOptions::default()).await.unwrap();
    // The schema before migration 0014, with usage already recorded.
    let folder = match db.engine() {
        omnistack_db::Engine::Postgres => "migrations/postgres",
        omnistack_db::Engine::Sqlite => "migrations/sqlite",
    };
    let before_roll_ups = sqlx::migrate::Migrator::new(std::path::Path::new(folder)).await.unwrap();
    omnistack_db::on_pool!(&db, |pool| before_roll_ups.run_to(13, pool).await.unwrap());
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..NewUser::default() })
        .await
        .unwrap();
    let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let now = omnistack_db::time::now();
    for (on, value, model) in [(day(10, 1), 5_i64, "gpt"), (day(10, 31), 7, "claude"), (day(11, 1), 11, "gpt")] {
        omnistack_db::on_pool!(&db, |pool| {
            sqlx::query(
                "INSERT INTO usage_daily (user_id, metric, day, value, updated_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(ada.id)
            .bind("ai_tokens")
            .bind(on)
            .bind(value)
            .bind(now)
            .execute(pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO usage_daily_dimensions (user_id, metric, day, name, item, value)
                 VALUES ($1, $2, $3, 'model', $4, $5)",
            )
            .bind(ada.id)
            .bind("ai_tokens")
            .bind(on)
            .bind(model)
            .bind(value)
            .execute(pool)
            .await
            .unwrap();
        });
    }

    db.migrate().await.unwrap();
    let monthly: Vec<(String, i64)> = omnistack_db::on_pool!(&db, |pool| sqlx::query_as(
        "SELECT period, value FROM usage_monthly WHERE user_id = $1 AND metric = 'ai_tokens' ORDER BY period"
    )
    .bind(ada.id)
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(monthly, [("2026-10".to_owned(), 12), ("2026-11".to_owned(), 11)]);
    let items: Vec<(String, String, i64)> = omnistack_db::on_pool!(&db, |pool| sqlx::query_as(
        "SELECT period, item, value FROM usage_monthly_dimensions WHERE user_id = $1 ORDER BY period, item"
    )
    .bind(ada.id)
    .fetch_all(pool)
    .await
    .unwrap());
    assert_eq!(
        items,
        [
            ("2026-10".to_owned(), "claude".to_owned(), 7),
            ("2026-10".into(), "gpt".into(), 5),
            ("2026-11".into(), "gpt".into(), 11)
        ]
    );
    // The reports read the backfilled months as they read the days.
    let october = reports::metric_totals(&db, ada.id, day(10, 1), day(10, 31)).await.unwrap();
    assert_eq!(october, [MetricTotal { metric: "ai_tokens".into(), value: 12 }]);
}
