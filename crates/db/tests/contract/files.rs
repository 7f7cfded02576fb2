//! Files on both engines: pending until confirmed once, pages per owner, the stale pending
//! uploads the clean-up removes.

use chrono::Duration;
use omnistack_db::files::{self, NewFile};
use omnistack_db::owned;
use omnistack_db::testing::TestDatabase;
use omnistack_db::users::{self, NewUser};
use uuid::Uuid;

use super::migrated;

fn new_file(key: &str) -> (Uuid, String) {
    (Uuid::now_v7(), key.to_owned())
}

#[tokio::test]
async fn a_file_is_pending_until_confirmed_once_and_only_its_owner_sees_it() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let bob = users::insert_user(&db, &NewUser { email: Some("bob@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let (id, key) = new_file("files/a/1");
    let new = NewFile {
        id,
        owner_id: ada.id,
        filename: "r\u{e9}sum\u{e9} \"final\".pdf",
        content_type: "application/pdf",
        size_bytes: 5_000_000_000,
        storage_key: &key,
    };
    let file = files::insert_file(&db, &new).await.unwrap();
    assert_eq!((file.status.as_str(), file.size_bytes, file.uploaded_at), (files::PENDING, 5_000_000_000, None));
    assert_eq!(file.filename, new.filename);
    assert_eq!(files::find_file(&db, id).await.unwrap(), Some(file.clone()));
    assert!(files::find_file(&db, Uuid::now_v7()).await.unwrap().is_none());

    assert!(files::mark_uploaded(&db, bob.id, id).await.unwrap().is_none(), "not bob's");
    let uploaded = files::mark_uploaded(&db, ada.id, id).await.unwrap().unwrap();
    assert_eq!(uploaded.status, files::UPLOADED);
    assert!(uploaded.uploaded_at.is_some());
    assert!(files::mark_uploaded(&db, ada.id, id).await.unwrap().is_none(), "confirmed once");

    let (second, key2) = new_file("files/a/2");
    files::insert_file(&db, &NewFile { id: second, storage_key: &key2, ..new.clone() }).await.unwrap();
    let all = files::list_files(&db, ada.id, None, 0, 10).await.unwrap();
    assert_eq!((all.total, all.items.len()), (2, 2));
    assert_eq!(all.items[0].id, second, "newest first");
    let pending = files::list_files(&db, ada.id, Some(files::PENDING), 0, 10).await.unwrap();
    assert_eq!((pending.total, pending.items[0].id), (1, second));
    let past = files::list_files(&db, ada.id, None, 5, 10).await.unwrap();
    assert_eq!((past.total, past.items.len()), (2, 0));
    assert_eq!(files::list_files(&db, bob.id, None, 0, 10).await.unwrap().total, 0);
    assert_eq!(files::count_files(&db, ada.id, files::PENDING).await.unwrap(), 1);
    assert_eq!(files::count_files(&db, ada.id, files::UPLOADED).await.unwrap(), 1);
    assert_eq!(files::count_files(&db, bob.id, files::PENDING).await.unwrap(), 0);
    let first = files::list_files_after(&db, ada.id, None, None, 1).await.unwrap();
    assert_eq!(first.iter().map(|f| f.id).collect::<Vec<_>>(), vec![second]);
    let rest = files::list_files_after(&db, ada.id, None, Some(owned::Owned::cursor(&first[0])), 10).await.unwrap();
    assert_eq!(rest.iter().map(|f| f.id).collect::<Vec<_>>(), vec![id]);
    let uploaded = files::list_files_after(&db, ada.id, Some(files::UPLOADED), None, 10).await.unwrap();
    assert_eq!(uploaded.iter().map(|f| f.id).collect::<Vec<_>>(), vec![id]);
    assert!(files::list_files_after(&db, bob.id, None, None, 10).await.unwrap().is_empty());
    assert!(owned::find_owned::<files::File>(&db, bob.id, id).await.unwrap().is_none());
    assert!(owned::find_owned::<files::File>(&db, ada.id, id).await.unwrap().is_some());

    assert!(files::delete_file(&db, bob.id, id).await.unwrap().is_none());
    let deleted = files::delete_file(&db, ada.id, id).await.unwrap().unwrap();
    assert_eq!(deleted.id, id);
    assert!(files::find_file(&db, id).await.unwrap().is_none());
}

#[tokio::test]
async fn stale_pending_files_are_listed_oldest_first_and_deleted_only_while_pending() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let key = format!("files/a/{n}");
        let id = Uuid::now_v7();
        let new = NewFile {
            id,
            owner_id: ada.id,
            filename: "a.txt",
            content_type: "text/plain",
            size_bytes: 1,
            storage_key: &key,
        };
        files::insert_file(&db, &new).await.unwrap();
        ids.push(id);
    }
    files::mark_uploaded(&db, ada.id, ids[1]).await.unwrap().unwrap();
    let now = omnistack_db::time::now() + Duration::seconds(1);
    assert!(files::stale_pending_files(&db, now - Duration::hours(1), 10).await.unwrap().is_empty());
    let stale = files::stale_pending_files(&db, now, 10).await.unwrap();
    assert_eq!(stale.iter().map(|f| f.id).collect::<Vec<_>>(), vec![ids[0], ids[2]]);
    assert_eq!(files::stale_pending_files(&db, now, 1).await.unwrap().len(), 1);
    assert!(files::delete_pending_file(&db, ids[0]).await.unwrap());
    assert!(!files::delete_pending_file(&db, ids[0]).await.unwrap(), "gone");
    assert!(!files::delete_pending_file(&db, ids[1]).await.unwrap(), "confirmed files stay");
    assert!(files::find_file(&db, ids[1]).await.unwrap().is_some());
}
