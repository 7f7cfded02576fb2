//! The job queue on both engines: transactions, unique keys, claims, leases and fencing.

use chrono::Duration;
use omnistack_db::jobs::{self, JobFilter, JobState, NewJob};
use omnistack_db::testing::TestDatabase;
use omnistack_db::{Db, dialect, time};
use serde_json::json;

use super::migrated;

fn job<'a>(kind: &'a str, payload: &'a serde_json::Value, key: Option<&'a str>) -> NewJob<'a> {
    NewJob {
        kind,
        payload,
        max_attempts: 3,
        run_at: time::now(),
        unique_key: key,
        user_id: None,
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
    }
}

async fn claim_one(db: &Db) -> jobs::Job {
    let mut claimed = dialect::claim_jobs(db, Duration::seconds(60), 1).await.unwrap();
    assert_eq!(claimed.len(), 1, "one runnable job");
    claimed.remove(0)
}

#[tokio::test]
async fn a_job_enqueued_in_a_transaction_exists_only_if_it_commits() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({"to": "a@example.com"});
    let mut tx = db.begin().await.unwrap();
    jobs::enqueue(&mut tx, &job("email", &payload, None)).await.unwrap().unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(jobs::list_jobs(&db, JobFilter::default(), 0, 10).await.unwrap().1, 0, "rolled back");
    let mut tx = db.begin().await.unwrap();
    let enqueued = jobs::enqueue(&mut tx, &job("email", &payload, None)).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let stored = jobs::find_job(&db, enqueued.id).await.unwrap().unwrap();
    assert_eq!(stored, enqueued);
    assert_eq!(stored.state(), JobState::Queued);
    assert_eq!(stored.payload.0, payload);
}

#[tokio::test]
async fn a_unique_key_is_enqueued_once() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    let first = jobs::enqueue(&db, &job("cron", &payload, Some("cron:cleanup:1"))).await.unwrap().unwrap();
    assert!(jobs::enqueue(&db, &job("cron", &payload, Some("cron:cleanup:1"))).await.unwrap().is_none());
    assert_eq!(jobs::find_job_by_key(&db, "cron:cleanup:1").await.unwrap().unwrap().id, first.id);
    assert!(jobs::find_job_by_key(&db, "cron:cleanup:9").await.unwrap().is_none());
    assert!(jobs::enqueue(&db, &job("cron", &payload, Some("cron:cleanup:2"))).await.unwrap().is_some());
    assert!(jobs::enqueue(&db, &job("cron", &payload, None)).await.unwrap().is_some());
    assert!(jobs::enqueue(&db, &job("cron", &payload, None)).await.unwrap().is_some(), "no key, no limit");
}

