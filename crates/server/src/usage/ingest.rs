//! Usage events sent by a product's own backend (`POST /api/v1/admin/usage/events`): each has
//! an id of its own, which makes a retried batch count once. A batch is checked event by
//! event (a bad event is rejected with its reason, the others still count) and applied in one
//! transaction: the event ids (`usage_events`), the aggregates and the Stripe meter events.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use omnistack_db::usage::{self as db_usage, NewUsageEvent, UsageDelta};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::recorder::{DIMENSIONS, MAX_DIMENSION_LEN, MAX_DIMENSIONS};
use super::{Usage, meters};
use crate::auth::Role;
use crate::auth::guard::{self, CurrentUser};
use crate::error::{Error, FieldError, Result};
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;
use crate::telemetry::request_id;

/// Who may send usage events.
#[derive(Clone, Debug)]
pub enum Ingester {
    /// The bearer of `USAGE_API_KEY` (a product's own backend).
    ApiKey,
    /// An admin.
    Admin(Box<CurrentUser>),
}

impl Ingester {
    /// 403 unless an admin (never an impersonation token) or the API key.
    pub fn require(&self) -> Result<()> {
        match self {
            Ingester::ApiKey => Ok(()),
            Ingester::Admin(caller) => caller.require(Role::Admin),
        }
    }
}

/// Guard of the `ingest` route group: `Authorization: Bearer <USAGE_API_KEY>` (compared in
/// constant time) or an active admin's token. A refused credential costs its client IP from
/// the `public` budget; the key and each admin have an `app` budget of their own.
pub async fn require_ingester(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response> {
    let ingester = match ingester(&state, request.headers()).await {
        Ok(ingester) => ingester,
        Err(refused) => {
            Box::pin(rate_limit::check_client(LimitClass::Public, request.extensions(), request.headers())).await?;
            return Err(refused);
        }
    };
    let key = match &ingester {
        Ingester::ApiKey => "usage-api-key".to_owned(),
        Ingester::Admin(caller) => caller.user.id.to_string(),
    };
    let decision = Box::pin(state.limiter.check(LimitClass::App, &key)).await;
    if !decision.allowed {
        return Err(Error::RateLimited(decision));
    }
    ingester.require()?;
    if let Ingester::Admin(caller) = &ingester {
        request_id::set_user(caller.user.id);
        request.extensions_mut().insert((**caller).clone());
    }
    request.extensions_mut().insert(ingester);
    let mut response = next.run(request).await;
    decision.apply_headers(response.headers_mut());
    Ok(response)
}

/// The usage API key, else whoever an access token names.
async fn ingester(state: &AppState, headers: &HeaderMap) -> Result<Ingester> {
    let token = guard::bearer_token(headers)?;
    if let Some(key) = &state.config.usage.api_key {
        // Digests first, so the comparison takes the same time whatever the lengths.
        let (given, expected) = (Sha256::digest(token.as_bytes()), Sha256::digest(key.expose().as_bytes()));
        if bool::from(given.ct_eq(&expected)) {
            return Ok(Ingester::ApiKey);
        }
    }
    Ok(Ingester::Admin(Box::new(guard::authenticate_token(state, token).await?)))
}

/// The most events one call may carry.
pub const MAX_EVENTS: usize = 1_000;

/// The longest event id.
pub const MAX_ID_LEN: usize = 100;

/// The largest absolute value of one event.
pub const MAX_ABS_VALUE: i64 = 1_000_000_000_000_000;

/// How old an event may be (Stripe's window).
pub const MAX_AGE: Duration = Duration::days(35);

/// How far ahead of our clock an event may be (Stripe's window).
pub const MAX_AHEAD: Duration = Duration::minutes(5);

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Counted now.
    Accepted,
    /// An event with this id was counted before (by this call or an earlier one): not again.
    Duplicate,
    /// Not counted, for `reason`.
    Rejected,
}

