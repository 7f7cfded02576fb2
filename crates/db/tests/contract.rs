//! Contract tests: every `omnistack_db` function on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use omnistack_db::testing::{TestDatabase, postgres_url};
use omnistack_db::{Db, DbOptions, Engine, dialect};

async fn migrated(database: &TestDatabase) -> Db {
    let db = Db::connect(database.url(), &DbOptions::default()).await.expect("connect");
    db.migrate().await.expect("migrate");
    db
}

#[tokio::test]
async fn migrations_apply_and_are_idempotent() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    db.migrate().await.expect("second run is a no-op");
    db.ping().await.expect("ping");
    let expected = if postgres_url().is_some() { Engine::Postgres } else { Engine::Sqlite };
    assert_eq!(db.engine(), expected);
    let stats = db.stats();
    assert!(stats.size >= 1 && stats.max == 10);
}

#[tokio::test]
async fn both_migration_sets_produce_the_same_tables_and_columns() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&format!("sqlite://{}/schema.db", sqlite_dir.path().display()), &DbOptions::default())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    let sqlite_columns = dialect::list_columns(&sqlite).await.unwrap();
    assert!(sqlite_columns.iter().any(|c| c.table == "users" && c.column == "email"));

    if postgres_url().is_none() {
        eprintln!("TEST_DATABASE_URL is unset: PostgreSQL side of the schema comparison runs in the PostgreSQL pass");
        return;
    }
    let database = TestDatabase::create().await;
    let postgres = migrated(&database).await;
    let postgres_columns = dialect::list_columns(&postgres).await.unwrap();
    assert_eq!(sqlite_columns, postgres_columns);
}

#[tokio::test]
async fn a_closed_pool_fails_its_ping() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    db.close().await;
    assert!(db.ping().await.is_err());
}

fn new_user(email: Option<&str>) -> omnistack_db::users::NewUser<'_> {
    omnistack_db::users::NewUser { email, role: "user", ..Default::default() }
}

#[tokio::test]
async fn concurrent_first_sightings_of_an_identity_provision_one_account() {
    use omnistack_db::identities::provision_user;
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let attempts = (0..8).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { provision_user(&db, "clerk", "user_123", &new_user(Some("race@example.com"))).await })
    });
    let ids: Vec<_> = futures_ids(attempts).await;
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    let user = omnistack_db::identities::find_user_by_identity(&db, "clerk", "user_123").await.unwrap().unwrap();
    assert_eq!(user.email.as_deref(), Some("race@example.com"));
    assert_eq!(user.login_count, 1);
}

async fn futures_ids(
    handles: impl Iterator<Item = tokio::task::JoinHandle<omnistack_db::Result<omnistack_db::users::User>>>,
) -> Vec<uuid::Uuid> {
    let mut ids = Vec::new();
    for handle in handles {
        ids.push(handle.await.unwrap().expect("every attempt succeeds").id);
    }
    ids
}

#[tokio::test]
async fn provisioning_never_takes_an_email_owned_by_another_account() {
    use omnistack_db::identities::provision_user;
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let owner = omnistack_db::users::insert_user(&db, &new_user(Some("owner@example.com"))).await.unwrap();
    let external = provision_user(&db, "oidc", "sub-1", &new_user(Some("owner@example.com"))).await.unwrap();
    assert_ne!(external.id, owner.id);
    assert_eq!(external.email, None);
}

#[tokio::test]
async fn a_refresh_token_rotates_once_even_when_presented_concurrently() {
    use omnistack_db::sessions::{self, Rotation, SessionOrigin};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = omnistack_db::users::insert_user(&db, &new_user(Some("r@example.com"))).await.unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    sessions::create_session(&db, user.id, "h0", expires, &SessionOrigin::default()).await.unwrap();
    let attempts: Vec<_> = (0..4)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move { sessions::rotate_refresh_token(&db, "h0", &format!("h1-{i}")).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for attempt in attempts {
        outcomes.push(attempt.await.unwrap());
    }
    let rotated = outcomes.iter().filter(|o| matches!(o, Rotation::Rotated { .. })).count();
    assert_eq!(rotated, 1, "{outcomes:?}");
    assert!(outcomes.contains(&Rotation::Reused), "the losers count as reuse: {outcomes:?}");
}

#[tokio::test]
async fn projects_are_scoped_to_their_owner_and_soft_deleted() {
    use omnistack_db::projects;
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let a = omnistack_db::users::insert_user(&db, &new_user(Some("a@example.com"))).await.unwrap();
    let b = omnistack_db::users::insert_user(&db, &new_user(Some("b@example.com"))).await.unwrap();
    let p = projects::insert_project(&db, a.id, "Ünïcode 100%", Some("desc")).await.unwrap();
    assert_eq!(projects::find_project(&db, a.id, p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(projects::find_project(&db, b.id, p.id).await.unwrap(), None);
    assert_eq!(projects::list_projects(&db, a.id, Some("100%"), 0, 10).await.unwrap().total, 1);
    assert_eq!(projects::list_projects(&db, a.id, Some("0_%"), 0, 10).await.unwrap().total, 0);
    assert!(!projects::delete_project(&db, b.id, p.id).await.unwrap());
    assert!(projects::delete_project(&db, a.id, p.id).await.unwrap());
    assert_eq!(projects::list_projects(&db, a.id, None, 0, 10).await.unwrap().total, 0);
}
