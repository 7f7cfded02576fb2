//! Usage metering settings (`USAGE_*`): plan limits, flushing, ingestion, Stripe meters.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Secret;
use super::billing::Plan;
use super::parse::{self, Vars};

/// The built-in metrics; `USAGE_CUSTOM_METRICS` adds to them.
pub const BUILTIN_METRICS: [&str; 9] = [
    "api_requests",
    "ai_requests",
    "ai_tokens",
    "storage_bytes",
    "file_uploads",
    "file_downloads",
    "websocket_messages",
    "emails_sent",
    "background_jobs",
];

/// The most custom metrics `USAGE_CUSTOM_METRICS` may declare.
pub const MAX_CUSTOM_METRICS: usize = 50;

/// The longest metric name.
pub const MAX_METRIC_LEN: usize = 64;

/// One megabyte (10^6 bytes), as plan limits are quoted.
const MB: i64 = 1_000_000;

/// Each plan's limits per metric and period; a metric a plan does not list is unlimited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLimits {
    by_plan: BTreeMap<Plan, BTreeMap<String, i64>>,
}

impl Default for PlanLimits {
    /// free: 1,000 API requests, 50 AI requests, 100 MB stored; pro: 50,000, 2,000, 10 GB;
    /// enterprise: unlimited.
    fn default() -> Self {
        let plan = |limits: [(&str, i64); 3]| limits.into_iter().map(|(m, v)| (m.to_owned(), v)).collect();
        PlanLimits {
            by_plan: BTreeMap::from([
                (Plan::Free, plan([("api_requests", 1_000), ("ai_requests", 50), ("storage_bytes", 100 * MB)])),
                (Plan::Pro, plan([("api_requests", 50_000), ("ai_requests", 2_000), ("storage_bytes", 10_000 * MB)])),
                (Plan::Enterprise, BTreeMap::new()),
            ]),
        }
    }
}

impl PlanLimits {
    /// `plan`'s limit of `metric` per period, or `None` when unlimited.
    pub fn limit(&self, plan: Plan, metric: &str) -> Option<i64> {
        self.by_plan.get(&plan).and_then(|limits| limits.get(metric)).copied()
    }

    /// Whether any plan limits `metric`.
    pub fn limits_any(&self, metric: &str) -> bool {
        self.by_plan.values().any(|limits| limits.contains_key(metric))
    }

    /// Every plan's limits as `USAGE_PLAN_LIMITS` JSON (`{"free":{"ai_requests":50,…},…}`), a
    /// default limit made unlimited as `null`: parsing it gives these limits back.
    pub fn to_json(&self) -> String {
        let defaults = PlanLimits::default();
        let plans: BTreeMap<&str, BTreeMap<&str, Option<i64>>> = Plan::ALL
            .into_iter()
            .map(|plan| {
                let mut metrics: BTreeMap<&str, Option<i64>> = BTreeMap::new();
                for name in defaults.by_plan.get(&plan).into_iter().flat_map(BTreeMap::keys) {
                    metrics.insert(name.as_str(), None);
                }
                for (name, limit) in self.by_plan.get(&plan).into_iter().flatten() {
                    metrics.insert(name.as_str(), Some(*limit));
                }
                (plan.as_str(), metrics)
            })
            .collect();
        serde_json::to_string(&plans).unwrap_or_default()
    }