/// One event's result, in the order sent.
#[derive(Clone, Debug, Serialize)]
pub struct EventResult {
    /// Its position in `events`.
    pub index: usize,
    /// Its id, when it had a usable one.
    pub id: Option<String>,
    /// `accepted`, `duplicate` or `rejected`.
    pub status: Outcome,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// The results of one call.
#[derive(Clone, Debug, Serialize)]
pub struct IngestReport {
    /// Events counted now.
    pub accepted: usize,
    /// Events counted before.
    pub duplicates: usize,
    /// Events refused.
    pub rejected: usize,
    /// Every event's result.
    pub results: Vec<EventResult>,
}

/// An event that passed the checks.
struct Checked {
    index: usize,
    id: String,
    user_id: Uuid,
    metric: String,
    value: i64,
    at: DateTime<Utc>,
    dimensions: BTreeMap<String, String>,
}

/// Ingests `events` (each a JSON object `{id, user_id, metric, value, timestamp?,
/// dimensions?}`). 422 when the batch itself is unusable (none, or more than [`MAX_EVENTS`]);
/// otherwise one result per event.
pub async fn ingest(usage: &Usage, ingester: &Ingester, events: &[Value]) -> Result<IngestReport> {
    ingester.require()?;
    if events.is_empty() {
        return Err(Error::Validation(vec![FieldError::new("events", "must hold at least one event")]));
    }
    if events.len() > MAX_EVENTS {
        return Err(Error::Validation(vec![FieldError::new(
            "events",
            format!("must hold at most {MAX_EVENTS} events"),
        )]));
    }
    let now = omnistack_db::time::now();
    let mut results: Vec<EventResult> = Vec::with_capacity(events.len());
    let mut checked = Vec::with_capacity(events.len());
    let mut seen = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        match check(usage, event, now) {
            Ok(event) if !seen.insert(event.id.clone()) => {
                results.push(result(index, Some(event.id), Outcome::Duplicate, None));
            }
            Ok(mut event) => {
                results.push(result(index, Some(event.id.clone()), Outcome::Accepted, None));
                event.index = index;
                checked.push(event);
            }
            Err((id, reason)) => results.push(result(index, id, Outcome::Rejected, Some(reason))),
        }
    }
    let mut tx = usage.db().begin().await?;
    let mut accounts: HashMap<Uuid, Option<Option<String>>> = HashMap::new();
    let mut queued = false;
    for event in &checked {
        let account = match accounts.get(&event.user_id) {
            Some(account) => account.clone(),
            None => {
                let found = db_usage::find_account_customer(&mut tx, event.user_id).await?;
                accounts.insert(event.user_id, found.clone());
                found
            }
        };
        let Some(customer) = account else {
            results[event.index].status = Outcome::Rejected;
            results[event.index].reason = Some("unknown user_id".into());
            continue;
        };
        let dimensions = serde_json::to_string(&event.dimensions).map_err(|err| Error::Internal(err.into()))?;
        let stored = NewUsageEvent {
            id: &event.id,
            user_id: event.user_id,
            metric: &event.metric,
            value: event.value,
            occurred_at: event.at,
            dimensions: &dimensions,
        };
        if !db_usage::insert_event(&mut tx, &stored).await? {
            results[event.index].status = Outcome::Duplicate;
            continue;
        }
        let delta = UsageDelta {
            user_id: event.user_id,
            metric: event.metric.clone(),
            day: UsageDelta::day_of(event.at),
            value: event.value,
            dimensions: event.dimensions.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        db_usage::add(&mut tx, std::slice::from_ref(&delta)).await?;
        if let (Some(jobs), Some(event_name), Some(customer)) =
            (usage.meter_jobs(), usage.settings().meter_of(&event.metric), customer)
            && event.value != 0
        {
            let identifier = meters::identifier("evt", &event.id);
            queued |= meters::queue(
                jobs,
                &mut tx,
                identifier,
                event.user_id,
                &event.metric,
                event_name,
                customer,
                event.value,
                event.at,
            )
            .await?;
        }
    }
    usage.commit(tx, queued).await?;
    let count = |outcome: Outcome| results.iter().filter(|r| r.status == outcome).count();
    Ok(IngestReport {
        accepted: count(Outcome::Accepted),
        duplicates: count(Outcome::Duplicate),
        rejected: count(Outcome::Rejected),
        results,
    })
}

fn result(index: usize, id: Option<String>, status: Outcome, reason: Option<String>) -> EventResult {
    EventResult { index, id, status, reason }
}

/// One event's checks: its id (when usable) and the reason when it fails one.
fn check(usage: &Usage, event: &Value, now: DateTime<Utc>) -> std::result::Result<Checked, (Option<String>, String)> {
    let Some(object) = event.as_object() else {
        return Err((None, "an event must be a JSON object".into()));
    };
    let id = match object.get("id") {
        Some(Value::String(id)) if is_event_id(id) => id.clone(),
        Some(Value::String(_)) => {
            return Err((None, format!("id must be 1 to {MAX_ID_LEN} printable ASCII characters")));
        }
        _ => return Err((None, "id is required (a string)".into())),
    };
    let fail = |reason: String| (Some(id.clone()), reason);
    let user_id = match object.get("user_id") {
        Some(Value::String(text)) => Uuid::try_parse(text).map_err(|_| fail("user_id must be a UUID".into()))?,
        _ => return Err(fail("user_id is required (a UUID)".into())),
    };
    let metric = match object.get("metric") {
        Some(Value::String(metric)) if usage.metric(metric).is_some() => metric.clone(),
        Some(Value::String(_)) => return Err(fail("unknown metric".into())),
        _ => return Err(fail("metric is required (a string)".into())),
    };
    let value = match object.get("value").and_then(Value::as_i64) {
        Some(value) if value.abs() <= MAX_ABS_VALUE => value,
        Some(_) => return Err(fail(format!("value must be at most {MAX_ABS_VALUE} in magnitude"))),
        None => return Err(fail("value is required (an integer, negative for an adjustment)".into())),
    };
    let at = match object.get("timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(|_| fail("timestamp must be RFC 3339 or Unix seconds".into()))?,
        Some(Value::Number(seconds)) => seconds
            .as_i64()
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or_else(|| fail("timestamp must be RFC 3339 or Unix seconds".into()))?,
        Some(_) => return Err(fail("timestamp must be RFC 3339 or Unix seconds".into())),
    };
    if at < now - MAX_AGE {
        return Err(fail("timestamp is more than 35 days old".into()));
    }
    if at > now + MAX_AHEAD {
        return Err(fail("timestamp is more than 5 minutes ahead".into()));
    }
    let mut dimensions = BTreeMap::new();
    match object.get("dimensions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            if given.len() > MAX_DIMENSIONS {
                return Err(fail(format!("at most {MAX_DIMENSIONS} dimensions")));
            }
            for (name, item) in given {
                if !DIMENSIONS.contains(&name.as_str()) {
                    return Err(fail(format!("unknown dimension (allowed: {})", DIMENSIONS.join(", "))));
                }
                let Value::String(item) = item else {
                    return Err(fail(format!("dimension {name} must be a string")));
                };
                if item.is_empty() || item.chars().count() > MAX_DIMENSION_LEN || !is_clean(item) {
                    return Err(fail(format!(
                        "dimension {name} must be 1 to {MAX_DIMENSION_LEN} characters without control or invisible characters"
                    )));
                }
                dimensions.insert(name.clone(), item.clone());
            }
        }
        Some(_) => return Err(fail("dimensions must be an object of strings".into())),
    }
    Ok(Checked { index: 0, id, user_id, metric, value, at, dimensions })
}

/// An event id: 1 to [`MAX_ID_LEN`] printable ASCII characters (no spaces).
fn is_event_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Text without control characters or the invisible ones that make two values look alike
/// (zero-width, bidirectional overrides, the byte-order mark).
fn is_clean(text: &str) -> bool {
    !text.chars().any(|c| {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_dimension_values_refuse_odd_characters() {
        assert!(is_event_id("evt_01HZX-42:a/b"));
        assert!(!is_event_id("") && !is_event_id("a b") && !is_event_id("a\0b") && !is_event_id("é"));
        assert!(!is_event_id(&"x".repeat(MAX_ID_LEN + 1)));
        assert!(is_clean("gpt-4o / 東京"));
        assert!(!is_clean("a\u{202E}b") && !is_clean("a\u{200B}") && !is_clean("a\0") && !is_clean("\u{FEFF}"));
    }
}
