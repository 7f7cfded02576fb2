//! Feature flag evaluation cost: `EVALUATIONS` evaluations (10 M by default) of one flag per
//! rule kind, each through the in-memory snapshot (lookup by key, then the rule), for a
//! rotating set of account ids; prints nanoseconds per evaluation. Run through
//! `bench/flags.sh`.

use std::hint::black_box;
use std::time::Instant;

use chrono::Utc;
use omnistack::admin::flags::{FlagSet, Subject};
use omnistack_db::feature_flags::{FeatureFlag, Json};
use uuid::Uuid;

fn flag(key: &str, rollout: Option<i32>, user_ids: Vec<Uuid>, plans: Vec<String>) -> FeatureFlag {
    let now = Utc::now();
    FeatureFlag {
        key: key.into(),
        description: None,
        enabled: true,
        rollout_percentage: rollout,
        group_id: None,
        user_ids: Json(user_ids),
        plans: Json(plans),
        expires_at: Some(now + chrono::Duration::days(1)),
        created_at: now,
        updated_at: now,
    }
}

fn main() {
    let evaluations: usize = std::env::var("EVALUATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let targeted: Vec<Uuid> = (0..10_000).map(|_| Uuid::now_v7()).collect();
    // 1,000 flags (the cap), so the key lookup is as slow as it gets.
    let mut flags: Vec<FeatureFlag> = (0..996).map(|i| flag(&format!("filler-{i:04}"), None, vec![], vec![])).collect();
    flags.push(flag("static", None, vec![], vec![]));
    flags.push(flag("rollout", Some(50), vec![], vec![]));
    flags.push(flag("targeted-rollout", Some(50), targeted, vec![]));
    flags.push(flag("plans-rollout", Some(50), vec![], vec!["pro".into(), "enterprise".into()]));
    let set = FlagSet::new(1, &flags);
    let ids: Vec<(String, Uuid)> = (0..4096)
        .map(|_| {
            let id = Uuid::now_v7();
            (id.to_string(), id)
        })
        .collect();
    let now = Utc::now().timestamp_millis();
    println!("{evaluations} evaluations per flag, 1,000 flags in memory, 4,096 distinct users");
    for key in ["static", "rollout", "targeted-rollout", "plans-rollout"] {
        let started = Instant::now();
        let mut on = 0usize;
        for i in 0..evaluations {
            let (text, id) = &ids[i & 4095];
            let subject = Subject { key: text, id: Some(*id), plan: Some("pro") };
            let evaluation = set.evaluate(black_box(key), black_box(&subject), now).expect("the flag exists");
            on += usize::from(evaluation.value);
        }
        let elapsed = started.elapsed();
        let ns = elapsed.as_nanos() as f64 / evaluations as f64;
        println!(
            "{key:>17}: {ns:6.1} ns per evaluation ({:.1}% on, {:.2} s)",
            on as f64 * 100.0 / evaluations as f64,
            elapsed.as_secs_f64()
        );
    }
}
