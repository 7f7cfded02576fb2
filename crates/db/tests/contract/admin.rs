//! The admin console's tables on both engines: the audit chain (append under the head's lock,
//! list, keyset pages, chain walk), impersonation sessions, and admin account queries.

use chrono::Duration;
use omnistack_db::admin_users::{self, AdminChange, UserFilter, UserSort};
use omnistack_db::audit::{self, AuditFilter, AuditRow, ChainHead, GENESIS_HASH};
use omnistack_db::impersonations::{self, NewImpersonation};
use omnistack_db::testing::TestDatabase;
use omnistack_db::users::{self, NewUser};
use omnistack_db::{Db, dialect, time};
use uuid::Uuid;

use super::migrated;

async fn append(db: &Db, action: &str, actor: Option<Uuid>) -> AuditRow {
    let mut tx = db.begin().await.unwrap();
    let head = dialect::lock_audit_chain_head(&mut tx).await.unwrap();
    let row = AuditRow {
        id: Uuid::now_v7(),
        seq: head.seq + 1,
        occurred_at: time::now(),
        actor_id: actor,
        actor_email: None,
        actor_role: None,
        impersonated_user_id: None,
        action: action.into(),
        resource_type: "user".into(),
        resource_id: Some("r1".into()),
        details: "{}".into(),
        ip: None,
        user_agent: None,
        request_id: None,
        prev_hash: head.hash,
        hash: format!("{:064}", head.seq + 1),
    };
    audit::insert_entry(&mut tx, &row).await.unwrap();
    audit::advance_chain_head(&mut tx, &ChainHead { seq: row.seq, hash: row.hash.clone() }).await.unwrap();
    tx.commit().await.unwrap();
    row
}

#[tokio::test]
async fn audit_entries_chain_under_the_head_and_list_newest_first() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    assert_eq!(audit::find_chain_head(&db).await.unwrap(), ChainHead { seq: 0, hash: GENESIS_HASH.into() });
    let actor = Uuid::now_v7();
    let first = append(&db, "auth.login", Some(actor)).await;
    let second = append(&db, "user.updated", None).await;
    let third = append(&db, "auth.login", Some(actor)).await;
    assert_eq!(first.prev_hash, GENESIS_HASH);
    assert_eq!(second.prev_hash, first.hash);
    assert_eq!(audit::find_chain_head(&db).await.unwrap().seq, 3);
    assert_eq!(audit::find_entry(&db, second.id).await.unwrap(), Some(second.clone()));
    assert_eq!(audit::find_entry(&db, Uuid::now_v7()).await.unwrap(), None);

    let (all, total) = audit::list_entries(&db, &AuditFilter::default(), 0, 10).await.unwrap();
    assert_eq!((all.iter().map(|r| r.seq).collect::<Vec<_>>(), total), (vec![3, 2, 1], 3));
    let logins = AuditFilter { action: Some("auth.login"), actor_id: Some(actor), ..AuditFilter::default() };
    let (items, total) = audit::list_entries(&db, &logins, 1, 1).await.unwrap();
    assert_eq!((items[0].id, total), (first.id, 2));
    let window =
        AuditFilter { since: Some(second.occurred_at), until: Some(second.occurred_at), ..AuditFilter::default() };
    assert_eq!(audit::list_entries(&db, &window, 0, 10).await.unwrap().0, vec![second.clone()]);

    let older = audit::list_entries_before(&db, &AuditFilter::default(), Some(third.seq), 10).await.unwrap();
    assert_eq!(older.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 1]);
    let walk = audit::list_chain_after(&db, 1, 10).await.unwrap();
    assert_eq!(walk.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 3]);

    let tampered = "UPDATE audit_log SET action = 'auth.logout' WHERE seq = 1";
    assert_eq!(omnistack_db::testing::execute_unchecked(&db, tampered).await.unwrap(), 1);
    assert_eq!(audit::find_entry(&db, first.id).await.unwrap().unwrap().action, "auth.logout");
}

#[tokio::test]
async fn concurrent_appends_make_one_chain() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { append(&db, "test.concurrent", None).await })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let chain = audit::list_chain_after(&db, 0, 100).await.unwrap();
    assert_eq!(chain.len(), 8);
    for (i, pair) in chain.windows(2).enumerate() {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "at {i}");
        assert_eq!(pair[1].prev_hash, pair[0].hash, "at {i}");
    }
}

fn user<'a>(email: &'a str, name: &'a str, role: &'a str) -> NewUser<'a> {
    NewUser { email: Some(email), full_name: Some(name), role, ..NewUser::default() }
}