#[tokio::test]
async fn a_claim_leases_the_job_and_only_that_attempt_may_finish_it() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({"n": 1});
    let enqueued = jobs::enqueue(&db, &job("noop", &payload, None)).await.unwrap().unwrap();
    let claimed = claim_one(&db).await;
    assert_eq!((claimed.id, claimed.attempts, claimed.state()), (enqueued.id, 1, JobState::Running));
    assert!(claimed.lease_until.unwrap() > time::now());
    assert!(dialect::claim_jobs(&db, Duration::seconds(60), 10).await.unwrap().is_empty(), "leased");
    // The first attempt fails and is retried at once; a stale report of attempt 1 changes nothing.
    assert!(jobs::fail(&db, claimed.id, 1, "smtp down", Some(time::now())).await.unwrap());
    let failed = jobs::find_job(&db, claimed.id).await.unwrap().unwrap();
    assert_eq!((failed.state(), failed.last_error.as_deref()), (JobState::Failed, Some("smtp down")));
    let second = claim_one(&db).await;
    assert_eq!(second.attempts, 2);
    assert!(!jobs::succeed(&db, second.id, 1, None).await.unwrap(), "attempt 1 no longer holds it");
    assert!(jobs::succeed(&db, second.id, 2, Some(&json!({"ok": true}))).await.unwrap());
    let done = jobs::find_job(&db, second.id).await.unwrap().unwrap();
    assert_eq!(done.state(), JobState::Succeeded);
    assert_eq!(done.output.unwrap().0, json!({"ok": true}));
    assert!(done.finished_at.is_some() && done.lease_until.is_none() && done.last_error.is_none());
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_last_failure_is_dead() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    jobs::enqueue(&db, &job("noop", &payload, None)).await.unwrap().unwrap();
    let first = dialect::claim_jobs(&db, Duration::milliseconds(-1), 1).await.unwrap().remove(0);
    // Its worker died: the lease has already run out, so another worker takes it over.
    let second = claim_one(&db).await;
    assert_eq!((second.id, second.attempts), (first.id, 2));
    assert!(!jobs::fail(&db, first.id, 1, "late", None).await.unwrap(), "the dead worker is fenced off");
    assert!(jobs::fail(&db, second.id, 2, "gave up", None).await.unwrap());
    let dead = jobs::find_job(&db, second.id).await.unwrap().unwrap();
    assert_eq!(dead.state(), JobState::Dead);
    assert!(dead.finished_at.is_some());
    assert!(dialect::claim_jobs(&db, Duration::seconds(60), 10).await.unwrap().is_empty(), "dead jobs never run");
    // An admin's retry revives it with a fresh set of attempts; only waiting jobs are cancelled.
    assert!(jobs::cancel_job(&db, dead.id).await.unwrap().is_none());
    let revived = jobs::retry_job(&db, dead.id).await.unwrap().unwrap();
    assert_eq!((revived.state(), revived.attempts), (JobState::Queued, 0));
    assert!(jobs::retry_job(&db, dead.id).await.unwrap().is_none(), "queued jobs are not retried");
    let cancelled = jobs::cancel_job(&db, dead.id).await.unwrap().unwrap();
    assert_eq!(cancelled.state(), JobState::Cancelled);
    assert!(dialect::claim_jobs(&db, Duration::seconds(60), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_released_claim_goes_back_to_the_queue_without_using_an_attempt() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    jobs::enqueue(&db, &job("noop", &payload, None)).await.unwrap().unwrap();
    let claimed = claim_one(&db).await;
    assert!(jobs::replace_payload(&db, claimed.id, &json!({"to": "[gone]"})).await.unwrap());
    assert_eq!(jobs::find_job(&db, claimed.id).await.unwrap().unwrap().payload.0, json!({"to": "[gone]"}));
    assert!(jobs::release(&db, claimed.id, claimed.attempts).await.unwrap());
    assert!(!jobs::release(&db, claimed.id, claimed.attempts).await.unwrap(), "only a running claim");
    let again = claim_one(&db).await;
    assert_eq!((again.id, again.attempts), (claimed.id, 1));
}

#[tokio::test]
async fn many_claims_succeed_in_one_statement_and_only_the_current_attempts() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    for _ in 0..5 {
        jobs::enqueue(&db, &job("noop", &payload, None)).await.unwrap().unwrap();
    }
    let claimed = dialect::claim_jobs(&db, Duration::seconds(60), 5).await.unwrap();
    let mut claims: Vec<_> = claimed.iter().map(|job| (job.id, job.attempts)).collect();
    claims[0].1 += 1; // a stale attempt
    let mut done = jobs::succeed_many(&db, &claims).await.unwrap();
    done.sort();
    let mut expected: Vec<_> = claims[1..].iter().map(|(id, _)| *id).collect();
    expected.sort();
    assert_eq!(done, expected);
    assert_eq!(jobs::find_job(&db, claims[1].0).await.unwrap().unwrap().state(), JobState::Succeeded);
    assert_eq!(jobs::find_job(&db, claims[0].0).await.unwrap().unwrap().state(), JobState::Running);
    assert!(jobs::succeed_many(&db, &[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn jobs_not_yet_due_wait() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    let later = NewJob { run_at: time::now() + Duration::seconds(30), ..job("noop", &payload, None) };
    jobs::enqueue(&db, &later).await.unwrap().unwrap();
    assert!(dialect::claim_jobs(&db, Duration::seconds(60), 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_claims_never_take_one_job_twice() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    for _ in 0..40 {
        jobs::enqueue(&db, &job("noop", &payload, None)).await.unwrap().unwrap();
    }
    let claimers: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = dialect::claim_jobs(&db, Duration::seconds(60), 3).await.unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|job| job.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!((count, all.len()), (40, 40));
}

#[tokio::test]
async fn listings_stats_and_clean_up() {
    let database = TestDatabase::create().await;
    let db = migrated(&database).await;
    let payload = json!({});
    for kind in ["email", "email", "export"] {
        jobs::enqueue(&db, &job(kind, &payload, None)).await.unwrap().unwrap();
    }
    let (page, total) =
        jobs::list_jobs(&db, JobFilter { kind: Some("email"), ..Default::default() }, 0, 1).await.unwrap();
    assert_eq!((page.len(), total), (1, 2));
    let (all, _) = jobs::list_jobs(&db, JobFilter::default(), 0, 10).await.unwrap();
    assert!(all.windows(2).all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)), "newest first");
    let running = claim_one(&db).await;
    let (page, total) =
        jobs::list_jobs(&db, JobFilter { state: Some(JobState::Running), kind: None }, 0, 10).await.unwrap();
    assert_eq!((page[0].id, total), (running.id, 1));
    jobs::succeed(&db, running.id, 1, Some(&json!({"rows": 1}))).await.unwrap();
    let mut counts = jobs::count_jobs(&db).await.unwrap();
    counts.sort();
    assert_eq!(counts.iter().map(|(_, _, n)| n).sum::<i64>(), 3);
    assert!(counts.iter().any(|(state, _, n)| state == "succeeded" && *n == 1));
    let hour_ago = time::now() - Duration::hours(1);
    assert_eq!(jobs::count_jobs_since(&db, JobState::Succeeded, hour_ago).await.unwrap(), 1);
    let kind = running.kind.clone();
    assert_eq!(jobs::clear_outputs(&db, &kind, time::now() + Duration::seconds(1)).await.unwrap(), 1);
    assert!(jobs::find_job(&db, running.id).await.unwrap().unwrap().output.is_none());
    assert_eq!(jobs::delete_finished_jobs(&db, hour_ago).await.unwrap(), 0, "too recent");
    assert_eq!(jobs::delete_finished_jobs(&db, time::now() + Duration::seconds(1)).await.unwrap(), 1);
    assert!(jobs::find_job(&db, running.id).await.unwrap().is_none());
}
