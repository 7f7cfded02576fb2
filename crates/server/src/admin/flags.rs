//! Feature flags: what admins create, change and delete (each write audited in its own
//! transaction and bounded so nothing an admin sends grows memory without bound), and the
//! evaluation everyone else gets, always from memory.
//!
//! | module | what |
//! |---|---|
//! | [`bucket`] | murmur3 x86_32 and Unleash's rollout bucket |
//! | [`rule`] | the one evaluation rule, on a flag compiled for memory |
//! | [`cache`] | this instance's flags, and how they stay current |

pub mod bucket;
pub mod cache;
pub mod rule;

use chrono::{DateTime, Utc};
use omnistack_db::feature_flags::{self as db_flags, FeatureFlag, FlagFields};
use omnistack_db::{Db, Tx};
use serde_json::{Value, json};
use uuid::Uuid;

pub use cache::{FeatureFlags, FlagSet};
pub use rule::{Evaluation, Reason, Subject, effective_plan};

use crate::admin::audit::{self, AuditContext, AuditEntry};
use crate::auth::{CurrentUser, Role};
use crate::config::Plan;
use crate::error::{Error, FieldError, Result};

/// The most flags a deployment holds.
pub const MAX_FLAGS: i64 = 1_000;
/// The most accounts one flag lists in `user_ids`.
pub const MAX_USER_IDS: usize = 10_000;
/// The longest description.
pub const MAX_DESCRIPTION: usize = 1_000;
/// The longest key (and stickiness group).
pub const MAX_KEY: usize = 100;
/// The longest targeting key (a user id as an SDK sends it).
pub const MAX_TARGETING_KEY: usize = 255;

/// Who changes a flag, and from where: what the audit entry records besides the change.
#[derive(Clone, Debug)]
pub struct Editor<'a> {
    /// The admin.
    pub caller: &'a CurrentUser,
    /// The request.
    pub context: AuditContext,
}

/// A flag to create, as sent.
#[derive(Clone, Debug, Default)]
pub struct NewFlag {
    /// Key.
    pub key: String,
    /// Description.
    pub description: Option<String>,
    /// On at all (default off).
    pub enabled: bool,
    /// 0..=100.
    pub rollout_percentage: Option<i32>,
    /// Stickiness group (default: the key).
    pub group_id: Option<String>,
    /// Always-on accounts, as sent.
    pub user_ids: Vec<String>,
    /// Allowed plans.
    pub plans: Vec<String>,
    /// When it turns off by itself (RFC 3339).
    pub expires_at: Option<String>,
}

/// Fields to change: `None` leaves a field, `Some(None)` clears a nullable one.
#[derive(Clone, Debug, Default)]
pub struct FlagChange {
    /// New description.
    pub description: Option<Option<String>>,
    /// On or off.
    pub enabled: Option<bool>,
    /// New rollout, or none.
    pub rollout_percentage: Option<Option<i32>>,
    /// New group, or back to the key.
    pub group_id: Option<Option<String>>,
    /// New always-on accounts (replaces the list).
    pub user_ids: Option<Vec<String>>,
    /// New allowed plans (replaces the list).
    pub plans: Option<Vec<String>>,
    /// New expiry (RFC 3339), or none.
    pub expires_at: Option<Option<String>>,
}

/// Every flag, by key.
pub async fn list_flags(db: &Db, caller: &CurrentUser) -> Result<Vec<FeatureFlag>> {
    caller.require(Role::Admin)?;
    Ok(db_flags::list_flags(db).await?)
}

/// One flag; 404 when there is none (a malformed key cannot exist, so it is 404 too).
pub async fn find_flag(db: &Db, caller: &CurrentUser, key: &str) -> Result<FeatureFlag> {
    caller.require(Role::Admin)?;
    if check_key("key", key).is_some() {
        return Err(not_found(key));
    }
    db_flags::find_flag(db, key).await?.ok_or_else(|| not_found(key))
}