#[tokio::test]
async fn admins_search_sort_edit_and_deactivate_accounts() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let ada = users::insert_user(&db, &user("ada@example.com", "Ada Lovelace", "user")).await.unwrap();
    let bob = users::insert_user(&db, &user("bob@example.com", "Bob 100%_sure", "admin")).await.unwrap();
    let root = users::insert_user(&db, &user("root@example.com", "Root", "super_admin")).await.unwrap();
    users::record_login(&db, bob.id, time::now()).await.unwrap();

    let q = |q| UserFilter { q: Some(q), ..UserFilter::default() };
    assert_eq!(admin_users::list_users(&db, &q("LOVE"), UserSort::default(), 0, 10).await.unwrap().1, 1);
    assert_eq!(admin_users::list_users(&db, &q("%_"), UserSort::default(), 0, 10).await.unwrap().0[0].id, bob.id);
    assert_eq!(admin_users::list_users(&db, &q("x%"), UserSort::default(), 0, 10).await.unwrap().1, 0);
    let admins = UserFilter { role: Some("admin"), is_active: Some(true), ..UserFilter::default() };
    assert_eq!(admin_users::list_users(&db, &admins, UserSort::Email, 0, 10).await.unwrap().0[0].id, bob.id);
    let by_email = admin_users::list_users(&db, &UserFilter::default(), UserSort::EmailDesc, 0, 10).await.unwrap().0;
    assert_eq!(by_email.iter().map(|u| u.id).collect::<Vec<_>>(), vec![root.id, bob.id, ada.id]);
    let by_login =
        admin_users::list_users(&db, &UserFilter::default(), UserSort::LastLoginAtDesc, 0, 2).await.unwrap().0;
    assert_eq!(by_login[0].id, bob.id, "never signed in sorts last");
    let oldest = admin_users::list_users(&db, &UserFilter::default(), UserSort::CreatedAt, 0, 1).await.unwrap().0;
    assert_eq!(oldest[0].id, ada.id);
    for sort in [UserSort::Email, UserSort::CreatedAtDesc, UserSort::LastLoginAt] {
        assert_eq!(admin_users::list_users(&db, &UserFilter::default(), sort, 0, 10).await.unwrap().1, 3);
    }

    assert!(admin_users::list_identities(&db, ada.id).await.unwrap().is_empty());
    let expires = chrono::Utc::now() + Duration::days(1);
    omnistack_db::sessions::create_session(&db, ada.id, "h-ada", expires, &Default::default()).await.unwrap();
    assert_eq!(admin_users::count_live_sessions(&db, ada.id).await.unwrap(), 1);

    let mut tx = db.begin().await.unwrap();
    assert_eq!(dialect::lock_active_super_admins(&mut tx).await.unwrap(), vec![root.id]);
    let change = AdminChange { full_name: Some(None), role: Some("admin") };
    let changed = admin_users::update_user(&mut tx, ada.id, &change).await.unwrap().unwrap();
    assert_eq!((changed.full_name, changed.role.as_str()), (None, "admin"));
    let off = admin_users::set_active(&mut tx, ada.id, false).await.unwrap().unwrap();
    assert!(!off.is_active && off.deactivated_at.is_some());
    assert_eq!(admin_users::find_user_in(&mut tx, ada.id).await.unwrap().map(|u| u.is_active), Some(false));
    assert_eq!(admin_users::set_active(&mut tx, Uuid::now_v7(), false).await.unwrap(), None);
    tx.commit().await.unwrap();
    assert_eq!(admin_users::count_live_sessions(&db, ada.id).await.unwrap(), 0, "deactivation revokes sessions");

    let mut tx = db.begin().await.unwrap();
    let on = admin_users::set_active(&mut tx, ada.id, true).await.unwrap().unwrap();
    assert!(on.is_active && on.deactivated_at.is_none());
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn impersonation_sessions_live_until_stopped_or_expired() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let admin = users::insert_user(&db, &user("admin@example.com", "Admin", "admin")).await.unwrap();
    let ada = users::insert_user(&db, &user("ada@example.com", "Ada", "user")).await.unwrap();

    let mut tx = db.begin().await.unwrap();
    let new = NewImpersonation {
        admin_id: admin.id,
        user_id: ada.id,
        reason: "support ticket 42",
        duration: Duration::minutes(15),
    };
    let (id, expires_at) = impersonations::insert_impersonation(&mut tx, &new).await.unwrap();
    let short = NewImpersonation { duration: Duration::milliseconds(1), ..new.clone() };
    let (expired, _) = impersonations::insert_impersonation(&mut tx, &short).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let session = impersonations::find_impersonation(&db, id).await.unwrap().unwrap();
    assert_eq!(
        (session.admin_email.as_deref(), session.user_email.as_deref()),
        (Some("admin@example.com"), Some("ada@example.com"))
    );
    assert_eq!(session.expires_at, expires_at);
    assert!(session.is_live(chrono::Utc::now()));
    let live = impersonations::find_live_impersonator(&db, id, ada.id).await.unwrap();
    assert_eq!(live, Some((admin.id, Some("admin@example.com".into()), "admin".into())));
    assert_eq!(impersonations::find_live_impersonator(&db, id, admin.id).await.unwrap(), None, "another user");
    assert_eq!(impersonations::find_live_impersonator(&db, expired, ada.id).await.unwrap(), None, "expired");
    assert_eq!(impersonations::list_impersonations(&db, Some(true), 0, 10).await.unwrap().1, 1);
    assert_eq!(impersonations::list_impersonations(&db, Some(false), 0, 10).await.unwrap().0[0].id, expired);
    assert_eq!(impersonations::list_impersonations(&db, None, 0, 10).await.unwrap().1, 2);

    let mut tx = db.begin().await.unwrap();
    assert!(impersonations::end_impersonation(&mut tx, id, admin.id).await.unwrap());
    assert!(!impersonations::end_impersonation(&mut tx, id, admin.id).await.unwrap(), "already ended");
    assert!(!impersonations::end_impersonation(&mut tx, expired, admin.id).await.unwrap(), "already expired");
    tx.commit().await.unwrap();
    assert_eq!(impersonations::find_live_impersonator(&db, id, ada.id).await.unwrap(), None);
    let ended = impersonations::find_impersonation(&db, id).await.unwrap().unwrap();
    assert_eq!(ended.ended_by, Some(admin.id));
    assert_eq!(impersonations::list_impersonations(&db, Some(true), 0, 10).await.unwrap().1, 0);
}
