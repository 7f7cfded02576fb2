//! Contract tests: every `omnistack_db` function on SQLite, and on PostgreSQL when
//! `TEST_DATABASE_URL` is set.

use omnistack_db::testing::{TestDatabase, postgres_url};
use omnistack_db::{Db, DbOptions, Engine, dialect};

#[path = "contract/admin.rs"]
mod admin;
#[path = "contract/cleanup.rs"]
mod cleanup;
#[path = "contract/contact.rs"]
mod contact;
#[path = "contract/feature_flags.rs"]
mod feature_flags;
#[path = "contract/files.rs"]
mod files;
#[path = "contract/jobs.rs"]
mod jobs;
#[path = "contract/store_purchases.rs"]
mod store_purchases;
#[path = "contract/usage.rs"]
mod usage;
#[path = "contract/usage_reports.rs"]
mod usage_reports;
#[path = "contract/webhook_events.rs"]
mod webhook_events;

pub(crate) async fn migrated(database: &TestDatabase) -> Db {
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

/// The schema both migration sets must produce: `table.column NULL|NOT NULL`, one per line.
/// After adding a migration, run the contract tests with `OMNISTACK_WRITE_SCHEMA=1` to rewrite
/// it, and review the diff.
const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.txt");

fn schema_text(columns: &[dialect::Column]) -> String {
    let mut lines: Vec<String> = columns
        .iter()
        .map(|c| format!("{}.{} {}", c.table, c.column, if c.nullable { "NULL" } else { "NOT NULL" }))
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

/// Fails unless `db`'s migrated schema is the one in `schema.txt`.
async fn assert_schema_is_declared(db: &Db) {
    let actual = schema_text(&dialect::list_columns(db).await.unwrap());
    if std::env::var_os("OMNISTACK_WRITE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_FILE, &actual).unwrap();
    }
    let declared = std::fs::read_to_string(SCHEMA_FILE).unwrap();
    assert!(
        actual == declared,
        "the {:?} migrations do not produce crates/db/schema.txt (OMNISTACK_WRITE_SCHEMA=1 rewrites it):\n{actual}",
        db.engine()
    );
}

#[test]
fn both_migration_sets_have_the_same_files() {
    let names = |engine: &str| {
        let dir = format!("{}/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    assert_eq!(names("sqlite"), names("postgres"), "every migration exists for both engines, with the same name");
}

#[tokio::test]
async fn both_migration_sets_produce_the_declared_tables_and_columns() {
    let sqlite_dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&format!("sqlite://{}/schema.db", sqlite_dir.path().display()), &DbOptions::default())
        .await
        .unwrap();
    sqlite.migrate().await.unwrap();
    assert_schema_is_declared(&sqlite).await;
    if postgres_url().is_some() {
        let database = TestDatabase::create().await;
        assert_schema_is_declared(&migrated(&database).await).await;
    }
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
        tokio::spawn(async move {
            provision_user(&db, "clerk", "user_123", &new_user(Some("race@example.com")), true).await
        })
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
    let external = provision_user(&db, "oidc", "sub-1", &new_user(Some("owner@example.com")), true).await.unwrap();
    assert_ne!(external.id, owner.id);
    assert_eq!(external.email, None);
    assert_eq!(external.unverified_email.as_deref(), Some("owner@example.com"), "kept for display only");
    assert!(!external.email_verified);
}

#[tokio::test]
async fn unverified_emails_are_not_unique_and_a_verified_one_replaces_them() {
    use omnistack_db::identities::provision_user;
    use omnistack_db::users::{self, NewUser, ProfileChange};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let unverified = NewUser { unverified_email: Some("victim@example.com"), role: "user", ..Default::default() };
    let first = provision_user(&db, "oidc", "attacker-1", &unverified, true).await.unwrap();
    let second = provision_user(&db, "clerk", "attacker-2", &unverified, false).await.unwrap();
    assert_eq!((first.email.as_deref(), first.shown_email()), (None, Some("victim@example.com")));
    assert!(!first.shown_email_verified());
    assert_eq!(second.unverified_email.as_deref(), Some("victim@example.com"));
    assert_eq!(users::find_user_by_email(&db, "victim@example.com").await.unwrap(), None);
    let owner = users::insert_user(&db, &new_user(Some("victim@example.com"))).await.unwrap();
    assert_ne!(owner.id, first.id);

    let promote = ProfileChange { email: Some(Some("mine@example.com")), ..ProfileChange::default() };
    let promoted = users::update_profile(&db, first.id, &promote).await.unwrap().unwrap();
    assert_eq!((promoted.email.as_deref(), promoted.email_verified), (Some("mine@example.com"), true));
    assert_eq!(promoted.unverified_email, None);
    let taken = ProfileChange { email: Some(Some("victim@example.com")), ..ProfileChange::default() };
    assert!(matches!(users::update_profile(&db, second.id, &taken).await, Err(omnistack_db::DbError::Conflict(_))));
    let asserted = ProfileChange { unverified_email: Some(Some("other@example.com")), ..ProfileChange::default() };
    let shown = users::update_profile(&db, promoted.id, &asserted).await.unwrap().unwrap();
    assert_eq!(
        (shown.shown_email(), shown.unverified_email.as_deref()),
        (Some("mine@example.com"), Some("other@example.com"))
    );
    users::deactivate_and_erase(&db, shown.id).await.unwrap();
    let erased = users::find_user(&db, shown.id).await.unwrap().unwrap();
    assert_eq!((erased.email, erased.unverified_email), (None, None));
}

#[tokio::test]
async fn a_password_reset_uses_its_token_and_revokes_every_other_reset_token() {
    use omnistack_db::action_tokens::{self, Purpose};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = omnistack_db::users::insert_user(&db, &new_user(Some("reset@example.com"))).await.unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::hours(1);
    for hash in ["reset-a", "reset-b"] {
        action_tokens::create_action_token(&db, user.id, Purpose::ResetPassword, hash, expires).await.unwrap();
    }
    action_tokens::create_action_token(&db, user.id, Purpose::VerifyEmail, "verify-a", expires).await.unwrap();
    assert_eq!(action_tokens::find_live_token(&db, Purpose::ResetPassword, "reset-a").await.unwrap(), Some(user.id));
    assert_eq!(action_tokens::find_live_token(&db, Purpose::VerifyEmail, "reset-a").await.unwrap(), None);
    assert_eq!(action_tokens::find_live_token(&db, Purpose::ResetPassword, "bogus").await.unwrap(), None);

    let reset = |hash: &'static str, password: &'static str| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let done = action_tokens::reset_password(&mut tx, hash, password).await.unwrap();
            tx.commit().await.unwrap();
            done
        }
    };
    assert_eq!(reset("reset-a", "new-hash").await, Some(user.id));
    assert_eq!(action_tokens::find_live_token(&db, Purpose::ResetPassword, "reset-b").await.unwrap(), None);
    assert_eq!(reset("reset-b", "other-hash").await, None);
    let stored = omnistack_db::users::find_user(&db, user.id).await.unwrap().unwrap();
    assert_eq!(stored.hashed_password.as_deref(), Some("new-hash"));
    assert_eq!(action_tokens::verify_email(&db, "verify-a").await.unwrap(), Some(user.id), "other purposes stay");
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
            tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let outcome = sessions::rotate_refresh_token(&mut tx, "h0", &format!("h1-{i}")).await.unwrap();
                if outcome != Rotation::Invalid {
                    tx.commit().await.unwrap();
                }
                outcome
            })
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
    use omnistack_db::owned::{delete_owned, find_owned};
    use omnistack_db::projects::{self, Project};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let a = omnistack_db::users::insert_user(&db, &new_user(Some("a@example.com"))).await.unwrap();
    let b = omnistack_db::users::insert_user(&db, &new_user(Some("b@example.com"))).await.unwrap();
    let p = projects::insert_project(&db, a.id, "Ünïcode 100%", Some("desc")).await.unwrap();
    assert_eq!(find_owned::<Project>(&db, a.id, p.id).await.unwrap(), Some(p.clone()));
    assert_eq!(find_owned::<Project>(&db, b.id, p.id).await.unwrap(), None);
    assert_eq!(projects::list_projects(&db, a.id, Some("100%"), 0, 10).await.unwrap().total, 1);
    assert_eq!(projects::list_projects(&db, a.id, Some("0_%"), 0, 10).await.unwrap().total, 0);
    assert!(!delete_owned::<Project>(&db, b.id, p.id).await.unwrap());
    assert!(delete_owned::<Project>(&db, a.id, p.id).await.unwrap());
    assert!(!delete_owned::<Project>(&db, a.id, p.id).await.unwrap(), "already deleted");
    assert_eq!(find_owned::<Project>(&db, a.id, p.id).await.unwrap(), None);
    assert_eq!(projects::list_projects(&db, a.id, None, 0, 10).await.unwrap().total, 0);
    let deleted_at: Option<chrono::DateTime<chrono::Utc>> =
        omnistack_db::on_pool!(&db, |pool| sqlx::query_scalar("SELECT deleted_at FROM projects WHERE id = $1")
            .bind(p.id)
            .fetch_one(pool)
            .await
            .unwrap());
    assert!(deleted_at.is_some(), "a soft delete keeps the row");
}