/// Creates a flag (409 on a taken key, 409 past [`MAX_FLAGS`]), audited in the same
/// transaction; this instance sees it at once, the others within a second.
pub async fn create_flag(db: &Db, flags: &FeatureFlags, editor: &Editor<'_>, new: NewFlag) -> Result<FeatureFlag> {
    editor.caller.require(Role::Admin)?;
    let mut problems: Vec<FieldError> = check_key("key", &new.key).into_iter().collect();
    let expires_at = check_expiry(&mut problems, new.expires_at.as_deref());
    let checked = check_fields(
        &mut problems,
        new.description.as_deref(),
        new.rollout_percentage,
        new.group_id.as_deref(),
        &new.user_ids,
        &new.plans,
    );
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let fields = FlagFields {
        description: new.description.as_deref(),
        enabled: new.enabled,
        rollout_percentage: new.rollout_percentage,
        group_id: new.group_id.as_deref(),
        user_ids: &checked.user_ids,
        plans: &checked.plans,
        expires_at,
    };
    let mut tx = db.begin().await?;
    // First, so concurrent writers queue on the revision row before the count is read.
    db_flags::bump_revision(&mut tx).await?;
    if db_flags::count_flags(&mut tx).await? >= MAX_FLAGS {
        return Err(Error::Conflict(format!("a deployment holds at most {MAX_FLAGS} feature flags")));
    }
    let flag = db_flags::insert_flag(&mut tx, &new.key, &fields).await.map_err(|err| match err {
        omnistack_db::DbError::Conflict(_) => Error::Conflict(format!("feature flag {:?} already exists", new.key)),
        other => other.into(),
    })?;
    audit_change(&mut tx, editor, "feature_flag.created", &flag.key, json!({ "after": describe(&flag) })).await?;
    tx.commit().await?;
    written(db, flags, editor, "created", &flag.key).await;
    Ok(flag)
}

/// Changes a flag, audited (before and after) in the same transaction.
pub async fn update_flag(
    db: &Db,
    flags: &FeatureFlags,
    editor: &Editor<'_>,
    key: &str,
    change: FlagChange,
) -> Result<FeatureFlag> {
    editor.caller.require(Role::Admin)?;
    if check_key("key", key).is_some() {
        return Err(not_found(key));
    }
    let mut tx = db.begin().await?;
    db_flags::bump_revision(&mut tx).await?;
    let before = db_flags::find_flag(&mut tx, key).await?.ok_or_else(|| not_found(key))?;
    let description = change.description.unwrap_or_else(|| before.description.clone());
    let rollout_percentage = change.rollout_percentage.unwrap_or(before.rollout_percentage);
    let group_id = change.group_id.unwrap_or_else(|| before.group_id.clone());
    let user_ids = change.user_ids.unwrap_or_else(|| before.user_ids.0.iter().map(Uuid::to_string).collect());
    let plans = change.plans.unwrap_or_else(|| before.plans.0.clone());
    let mut problems = Vec::new();
    let expires_at = match change.expires_at {
        Some(expiry) => check_expiry(&mut problems, expiry.as_deref()),
        None => before.expires_at,
    };
    let checked =
        check_fields(&mut problems, description.as_deref(), rollout_percentage, group_id.as_deref(), &user_ids, &plans);
    if !problems.is_empty() {
        return Err(Error::Validation(problems));
    }
    let fields = FlagFields {
        description: description.as_deref(),
        enabled: change.enabled.unwrap_or(before.enabled),
        rollout_percentage,
        group_id: group_id.as_deref(),
        user_ids: &checked.user_ids,
        plans: &checked.plans,
        expires_at,
    };
    let after = db_flags::update_flag(&mut tx, key, &fields).await?.ok_or_else(|| not_found(key))?;
    let details = json!({ "before": describe(&before), "after": describe(&after) });
    audit_change(&mut tx, editor, "feature_flag.updated", key, details).await?;
    tx.commit().await?;
    written(db, flags, editor, "updated", key).await;
    Ok(after)
}

