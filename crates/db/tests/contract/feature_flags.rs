//! Feature flags and the dashboard's account counts, on both engines.

use omnistack_db::feature_flags::{self as flags, FlagFields};
use omnistack_db::testing::TestDatabase;
use omnistack_db::{DbError, users};
use uuid::Uuid;

use super::{migrated, new_user};

#[tokio::test]
async fn flags_are_written_in_a_transaction_with_their_revision_and_read_back() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    assert_eq!(flags::current_revision(&db).await.unwrap(), 0);
    let ids = [Uuid::now_v7(), Uuid::now_v7()];
    let plans = ["pro".to_owned()];
    let fields = FlagFields {
        description: Some("new editor"),
        enabled: true,
        rollout_percentage: Some(30),
        group_id: Some("gr1"),
        user_ids: &ids,
        plans: &plans,
        expires_at: Some(omnistack_db::time::now() + chrono::Duration::days(1)),
    };
    let mut tx = db.begin().await.unwrap();
    assert_eq!(flags::bump_revision(&mut tx).await.unwrap(), 1);
    let created = flags::insert_flag(&mut tx, "new-editor", &fields).await.unwrap();
    assert_eq!(flags::count_flags(&mut tx).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert_eq!(flags::current_revision(&db).await.unwrap(), 1);
    assert_eq!((created.user_ids.0.as_slice(), created.plans.0.as_slice()), (&ids[..], &plans[..]));
    assert_eq!(flags::find_flag(&db, "new-editor").await.unwrap(), Some(created.clone()));
    assert!(matches!(flags::insert_flag(&db, "new-editor", &FlagFields::default()).await, Err(DbError::Conflict(_))));

    // A rolled-back write leaves neither the flag nor the revision.
    let mut tx = db.begin().await.unwrap();
    flags::bump_revision(&mut tx).await.unwrap();
    flags::insert_flag(&mut tx, "abandoned", &FlagFields::default()).await.unwrap();
    drop(tx);
    assert_eq!(flags::current_revision(&db).await.unwrap(), 1);
    assert_eq!(flags::count_flags(&db).await.unwrap(), 1);

    let plain = FlagFields { enabled: false, ..FlagFields::default() };
    let updated = flags::update_flag(&db, "new-editor", &plain).await.unwrap().unwrap();
    assert!(!updated.enabled && updated.user_ids.0.is_empty() && updated.rollout_percentage.is_none());
    assert_eq!(updated.created_at, created.created_at);
    assert!(flags::update_flag(&db, "missing", &plain).await.unwrap().is_none());
    flags::insert_flag(&db, "another", &plain).await.unwrap();
    let keys: Vec<String> = flags::list_flags(&db).await.unwrap().into_iter().map(|f| f.key).collect();
    assert_eq!(keys, ["another", "new-editor"]);
    assert!(flags::delete_flag(&db, "another").await.unwrap());
    assert!(!flags::delete_flag(&db, "another").await.unwrap());
    assert_eq!(flags::bump_revision(&db).await.unwrap(), 2);
}

#[tokio::test]
async fn the_dashboard_counts_accounts_by_state_role_age_and_subscription() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let empty = users::count_for_dashboard(&db, omnistack_db::time::now()).await.unwrap();
    assert_eq!(empty, users::UserCounts::default());
    let mut ids = Vec::new();
    for i in 0..4 {
        let email = format!("u{i}@example.com");
        ids.push(users::insert_user(&db, &new_user(Some(&email))).await.unwrap().id);
    }
    users::set_role(&db, ids[0], "super_admin").await.unwrap();
    users::set_role(&db, ids[1], "admin").await.unwrap();
    users::deactivate_and_erase(&db, ids[2]).await.unwrap();
    users::set_subscription(&db, ids[3], "pro", "active").await.unwrap();

    let now = omnistack_db::time::now();
    let counts = users::count_for_dashboard(&db, now).await.unwrap();
    let expected = users::UserCounts { total: 4, active: 3, inactive: 1, admins: 2, new_7d: 4, new_30d: 4 };
    assert_eq!(counts, expected);
    let later = users::count_for_dashboard(&db, now + chrono::Duration::days(8)).await.unwrap();
    assert_eq!((later.new_7d, later.new_30d), (0, 4));

    let (by_plan, by_status) = users::count_by_subscription(&db).await.unwrap();
    assert_eq!(by_plan, [("free".to_owned(), 3), ("pro".to_owned(), 1)]);
    assert_eq!(by_status, [("inactive".to_owned(), 3), ("active".to_owned(), 1)]);
}