    /// The defaults changed by `USAGE_PLAN_LIMITS`: `{"free":{"api_requests":5000,"ai_tokens":null}}`.
    /// A plan or metric left out keeps its default; `null` makes a metric (or a whole plan)
    /// unlimited. Limits are whole numbers from 0 to 10^18; metric names are `[a-z][a-z0-9_]*`
    /// of at most 64 characters.
    pub fn parse(value: &str) -> Result<PlanLimits, String> {
        let parsed: serde_json::Value =
            serde_json::from_str(value).map_err(|err| format!("must be a JSON object of plans ({err})"))?;
        let serde_json::Value::Object(plans) = parsed else {
            return Err("must be a JSON object of plans, e.g. {\"free\":{\"api_requests\":1000}}".into());
        };
        let mut limits = PlanLimits::default();
        for (name, metrics) in plans {
            let plan = Plan::from_name(&name).ok_or_else(|| {
                format!("unknown plan {name:?} (expected {})", Plan::ALL.map(Plan::as_str).join(", "))
            })?;
            let entry = limits.by_plan.entry(plan).or_default();
            let metrics = match metrics {
                serde_json::Value::Null => {
                    entry.clear();
                    continue;
                }
                serde_json::Value::Object(metrics) => metrics,
                _ => return Err(format!("{name}: must be an object of metric limits, or null")),
            };
            for (metric, limit) in metrics {
                if !is_metric_name(&metric) {
                    return Err(format!("{name}: {metric:?} is not a metric name ([a-z][a-z0-9_]*, at most 64)"));
                }
                match limit {
                    serde_json::Value::Null => {
                        entry.remove(&metric);
                    }
                    serde_json::Value::Number(number) => {
                        let limit = number
                            .as_i64()
                            .filter(|limit| (0..=MAX_LIMIT).contains(limit))
                            .ok_or_else(|| format!("{name}.{metric}: must be a whole number from 0 to 10^18"))?;
                        entry.insert(metric, limit);
                    }
                    _ => return Err(format!("{name}.{metric}: must be a whole number, or null for unlimited")),
                }
            }
        }
        Ok(limits)
    }
}

/// The largest limit accepted: far below `i64::MAX`, so sums near it cannot overflow.
const MAX_LIMIT: i64 = 1_000_000_000_000_000_000;

/// `USAGE_*`.
#[derive(Clone, Debug)]
pub struct UsageSettings {
    /// `USAGE_PLAN_LIMITS`.
    pub plan_limits: PlanLimits,
    /// `USAGE_ENFORCE_API_REQUESTS`: refuse requests past the `api_requests` limit (by default
    /// that limit only alerts).
    pub enforce_api_requests: bool,
    /// `USAGE_METERING` (default true): count `api_requests` on the request path. Off, only
    /// the other producers count (for the overhead benchmark's A/B, or to stop metering).
    pub metering: bool,
    /// `USAGE_FLUSH_SECONDS` (default 10): how often in-memory counts are written.
    pub flush_interval: Duration,
    /// `USAGE_CUSTOM_METRICS`: metrics of the product's own, besides the built-in ones.
    pub custom_metrics: Vec<String>,
    /// `USAGE_API_KEY`: a bearer key for `POST /api/v1/admin/usage/events`, besides admin
    /// tokens.
    pub api_key: Option<Secret>,
    /// `USAGE_STRIPE_METERS`: metric → Stripe meter `event_name`.
    pub stripe_meters: BTreeMap<String, String>,
    /// `USAGE_ALERT_SWEEP_MILLISECONDS`: how often each instance looks for limits reached
    /// (default 5000).
    pub alert_sweep: std::time::Duration,
}

impl UsageSettings {
    /// Whether `metric` is built in or declared in `USAGE_CUSTOM_METRICS`.
    pub fn is_metric(&self, metric: &str) -> bool {
        BUILTIN_METRICS.contains(&metric) || self.custom_metrics.iter().any(|m| m == metric)
    }

    /// The Stripe meter `event_name` of `metric`, when it has one.
    pub fn meter_of(&self, metric: &str) -> Option<&str> {
        self.stripe_meters.get(metric).map(String::as_str)
    }

    /// The variables, as `omnistack config` shows them (secrets redacted).
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let meters: Vec<String> = self.stripe_meters.iter().map(|(m, e)| format!("{m}={e}")).collect();
        vec![
            ("USAGE_METERING", self.metering.to_string()),
            ("USAGE_FLUSH_SECONDS", self.flush_interval.as_secs().to_string()),
            ("USAGE_CUSTOM_METRICS", self.custom_metrics.join(",")),
            ("USAGE_API_KEY", self.api_key.as_ref().map(ToString::to_string).unwrap_or_default()),
            ("USAGE_STRIPE_METERS", meters.join(",")),
            ("USAGE_PLAN_LIMITS", self.plan_limits.to_json()),
            ("USAGE_ENFORCE_API_REQUESTS", self.enforce_api_requests.to_string()),
            ("USAGE_ALERT_SWEEP_MILLISECONDS", self.alert_sweep.as_millis().to_string()),
        ]
    }
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings {
            plan_limits: PlanLimits::default(),
            enforce_api_requests: false,
            metering: true,
            flush_interval: Duration::from_secs(10),
            custom_metrics: Vec::new(),
            api_key: None,
            stripe_meters: BTreeMap::new(),
            alert_sweep: Duration::from_secs(5),
        }
    }
}