/// Deletes a flag, audited (with what it was) in the same transaction.
pub async fn delete_flag(db: &Db, flags: &FeatureFlags, editor: &Editor<'_>, key: &str) -> Result<()> {
    editor.caller.require(Role::Admin)?;
    if check_key("key", key).is_some() {
        return Err(not_found(key));
    }
    let mut tx = db.begin().await?;
    db_flags::bump_revision(&mut tx).await?;
    let before = db_flags::find_flag(&mut tx, key).await?.ok_or_else(|| not_found(key))?;
    db_flags::delete_flag(&mut tx, key).await?;
    audit_change(&mut tx, editor, "feature_flag.deleted", key, json!({ "before": describe(&before) })).await?;
    tx.commit().await?;
    written(db, flags, editor, "deleted", key).await;
    Ok(())
}

/// Flag `key` for the subject `subject_key` (an account id, or any targeting key); the
/// account's effective plan is looked up when the flag has a `plans` rule (no account: no
/// plan, so the rule says off).
pub async fn evaluate_for(
    db: &Db,
    flags: &FeatureFlags,
    caller: &CurrentUser,
    key: &str,
    subject_key: &str,
) -> Result<Evaluation> {
    caller.require(Role::Admin)?;
    if let Some(problem) = check_targeting_key("user_id", subject_key) {
        return Err(Error::Validation(vec![problem]));
    }
    let set = flags.snapshot();
    let flag = set.get(key).ok_or_else(|| not_found(key))?;
    let mut subject = Subject::from_key(subject_key);
    let account = match (flag.has_plan_rule(), subject.id) {
        (true, Some(id)) => omnistack_db::users::find_user(db, id).await?,
        _ => None,
    };
    subject.plan = account.as_ref().map(effective_plan);
    Ok(flag.evaluate(&subject, Utc::now().timestamp_millis()))
}

/// Who may evaluate flags remotely (OFREP): a server holding `FLAGS_API_KEY`, or an admin.
#[derive(Clone, Debug)]
pub enum FlagReader {
    /// The bearer sent the configured `FLAGS_API_KEY` (compared in constant time).
    ApiKey,
    /// The bearer's token is an admin's.
    Admin(Box<CurrentUser>),
}

impl FlagReader {
    /// 403 unless the reader may evaluate flags (an admin token must still hold the role).
    pub fn require(&self) -> Result<()> {
        match self {
            FlagReader::ApiKey => Ok(()),
            FlagReader::Admin(caller) => caller.require(Role::Admin),
        }
    }
}

/// The subject of a remote evaluation: the targeting key, with the account's effective plan
/// looked up when some flag to evaluate has a `plans` rule and the key is an account id.
async fn remote_subject(db: &Db, needs_plan: bool, targeting_key: &str) -> Result<Option<String>> {
    let Some(id) = Uuid::try_parse(targeting_key).ok().filter(|_| needs_plan) else { return Ok(None) };
    Ok(omnistack_db::users::find_user(db, id).await?.map(|user| effective_plan(&user).to_owned()))
}

/// Flag `key` for `targeting_key` (checked by the caller with [`check_targeting_key`]);
/// `None` when there is no such flag.
pub async fn evaluate_remote(
    db: &Db,
    flags: &FeatureFlags,
    reader: &FlagReader,
    key: &str,
    targeting_key: &str,
) -> Result<Option<Evaluation>> {
    reader.require()?;
    let set = flags.snapshot();
    let Some(flag) = set.get(key) else { return Ok(None) };
    let plan = remote_subject(db, flag.has_plan_rule(), targeting_key).await?;
    let subject = Subject { plan: plan.as_deref(), ..Subject::from_key(targeting_key) };
    Ok(Some(flag.evaluate(&subject, Utc::now().timestamp_millis())))
}

/// Every flag for `targeting_key`, by key.
pub async fn evaluate_all_remote(
    db: &Db,
    flags: &FeatureFlags,
    reader: &FlagReader,
    targeting_key: &str,
) -> Result<Vec<(String, Evaluation)>> {
    reader.require()?;
    let set = flags.snapshot();
    let plan = remote_subject(db, set.needs_plans(), targeting_key).await?;
    let subject = Subject { plan: plan.as_deref(), ..Subject::from_key(targeting_key) };
    let now = Utc::now().timestamp_millis();
    Ok(set.iter().map(|flag| (flag.key.clone(), flag.evaluate(&subject, now))).collect())
}

