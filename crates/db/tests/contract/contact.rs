//! Contact-form submissions on both engines: stored in a transaction, unique reference ids,
//! listed newest first by status, status changes.

use omnistack_db::DbError;
use omnistack_db::contact::{self, NewContactSubmission};
use omnistack_db::testing::TestDatabase;

use super::migrated;

fn submission<'a>(reference_id: &'a str, status: &'a str) -> NewContactSubmission<'a> {
    NewContactSubmission {
        reference_id,
        name: "Ada Lovelace",
        email: "ada@example.com",
        subject: Some("Team plan"),
        message: "Hello, I would like a demo.",
        status,
        ip_address: Some("203.0.113.7"),
        user_agent: Some("test-agent"),
        ..NewContactSubmission::default()
    }
}

#[tokio::test]
async fn submissions_are_stored_listed_newest_first_by_status_and_triaged() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;

    let mut tx = db.begin().await.unwrap();
    contact::insert_submission(&mut tx, &submission("CNT-AAAAAAAA", "new")).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(contact::list_submissions(&db, None, 0, 10).await.unwrap().1, 0, "rolled back");

    let mut tx = db.begin().await.unwrap();
    let first = contact::insert_submission(&mut tx, &submission("CNT-AAAAAAAA", "new")).await.unwrap();
    tx.commit().await.unwrap();
    let spam = contact::insert_submission(&db, &submission("CNT-BBBBBBBB", "spam")).await.unwrap();
    let duplicate = contact::insert_submission(&db, &submission("CNT-AAAAAAAA", "new")).await;
    assert!(matches!(duplicate, Err(DbError::Conflict(_))), "{duplicate:?}");

    assert_eq!(first.subject.as_deref(), Some("Team plan"));
    assert_eq!(first.phone, None);
    assert_eq!(contact::find_submission(&db, first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(contact::find_submission(&db, uuid::Uuid::now_v7()).await.unwrap(), None);

    let (all, total) = contact::list_submissions(&db, None, 0, 10).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(all.iter().map(|s| s.id).collect::<Vec<_>>(), [spam.id, first.id], "newest first");
    let (only_spam, spam_total) = contact::list_submissions(&db, Some("spam"), 0, 10).await.unwrap();
    assert_eq!((only_spam.len(), spam_total), (1, 1));
    let (page, paged_total) = contact::list_submissions(&db, None, 1, 1).await.unwrap();
    assert_eq!((page[0].id, paged_total), (first.id, 2));

    let read = contact::set_submission_status(&db, first.id, "read").await.unwrap().unwrap();
    assert_eq!(read.status, "read");
    assert!(read.updated_at >= first.updated_at);
    assert_eq!(contact::set_submission_status(&db, uuid::Uuid::now_v7(), "read").await.unwrap(), None);
    assert!(contact::set_submission_status(&db, first.id, "bogus").await.is_err(), "the CHECK constraint holds");
}