/// A metric name: 1 to 64 of `a-z`, `0-9`, `_`, starting with a letter.
pub fn is_metric_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_METRIC_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn custom_metrics(value: &str) -> Result<Vec<String>, String> {
    let mut metrics: Vec<String> = Vec::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !is_metric_name(name) {
            return Err(format!("`{name}` is not a metric name (a-z, 0-9, _; at most {MAX_METRIC_LEN})"));
        }
        if BUILTIN_METRICS.contains(&name) {
            return Err(format!("`{name}` is a built-in metric"));
        }
        if !metrics.iter().any(|m| m == name) {
            metrics.push(name.to_owned());
        }
    }
    if metrics.len() > MAX_CUSTOM_METRICS {
        return Err(format!("at most {MAX_CUSTOM_METRICS} custom metrics"));
    }
    Ok(metrics)
}

fn stripe_meters(value: &str) -> Result<BTreeMap<String, String>, String> {
    let mut meters = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (metric, event_name) =
            pair.split_once('=').ok_or_else(|| format!("`{pair}` is not `metric=event_name`"))?;
        let (metric, event_name) = (metric.trim(), event_name.trim());
        if !is_metric_name(metric) {
            return Err(format!("`{metric}` is not a metric name"));
        }
        let valid_event = !event_name.is_empty()
            && event_name.len() <= 100
            && event_name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if !valid_event {
            return Err(format!("`{event_name}` is not a meter event name (at most 100 of A-Z a-z 0-9 _ - . :)"));
        }
        if meters.insert(metric.to_owned(), event_name.to_owned()).is_some() {
            return Err(format!("`{metric}` is mapped twice"));
        }
    }
    Ok(meters)
}

fn api_key(value: &str) -> Result<Secret, String> {
    if value.len() < 32 {
        return Err("must be at least 32 characters (e.g. `openssl rand -hex 24`)".into());
    }
    Ok(Secret::new(value))
}

