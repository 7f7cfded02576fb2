//! The one evaluation rule, on a flag compiled for memory: not enabled or expired → off
//! (`DISABLED`); user listed → on (`TARGETING_MATCH`); plans set and the user's effective plan
//! not among them → off (`TARGETING_MATCH`); a rollout → on iff the user's Unleash bucket is
//! within it (`SPLIT`); otherwise on (`STATIC`).

use std::collections::HashSet;

use omnistack_db::feature_flags::FeatureFlag;
use omnistack_db::users::User;
use uuid::Uuid;

use super::bucket::normalized_value;

/// The plan a flag's `plans` rule sees: the subscribed plan while the subscription is active
/// or trialing, `free` otherwise.
pub fn effective_plan(user: &User) -> &'static str {
    crate::billing::effective_plan(&user.subscription_plan, &user.subscription_status).as_str()
}

/// Why a flag evaluated as it did (the OpenFeature reasons).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Not enabled, or expired.
    Disabled,
    /// A targeting rule decided (a listed user, or a plan outside the allowed ones).
    TargetingMatch,
    /// The percentage rollout decided.
    Split,
    /// On for everyone.
    Static,
}

impl Reason {
    /// The reason as sent (`DISABLED`, `TARGETING_MATCH`, `SPLIT`, `STATIC`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "DISABLED",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Static => "STATIC",
        }
    }
}

/// A flag's value for one subject, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Evaluation {
    /// On or off.
    pub value: bool,
    /// Why.
    pub reason: Reason,
}

/// Whom a flag is evaluated for.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// The targeting key as given (an account id in its hyphenated form, for accounts).
    pub key: &'a str,
    /// The key as an account id, when it is one.
    pub id: Option<Uuid>,
    /// The effective plan, when the subject is a known account.
    pub plan: Option<&'a str>,
}

impl<'a> Subject<'a> {
    /// A subject known by its targeting key only (no account behind it, or none looked up).
    pub fn from_key(key: &'a str) -> Subject<'a> {
        Subject { key, id: Uuid::try_parse(key).ok(), plan: None }
    }
}

/// A flag as held in memory: lookups are sets, times are milliseconds.
#[derive(Clone, Debug)]
pub struct CompiledFlag {
    /// The key.
    pub key: String,
    enabled: bool,
    expires_at_ms: Option<i64>,
    user_ids: HashSet<Uuid>,
    plans: Vec<String>,
    rollout: Option<u32>,
    group: String,
}

impl CompiledFlag {
    /// Compiles a stored flag.
    pub fn new(flag: &FeatureFlag) -> CompiledFlag {
        CompiledFlag {
            key: flag.key.clone(),
            enabled: flag.enabled,
            expires_at_ms: flag.expires_at.map(|at| at.timestamp_millis()),
            user_ids: flag.user_ids.0.iter().copied().collect(),
            plans: flag.plans.0.clone(),
            rollout: flag.rollout_percentage.map(|p| p.clamp(0, 100) as u32),
            group: flag.group_id.clone().unwrap_or_else(|| flag.key.clone()),
        }
    }

    /// Whether the flag has a `plans` rule (evaluating it then needs the subject's plan).
    pub fn has_plan_rule(&self) -> bool {
        !self.plans.is_empty()
    }

    /// The flag's value for `subject` at `now_ms` (milliseconds since the Unix epoch).
    pub fn evaluate(&self, subject: &Subject<'_>, now_ms: i64) -> Evaluation {
        if !self.enabled || self.expires_at_ms.is_some_and(|at| at <= now_ms) {
            return Evaluation { value: false, reason: Reason::Disabled };
        }
        if subject.id.is_some_and(|id| self.user_ids.contains(&id)) {
            return Evaluation { value: true, reason: Reason::TargetingMatch };
        }
        if !self.plans.is_empty() && !subject.plan.is_some_and(|plan| self.plans.iter().any(|p| p == plan)) {
            return Evaluation { value: false, reason: Reason::TargetingMatch };
        }
        if let Some(percentage) = self.rollout {
            let value = normalized_value(subject.key, &self.group) <= percentage;
            return Evaluation { value, reason: Reason::Split };
        }
        Evaluation { value: true, reason: Reason::Static }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, Utc};
    use omnistack_db::feature_flags::Json;

    use super::*;

