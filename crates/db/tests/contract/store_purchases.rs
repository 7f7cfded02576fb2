//! In-app purchases on both engines: one account per purchase, newest signed state only.

use chrono::{Duration, Utc};
use omnistack_db::store_purchases::{self, NewStorePurchase};
use omnistack_db::testing::TestDatabase;
use omnistack_db::users::{self, NewUser};

use super::migrated;

fn purchase<'a>(store: &'a str, id: &'a str, user_id: uuid::Uuid) -> NewStorePurchase<'a> {
    NewStorePurchase { store, purchase_id: id, user_id, product_id: "com.example.pro" }
}

#[tokio::test]
async fn a_purchase_belongs_to_the_account_that_linked_it_first() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let bob = users::insert_user(&db, &NewUser { email: Some("bob@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();

    let mut tx = db.begin().await.unwrap();
    let (first, created) = store_purchases::link_purchase(&mut tx, &purchase("apple", "1000", ada.id)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(created);
    assert_eq!((first.user_id, first.last_signed_at), (ada.id, None));

    let mut tx = db.begin().await.unwrap();
    let (again, created) = store_purchases::link_purchase(&mut tx, &purchase("apple", "1000", bob.id)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(!created);
    assert_eq!(again, first, "the first account keeps it");

    let mut tx = db.begin().await.unwrap();
    let (google, created) = store_purchases::link_purchase(&mut tx, &purchase("google", "1000", bob.id)).await.unwrap();
    tx.commit().await.unwrap();
    assert!(created && google.user_id == bob.id, "each store has its own ids");

    assert_eq!(store_purchases::find_purchase(&db, "apple", "1000").await.unwrap(), Some(first));
    assert!(store_purchases::find_purchase(&db, "apple", "2000").await.unwrap().is_none());
}

#[tokio::test]
async fn only_a_newer_signed_state_advances_a_purchase() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &NewUser { email: Some("ada@example.com"), role: "user", ..Default::default() })
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    let (row, _) = store_purchases::link_purchase(&mut tx, &purchase("apple", "1000", ada.id)).await.unwrap();
    tx.commit().await.unwrap();

    // Milliseconds, as the stores sign them; a whole second and a fraction compare right.
    let base = chrono::DateTime::from_timestamp_millis(Utc::now().timestamp() * 1000).unwrap();
    let later = base + Duration::milliseconds(5);
    let mut tx = db.begin().await.unwrap();
    assert!(store_purchases::advance_signed(&mut tx, row.id, base, "com.example.pro").await.unwrap());
    assert!(!store_purchases::advance_signed(&mut tx, row.id, base, "com.example.pro").await.unwrap(), "a repeat");
    assert!(store_purchases::advance_signed(&mut tx, row.id, later, "com.example.ent").await.unwrap());
    assert!(!store_purchases::advance_signed(&mut tx, row.id, base, "com.example.pro").await.unwrap(), "older");
    assert!(
        !store_purchases::advance_signed(&mut tx, row.id, later - Duration::microseconds(500), "x").await.unwrap(),
        "older by a fraction"
    );
    tx.commit().await.unwrap();
    let stored = store_purchases::find_purchase(&db, "apple", "1000").await.unwrap().unwrap();
    assert_eq!((stored.last_signed_at, stored.product_id.as_str()), (Some(later), "com.example.ent"));
    let mut tx = db.begin().await.unwrap();
    assert!(!store_purchases::advance_signed(&mut tx, uuid::Uuid::now_v7(), later, "x").await.unwrap());
    tx.commit().await.unwrap();
}