pub(super) fn settings(vars: &mut Vars<'_>) -> UsageSettings {
    let custom_metrics = vars.parse("USAGE_CUSTOM_METRICS", "", custom_metrics).unwrap_or_default();
    let stripe_meters: BTreeMap<String, String> =
        vars.parse("USAGE_STRIPE_METERS", "", stripe_meters).unwrap_or_default();
    for metric in stripe_meters.keys() {
        if !BUILTIN_METRICS.contains(&metric.as_str()) && !custom_metrics.contains(metric) {
            vars.problem("USAGE_STRIPE_METERS", &format!("`{metric}` is neither built in nor in USAGE_CUSTOM_METRICS"));
        }
    }
    UsageSettings {
        plan_limits: vars.optional("USAGE_PLAN_LIMITS", PlanLimits::parse).flatten().unwrap_or_default(),
        enforce_api_requests: vars.parse("USAGE_ENFORCE_API_REQUESTS", "false", super::parse::boolean).unwrap_or(false),
        metering: vars.parse("USAGE_METERING", "true", parse::boolean).unwrap_or(true),
        flush_interval: Duration::from_secs(
            vars.parse("USAGE_FLUSH_SECONDS", "10", |v| parse::number(v, 1, 3600)).unwrap_or(10),
        ),
        custom_metrics,
        api_key: vars.optional("USAGE_API_KEY", api_key).flatten(),
        stripe_meters,
        alert_sweep: Duration::from_millis(
            vars.parse("USAGE_ALERT_SWEEP_MILLISECONDS", "5000", |v| super::parse::number(v, 100, 3_600_000))
                .unwrap_or(5000),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::Config;
    use super::*;

    fn load(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|name| vars.get(name).cloned()).map_err(|err| err.to_string())
    }

    #[test]
    fn metering_variables_default_and_are_checked() {
        let usage = load(&[]).unwrap().usage;
        assert!(usage.metering && usage.api_key.is_none() && usage.stripe_meters.is_empty());
        assert_eq!(usage.flush_interval.as_secs(), 10);
        let usage = load(&[
            ("USAGE_METERING", "false"),
            ("USAGE_FLUSH_SECONDS", "2"),
            ("USAGE_CUSTOM_METRICS", "widgets, reports_built,widgets"),
            ("USAGE_STRIPE_METERS", "ai_tokens=llm_tokens, widgets=widget.count"),
        ])
        .unwrap()
        .usage;
        assert!(!usage.metering);
        assert_eq!(usage.custom_metrics, ["widgets", "reports_built"]);
        assert!(usage.is_metric("widgets") && usage.is_metric("api_requests") && !usage.is_metric("bitcoins"));
        assert_eq!(usage.meter_of("widgets"), Some("widget.count"));
        assert_eq!(usage.meter_of("api_requests"), None);
        for (name, value) in [
            ("USAGE_FLUSH_SECONDS", "0"),
            ("USAGE_CUSTOM_METRICS", "api_requests"),
            ("USAGE_CUSTOM_METRICS", "Bad-Name"),
            ("USAGE_STRIPE_METERS", "bitcoins=coins"),
            ("USAGE_STRIPE_METERS", "ai_tokens"),
            ("USAGE_STRIPE_METERS", "ai_tokens=a b"),
            ("USAGE_API_KEY", "short"),
        ] {
            let err = load(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn the_usage_api_key_is_never_printed() {
        let key = "u".repeat(40);
        let config = load(&[("USAGE_API_KEY", key.as_str())]).unwrap();
        assert_eq!(config.usage.api_key.as_ref().map(|k| k.expose()), Some(key.as_str()));
        let described: HashMap<_, _> = config.describe().into_iter().collect();
        assert_eq!(described["USAGE_API_KEY"], "[REDACTED]");
        assert!(!format!("{config:?}").contains(&key));
    }

    #[test]
    fn plan_limits_change_only_what_they_name() {
        let limits = PlanLimits::parse(
            r#"{"free":{"api_requests":5,"ai_requests":null,"custom_thing":7},"enterprise":{"ai_tokens":9}}"#,
        )
        .unwrap();
        assert_eq!(limits.limit(Plan::Free, "api_requests"), Some(5));
        assert_eq!(limits.limit(Plan::Free, "ai_requests"), None, "null is unlimited");
        assert_eq!(limits.limit(Plan::Free, "storage_bytes"), Some(100 * MB), "left out keeps its default");
        assert_eq!(limits.limit(Plan::Free, "custom_thing"), Some(7));
        assert_eq!(limits.limit(Plan::Pro, "api_requests"), Some(50_000), "a plan left out keeps its defaults");
        assert_eq!(limits.limit(Plan::Enterprise, "ai_tokens"), Some(9));
        let unlimited = PlanLimits::parse(r#"{"pro":null}"#).unwrap();
        assert_eq!(unlimited.limit(Plan::Pro, "api_requests"), None);
        assert_eq!(PlanLimits::parse("{}").unwrap(), PlanLimits::default());
        assert_eq!(PlanLimits::parse(&limits.to_json()).unwrap(), limits, "what `omnistack config` shows reads back");
    }

    #[test]
    fn bad_plan_limits_say_what_is_wrong() {
        for (value, says) in [
            ("[1]", "JSON object"),
            ("{", "JSON object"),
            (r#"{"gold":{}}"#, "unknown plan"),
            (r#"{"free":5}"#, "object of metric limits"),
            (r#"{"free":{"Api":1}}"#, "not a metric name"),
            (r#"{"free":{"api_requests":-1}}"#, "from 0 to 10^18"),
            (r#"{"free":{"api_requests":1.5}}"#, "from 0 to 10^18"),
            (r#"{"free":{"api_requests":"10"}}"#, "whole number"),
        ] {
            let err = PlanLimits::parse(value).unwrap_err();
            assert!(err.contains(says), "{value}: {err}");
        }
    }
}