    fn flag() -> FeatureFlag {
        let now = Utc::now();
        FeatureFlag {
            key: "new-editor".into(),
            description: None,
            enabled: true,
            rollout_percentage: None,
            group_id: None,
            user_ids: Json(vec![]),
            plans: Json(vec![]),
            expires_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn eval(flag: &FeatureFlag, subject: Subject<'_>) -> (bool, &'static str) {
        let e = CompiledFlag::new(flag).evaluate(&subject, Utc::now().timestamp_millis());
        (e.value, e.reason.as_str())
    }

    const ALICE: &str = "0190f0e4-7a3c-7cc1-9d2e-1f2a3b4c5d6e";

    #[test]
    fn each_step_of_the_rule_decides_in_order() {
        let alice = Uuid::parse_str(ALICE).unwrap();
        let subject = Subject { key: ALICE, id: Some(alice), plan: Some("free") };
        let mut f = flag();
        assert_eq!(eval(&f, subject), (true, "STATIC"));

        f.plans = Json(vec!["pro".into()]);
        assert_eq!(eval(&f, subject), (false, "TARGETING_MATCH"), "plan outside the allowed ones");
        assert_eq!(eval(&f, Subject { plan: Some("pro"), ..subject }), (true, "STATIC"));
        assert_eq!(eval(&f, Subject { plan: None, ..subject }), (false, "TARGETING_MATCH"), "no known plan");

        f.user_ids = Json(vec![alice]);
        assert_eq!(eval(&f, subject), (true, "TARGETING_MATCH"), "a listed user wins over plans");

        f.enabled = false;
        assert_eq!(eval(&f, subject), (false, "DISABLED"), "disabled wins over everything");
        f.enabled = true;
        f.expires_at = Some(Utc::now() - Duration::seconds(1));
        assert_eq!(eval(&f, subject), (false, "DISABLED"), "expired");
        f.expires_at = Some(Utc::now() + Duration::hours(1));
        assert_eq!(eval(&f, subject), (true, "TARGETING_MATCH"));
    }

    #[test]
    fn a_rollout_uses_the_unleash_bucket_of_the_group() {
        let mut f = flag();
        f.group_id = Some("gr1".into());
        // normalizedValue("123", "gr1") = 73.
        for (percentage, on) in [(72, false), (73, true), (100, true), (0, false)] {
            f.rollout_percentage = Some(percentage);
            assert_eq!(eval(&f, Subject::from_key("123")), (on, "SPLIT"), "{percentage}%");
        }
        f.group_id = None;
        f.key = "groupX".into();
        f.rollout_percentage = Some(25);
        assert_eq!(eval(&f, Subject::from_key("999")), (true, "SPLIT"), "the group defaults to the key");
        f.rollout_percentage = Some(24);
        assert_eq!(eval(&f, Subject::from_key("999")), (false, "SPLIT"));
    }

    #[test]
    fn a_rollout_reaches_its_share_of_users_and_grows_monotonically() {
        let mut f = flag();
        let ids: Vec<String> = (0..20_000).map(|_| Uuid::now_v7().to_string()).collect();
        let mut previous: Vec<bool> = vec![false; ids.len()];
        for percentage in [0, 10, 25, 50, 90, 100] {
            f.rollout_percentage = Some(percentage);
            let compiled = CompiledFlag::new(&f);
            let now = Utc::now().timestamp_millis();
            let on: Vec<bool> = ids.iter().map(|id| compiled.evaluate(&Subject::from_key(id), now).value).collect();
            let share = on.iter().filter(|&&v| v).count() as f64 / ids.len() as f64 * 100.0;
            assert!((share - f64::from(percentage)).abs() < 2.0, "{percentage}% gave {share:.2}%");
            assert!(previous.iter().zip(&on).all(|(was, is)| !was || *is), "raising a rollout keeps its users");
            previous = on;
        }
    }

    #[test]
    fn an_inactive_subscription_counts_as_free() {
        let now = Utc::now();
        let mut user = User {
            id: Uuid::now_v7(),
            email: None,
            hashed_password: None,
            full_name: None,
            avatar_url: None,
            role: "user".into(),
            is_active: true,
            email_verified: false,
            subscription_plan: "pro".into(),
            subscription_status: "active".into(),
            last_login_at: None,
            login_count: 0,
            deactivated_at: None,
            created_at: now,
            updated_at: now,
            unverified_email: None,
        };
        for (status, plan) in [("active", "pro"), ("trialing", "pro"), ("past_due", "free"), ("canceled", "free")] {
            user.subscription_status = status.into();
            assert_eq!(effective_plan(&user), plan, "{status}");
        }
    }
}