/// Every flag's value for the signed-in caller, by key.
pub fn evaluate_all_for_account(flags: &FeatureFlags, caller: &CurrentUser) -> Vec<(String, bool)> {
    let set = flags.snapshot();
    let key = caller.user.id.to_string();
    let subject = Subject { key: &key, id: Some(caller.user.id), plan: Some(effective_plan(&caller.user)) };
    let now = Utc::now().timestamp_millis();
    set.iter().map(|flag| (flag.key.clone(), flag.evaluate(&subject, now).value)).collect()
}

/// A targeting key's problem: empty, too long, or holding control characters.
pub fn check_targeting_key(field: &str, key: &str) -> Option<FieldError> {
    if key.is_empty() || key.chars().count() > MAX_TARGETING_KEY {
        return Some(FieldError::new(field, format!("must have 1 to {MAX_TARGETING_KEY} characters")));
    }
    if key.chars().any(|c| !allowed(c, false)) {
        return Some(FieldError::new(field, "must not contain control or invisible characters"));
    }
    None
}

/// Records a flag write in the audit log, in the transaction of the write.
async fn audit_change(tx: &mut Tx, editor: &Editor<'_>, action: &'static str, key: &str, details: Value) -> Result<()> {
    audit::record(tx, AuditEntry::by(editor.caller, &editor.context, action, "feature_flag", key, details)).await
}

/// After a committed write: this instance reloads now (the others at their next poll).
async fn written(db: &Db, flags: &FeatureFlags, editor: &Editor<'_>, what: &str, key: &str) {
    tracing::info!(flag.key = key, admin.id = %editor.caller.user.id, "feature flag {what}");
    if let Err(err) = flags.reload(db).await {
        // Committed all the same: the poll picks it up.
        tracing::warn!(error = %err, "feature flags: could not reload after a write");
    }
}

/// A flag as the audit log records it.
fn describe(flag: &FeatureFlag) -> Value {
    json!({
        "description": flag.description,
        "enabled": flag.enabled,
        "rollout_percentage": flag.rollout_percentage,
        "group_id": flag.group_id,
        "user_ids": flag.user_ids.0,
        "plans": flag.plans.0,
        "expires_at": flag.expires_at,
    })
}

fn not_found(key: &str) -> Error {
    let shown: String = key.chars().take(MAX_KEY).collect();
    Error::NotFound(format!("no feature flag {shown:?}"))
}

/// The problem with a key (or group): it must match `^[a-z0-9][a-z0-9_.-]{0,99}$`.
fn check_key(field: &str, key: &str) -> Option<FieldError> {
    let bytes = key.as_bytes();
    let valid = !bytes.is_empty()
        && bytes.len() <= MAX_KEY
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'));
    (!valid).then(|| FieldError::new(field, "must match ^[a-z0-9][a-z0-9_.-]{0,99}$"))
}

/// The longest expiry text (RFC 3339 with nanoseconds and an offset is 35 characters).
pub const MAX_EXPIRY: usize = 40;

/// Parses an RFC 3339 expiry; a problem goes to `problems`.
fn check_expiry(problems: &mut Vec<FieldError>, expiry: Option<&str>) -> Option<DateTime<Utc>> {
    let expiry = expiry?;
    let parsed = (expiry.len() <= MAX_EXPIRY).then(|| DateTime::parse_from_rfc3339(expiry).ok()).flatten();
    if parsed.is_none() {
        problems.push(FieldError::new(
            "expires_at",
            format!("must be an RFC 3339 time of at most {MAX_EXPIRY} characters"),
        ));
    }
    parsed.map(|at| at.with_timezone(&Utc))
}

struct Checked {
    user_ids: Vec<Uuid>,
    plans: Vec<String>,
}

