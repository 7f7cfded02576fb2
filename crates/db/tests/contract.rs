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
