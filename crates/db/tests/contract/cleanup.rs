//! What the clean-up job and the daily report read and delete, on both engines.

use chrono::Duration;
use omnistack_db::action_tokens::{self, Purpose};
use omnistack_db::sessions::{self, SessionOrigin};
use omnistack_db::testing::TestDatabase;
use omnistack_db::users::{self, NewUser};
use omnistack_db::{projects, time};

use super::migrated;

#[tokio::test]
async fn stale_sessions_tokens_and_old_deleted_projects_are_removed_and_nothing_else() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = users::insert_user(&db, &NewUser { email: Some("c@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let now = time::now();
    let origin = SessionOrigin::default();
    sessions::create_session(&db, user.id, "expired", now - Duration::days(3), &origin).await.unwrap();
    sessions::create_session(&db, user.id, "live", now + Duration::days(3), &origin).await.unwrap();
    action_tokens::create_action_token(&db, user.id, Purpose::VerifyEmail, "old", now - Duration::days(3))
        .await
        .unwrap();
    action_tokens::create_action_token(&db, user.id, Purpose::VerifyEmail, "new", now + Duration::hours(1))
        .await
        .unwrap();
    let kept = projects::insert_project(&db, user.id, "kept", None).await.unwrap();
    let gone = projects::insert_project(&db, user.id, "gone", None).await.unwrap();
    omnistack_db::owned::delete_owned::<projects::Project>(&db, user.id, gone.id).await.unwrap();

    let day_ago = now - Duration::days(1);
    assert_eq!(sessions::delete_stale_sessions(&db, day_ago).await.unwrap(), 1);
    assert_eq!(action_tokens::delete_stale_action_tokens(&db, day_ago).await.unwrap(), 1);
    assert!(action_tokens::find_live_token(&db, Purpose::VerifyEmail, "new").await.unwrap().is_some());
    assert_eq!(projects::purge_deleted_projects(&db, day_ago).await.unwrap(), 0, "deleted too recently");
    assert_eq!(projects::purge_deleted_projects(&db, now + Duration::seconds(1)).await.unwrap(), 1);
    let left = projects::list_all_projects(&db, user.id).await.unwrap();
    assert_eq!(left.iter().map(|p| p.id).collect::<Vec<_>>(), [kept.id]);
}

#[tokio::test]
async fn the_daily_report_counts_sign_ups_and_finds_the_super_admins() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let before = time::now() - Duration::seconds(1);
    for (email, role) in [("root@example.com", "super_admin"), ("ops@example.com", "admin"), ("u@example.com", "user")]
    {
        users::insert_user(&db, &NewUser { email: Some(email), role, ..Default::default() }).await.unwrap();
    }
    users::insert_user(&db, &NewUser { email: None, role: "super_admin", ..Default::default() }).await.unwrap();
    assert_eq!(users::count_created_since(&db, before).await.unwrap(), 4);
    assert_eq!(users::count_created_since(&db, time::now() + Duration::seconds(1)).await.unwrap(), 0);
    assert_eq!(users::list_super_admin_emails(&db).await.unwrap(), ["root@example.com"]);
}