/// Checks what a flag holds besides its key; problems go to `problems`.
fn check_fields(
    problems: &mut Vec<FieldError>,
    description: Option<&str>,
    rollout_percentage: Option<i32>,
    group_id: Option<&str>,
    user_ids: &[String],
    plans: &[String],
) -> Checked {
    if let Some(description) = description {
        problems.extend(FieldError::too_long("description", description, MAX_DESCRIPTION));
        if description.chars().any(|c| !allowed(c, true)) {
            problems.push(FieldError::new("description", "must not contain control or invisible characters"));
        }
    }
    if rollout_percentage.is_some_and(|p| !(0..=100).contains(&p)) {
        problems.push(FieldError::new("rollout_percentage", "must be from 0 to 100"));
    }
    if let Some(group) = group_id {
        problems.extend(check_key("group_id", group));
    }
    let mut ids = Vec::new();
    if user_ids.len() > MAX_USER_IDS {
        problems.push(FieldError::new("user_ids", format!("must list at most {MAX_USER_IDS} accounts")));
    } else {
        for (i, id) in user_ids.iter().enumerate() {
            match Uuid::try_parse(id) {
                Ok(id) if !ids.contains(&id) => ids.push(id),
                Ok(_) => {}
                Err(_) => {
                    problems.push(FieldError::new(format!("user_ids[{i}]"), "must be a UUID"));
                    break;
                }
            }
        }
    }
    let mut known = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if Plan::from_name(plan).is_none() {
            let names: Vec<&str> = Plan::ALL.iter().map(|p| p.as_str()).collect();
            problems.push(FieldError::new(format!("plans[{i}]"), format!("must be one of {}", names.join(", "))));
            break;
        }
        if !known.contains(plan) {
            known.push(plan.clone());
        }
    }
    Checked { user_ids: ids, plans: known }
}

/// Whether `c` may appear in a description (`multiline`) or a targeting key.
fn allowed(c: char, multiline: bool) -> bool {
    if c.is_control() {
        return multiline && matches!(c, '\n' | '\r' | '\t');
    }
    !matches!(c,
        '\u{200B}' | '\u{2028}' | '\u{2029}' | '\u{FEFF}'
        | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FFF9}'..='\u{FFFB}'
        | '\u{FDD0}'..='\u{FDEF}' | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_pattern() {
        for good in ["a", "0", "new-editor", "billing.v2_beta", &"a".repeat(100)] {
            assert!(check_key("key", good).is_none(), "{good}");
        }
        for bad in ["", "-a", "_a", ".a", "A", "new editor", "ключ", "a\0", &"a".repeat(101), "a/b"] {
            assert!(check_key("key", bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn fields_are_bounded_and_deduplicated() {
        let mut problems = Vec::new();
        let id = Uuid::now_v7().to_string();
        let checked = check_fields(
            &mut problems,
            Some("ok\nline"),
            Some(100),
            Some("group"),
            &[id.clone(), id],
            &["pro".into(), "pro".into()],
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((checked.user_ids.len(), checked.plans.len()), (1, 1));

        let many: Vec<String> = (0..=MAX_USER_IDS).map(|_| Uuid::now_v7().to_string()).collect();
        let mut problems = Vec::new();
        check_fields(
            &mut problems,
            Some(&"x".repeat(MAX_DESCRIPTION + 1)),
            Some(101),
            Some("Bad Group"),
            &many,
            &["platinum".into()],
        );
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["description", "rollout_percentage", "group_id", "user_ids", "plans[0]"]);

        let mut problems = Vec::new();
        check_fields(&mut problems, Some("bidi \u{202E} text"), Some(-1), None, &["nope".into()], &[]);
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["description", "rollout_percentage", "user_ids[0]"]);
    }

    #[test]
    fn targeting_keys_are_bounded_text() {
        assert!(check_targeting_key("k", "user-1").is_none());
        assert!(check_targeting_key("k", "").is_some());
        assert!(check_targeting_key("k", &"é".repeat(MAX_TARGETING_KEY + 1)).is_some());
        assert!(check_targeting_key("k", "a\u{0}b").is_some());
        assert!(check_targeting_key("k", "a\nb").is_some());
    }
}