#[tokio::test]
async fn account_counts_for_metrics() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let a = omnistack_db::users::insert_user(&db, &new_user(Some("a@example.com"))).await.unwrap();
    omnistack_db::users::insert_user(&db, &new_user(Some("b@example.com"))).await.unwrap();
    omnistack_db::users::deactivate_and_erase(&db, a.id).await.unwrap();
    assert_eq!(omnistack_db::users::count_by_status(&db).await.unwrap(), (1, 1));
    let now = chrono::Utc::now();
    omnistack_db::users::record_login(&db, a.id, now).await.unwrap();
    assert_eq!(omnistack_db::users::count_seen_since(&db, now - chrono::Duration::hours(1)).await.unwrap(), 0);
}

#[tokio::test]
async fn keyset_pages_visit_every_live_project_once_newest_first_even_on_equal_times() {
    use omnistack_db::owned::{Owned, delete_owned, list_owned_after};
    use omnistack_db::projects::{self, Project};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let owner = omnistack_db::users::insert_user(&db, &new_user(Some("keyset@example.com"))).await.unwrap();
    let other = omnistack_db::users::insert_user(&db, &new_user(Some("other@example.com"))).await.unwrap();
    projects::insert_project(&db, other.id, "not mine", None).await.unwrap();
    for i in 0..26 {
        let name = if i % 3 == 0 { format!("tie {i:02}") } else { format!("project {i:02}") };
        projects::insert_project(&db, owner.id, &name, None).await.unwrap();
    }
    // Equal creation times across page boundaries: the id must break the tie.
    let tie = omnistack_db::time::now();
    omnistack_db::on_pool!(&db, |pool| sqlx::query("UPDATE projects SET created_at = $1 WHERE name LIKE 'tie%'")
        .bind(tie)
        .execute(pool)
        .await
        .unwrap()
        .rows_affected());
    let doomed = projects::list_projects(&db, owner.id, Some("project 25"), 0, 1).await.unwrap().items;
    assert!(delete_owned::<Project>(&db, owner.id, doomed[0].id).await.unwrap());

    let expected = projects::list_projects(&db, owner.id, None, 0, 100).await.unwrap().items;
    assert_eq!(expected.len(), 25);
    let (mut seen, mut sizes, mut after) = (Vec::new(), Vec::new(), None);
    loop {
        let page = list_owned_after::<Project>(&db, owner.id, after, 10).await.unwrap();
        let searched = projects::list_projects_after(&db, owner.id, None, after, 10).await.unwrap();
        assert_eq!(page, searched, "no search is the shared page");
        sizes.push(page.len());
        after = page.last().map(Owned::cursor);
        seen.extend(page);
        if sizes.last() < Some(&10) {
            break;
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(seen, expected, "same order as the offset listing, nothing skipped or repeated");

    let ties = projects::list_projects_after(&db, owner.id, Some("TIE"), None, 4).await.unwrap();
    let rest =
        projects::list_projects_after(&db, owner.id, Some("tie"), ties.last().map(Owned::cursor), 10).await.unwrap();
    assert_eq!((ties.len(), rest.len()), (4, 5), "search narrows keyset pages too");
    assert!(ties.iter().chain(&rest).all(|p| p.created_at == tie));
}

#[tokio::test]
async fn a_subscription_is_set_on_the_account() {
    use omnistack_db::users;
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = users::insert_user(&db, &new_user(Some("billing@example.com"))).await.unwrap();
    assert_eq!((user.subscription_plan.as_str(), user.subscription_status.as_str()), ("free", "inactive"));
    assert!(users::set_subscription(&db, user.id, "pro", "trialing").await.unwrap());
    let user = users::find_user(&db, user.id).await.unwrap().unwrap();
    assert_eq!((user.subscription_plan.as_str(), user.subscription_status.as_str()), ("pro", "trialing"));
    assert!(!users::set_subscription(&db, uuid::Uuid::now_v7(), "pro", "active").await.unwrap());
}

#[tokio::test]
async fn the_revocation_feed_reports_role_changes_deactivations_and_revoked_sessions_since_a_moment() {
    use omnistack_db::revocations::changes_since;
    use omnistack_db::sessions::{self, SessionOrigin};
    use omnistack_db::users;
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let demoted = users::insert_user(&db, &new_user(Some("feed-a@example.com"))).await.unwrap();
    let erased = users::insert_user(&db, &new_user(Some("feed-b@example.com"))).await.unwrap();
    let expires = chrono::Utc::now() + chrono::Duration::days(1);
    let session =
        sessions::create_session(&db, demoted.id, "feed-h", expires, &SessionOrigin::default()).await.unwrap();
    let since = omnistack_db::time::now();
    assert_eq!(changes_since(&db, since).await.unwrap(), Default::default(), "nothing changed yet");

    users::set_role(&db, demoted.id, "admin").await.unwrap();
    users::deactivate_and_erase(&db, erased.id).await.unwrap();
    sessions::revoke_session_by_token(&db, "feed-h").await.unwrap();
    let changes = changes_since(&db, since).await.unwrap();
    let mut accounts: Vec<(uuid::Uuid, &str, bool)> =
        changes.accounts.iter().map(|a| (a.user_id, a.role.as_str(), a.is_active)).collect();
    accounts.sort();
    let mut expected = vec![(demoted.id, "admin", true), (erased.id, "user", false)];
    expected.sort();
    assert_eq!(accounts, expected);
    assert_eq!(
        changes.sessions,
        [omnistack_db::revocations::RevokedSession { session_id: session, user_id: demoted.id }]
    );
    let later = omnistack_db::time::now() + chrono::Duration::seconds(1);
    assert_eq!(changes_since(&db, later).await.unwrap(), Default::default());
}

/// The same table read as a resource whose delete removes the row.
#[derive(Debug, PartialEq, sqlx::FromRow)]
struct HardDeleted {
    id: uuid::Uuid,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl omnistack_db::owned::Owned for HardDeleted {
    const TABLE: &'static str = "projects";
    const COLUMNS: &'static str = "id, created_at";

    fn cursor(&self) -> omnistack_db::owned::Cursor {
        omnistack_db::owned::Cursor { created_at: self.created_at, id: self.id }
    }
}

#[tokio::test]
async fn an_owned_resource_without_soft_delete_loses_its_row_on_delete() {
    use omnistack_db::owned::{delete_owned, find_owned, list_owned_after};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let owner = omnistack_db::users::insert_user(&db, &new_user(Some("hard@example.com"))).await.unwrap();
    let other = omnistack_db::users::insert_user(&db, &new_user(Some("other@example.com"))).await.unwrap();
    let p = omnistack_db::projects::insert_project(&db, owner.id, "gone", None).await.unwrap();
    assert!(!delete_owned::<HardDeleted>(&db, other.id, p.id).await.unwrap(), "another owner's row");
    assert!(find_owned::<HardDeleted>(&db, owner.id, p.id).await.unwrap().is_some());
    assert!(delete_owned::<HardDeleted>(&db, owner.id, p.id).await.unwrap());
    assert_eq!(find_owned::<HardDeleted>(&db, owner.id, p.id).await.unwrap(), None);
    assert!(list_owned_after::<HardDeleted>(&db, owner.id, None, 10).await.unwrap().is_empty());
    let rows: i64 = omnistack_db::on_pool!(&db, |pool| sqlx::query_scalar("SELECT COUNT(*) FROM projects")
        .fetch_one(pool)
        .await
        .unwrap());
    assert_eq!(rows, 0, "the row is gone, not marked");
}

#[tokio::test]
async fn a_subscription_is_read_locked_and_written_on_the_account() {
    use omnistack_db::billing::{SubscriptionRow, find_subscription, write_subscription};
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = omnistack_db::users::insert_user(&db, &new_user(Some("sub@example.com"))).await.unwrap();
    let none = find_subscription(&db, user.id).await.unwrap().unwrap();
    assert_eq!((none.plan.as_str(), none.status.as_str(), none.store.as_deref()), ("free", "inactive", None));
    let next = SubscriptionRow {
        plan: "pro".into(),
        status: "active".into(),
        store: Some("apple".into()),
        current_period_end: Some(omnistack_db::time::now()),
        cancel_at_period_end: true,
    };
    let mut tx = db.begin().await.unwrap();
    assert_eq!(dialect::lock_subscription(&mut tx, user.id).await.unwrap(), Some(none));
    assert!(write_subscription(&mut tx, user.id, &next).await.unwrap());
    assert!(!write_subscription(&mut tx, uuid::Uuid::now_v7(), &next).await.unwrap());
    tx.commit().await.unwrap();
    let mut undone = db.begin().await.unwrap();
    let gone = SubscriptionRow { plan: "free".into(), ..next.clone() };
    assert!(write_subscription(&mut undone, user.id, &gone).await.unwrap());
    undone.rollback().await.unwrap();
    assert_eq!(find_subscription(&db, user.id).await.unwrap(), Some(next));
    assert_eq!(find_subscription(&db, uuid::Uuid::now_v7()).await.unwrap(), None);
}

#[tokio::test]
async fn an_account_gets_one_stripe_customer_ever_and_is_found_by_it() {
    use omnistack_db::billing::{
        clear_stripe_customer, find_stripe_customer, find_user_by_stripe_customer, set_stripe_customer,
    };
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let user = omnistack_db::users::insert_user(&db, &new_user(Some("cus@example.com"))).await.unwrap();
    let other = omnistack_db::users::insert_user(&db, &new_user(Some("cus2@example.com"))).await.unwrap();
    assert_eq!(find_stripe_customer(&db, user.id).await.unwrap(), None);
    assert!(set_stripe_customer(&db, user.id, "cus_first").await.unwrap());
    assert!(!set_stripe_customer(&db, user.id, "cus_second").await.unwrap(), "the first customer stays");
    assert_eq!(find_stripe_customer(&db, user.id).await.unwrap().as_deref(), Some("cus_first"));
    assert!(matches!(set_stripe_customer(&db, other.id, "cus_first").await, Err(omnistack_db::DbError::Conflict(_))));
    assert!(!set_stripe_customer(&db, uuid::Uuid::now_v7(), "cus_x").await.unwrap());
    assert_eq!(find_user_by_stripe_customer(&db, "cus_first").await.unwrap(), Some(user.id));
    assert_eq!(find_user_by_stripe_customer(&db, "cus_nobody").await.unwrap(), None);
    assert!(clear_stripe_customer(&db, "cus_first").await.unwrap());
    assert!(!clear_stripe_customer(&db, "cus_first").await.unwrap());
    assert_eq!(find_stripe_customer(&db, user.id).await.unwrap(), None);
}
