//! Usage metering settings (`USAGE_*`): plan limits, flushing, ingestion, Stripe meters.

use std::collections::BTreeMap;

use super::billing::Plan;
use super::parse::Vars;

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

/// `[a-z][a-z0-9_]*`, 1 to 64 characters.
fn is_metric_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `USAGE_*`.
#[derive(Clone, Debug)]
pub struct UsageSettings {
    /// `USAGE_PLAN_LIMITS`.
    pub plan_limits: PlanLimits,
    /// `USAGE_ENFORCE_API_REQUESTS`: refuse requests past the `api_requests` limit (by default
    /// that limit only alerts).
    pub enforce_api_requests: bool,
    /// `USAGE_ALERT_SWEEP_MILLISECONDS`: how often each instance looks for limits reached
    /// (default 5000).
    pub alert_sweep: std::time::Duration,
}

impl UsageSettings {
    /// The variables as `omnistack config` shows them.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
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
            alert_sweep: std::time::Duration::from_secs(5),
        }
    }
}

pub(super) fn settings(vars: &mut Vars<'_>) -> UsageSettings {
    UsageSettings {
        plan_limits: vars.optional("USAGE_PLAN_LIMITS", PlanLimits::parse).flatten().unwrap_or_default(),
        enforce_api_requests: vars.parse("USAGE_ENFORCE_API_REQUESTS", "false", super::parse::boolean).unwrap_or(false),
        alert_sweep: std::time::Duration::from_millis(
            vars.parse("USAGE_ALERT_SWEEP_MILLISECONDS", "5000", |v| super::parse::number(v, 100, 3_600_000))
                .unwrap_or(5000),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
