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
}

/// `USAGE_*`.
#[derive(Clone, Debug, Default)]
pub struct UsageSettings {
    /// `USAGE_PLAN_LIMITS`.
    pub plan_limits: PlanLimits,
    /// `USAGE_ENFORCE_API_REQUESTS`: refuse requests past the `api_requests` limit (by default
    /// that limit only alerts).
    pub enforce_api_requests: bool,
}

pub(super) fn settings(vars: &mut Vars<'_>) -> UsageSettings {
    UsageSettings {
        plan_limits: PlanLimits::default(),
        enforce_api_requests: vars.parse("USAGE_ENFORCE_API_REQUESTS", "false", super::parse::boolean).unwrap_or(false),
    }
}
