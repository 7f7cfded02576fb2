//! The subscription's vocabulary. A status other than `active` or `trialing` leaves the
//! account on the effective plan `free`, whatever plan it names.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use omnistack_db::billing::SubscriptionRow;
use serde_json::{Value, json};

use crate::config::Plan;

/// Where a subscription was bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    /// Stripe (the web).
    Stripe,
    /// The App Store.
    Apple,
    /// Google Play.
    Google,
}

impl Store {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Store::Stripe => "stripe",
            Store::Apple => "apple",
            Store::Google => "google",
        }
    }

    fn from_name(name: &str) -> Option<Store> {
        [Store::Stripe, Store::Apple, Store::Google].into_iter().find(|store| store.as_str() == name)
    }
}

/// A subscription's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// Never subscribed (stored as `inactive`, the name v1's account shape has always used).
    None,
    /// In a trial: the plan applies.
    Trialing,
    /// Paid: the plan applies.
    Active,
    /// A payment failed; the store is retrying.
    PastDue,
    /// Ended.
    Canceled,
    /// The first payment has not succeeded yet.
    Incomplete,
}

impl SubscriptionStatus {
    /// Every status.
    pub const ALL: [SubscriptionStatus; 6] = [
        SubscriptionStatus::None,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::Active,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Incomplete,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::None => "none",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Canceled => "canceled",
            SubscriptionStatus::Incomplete => "incomplete",
        }
    }

    /// The stored name.
    pub fn stored(self) -> &'static str {
        match self {
            SubscriptionStatus::None => "inactive",
            other => other.as_str(),
        }
    }

    fn from_stored(name: &str) -> SubscriptionStatus {
        SubscriptionStatus::ALL.into_iter().find(|status| status.stored() == name).unwrap_or(SubscriptionStatus::None)
    }

    /// Whether the plan applies.
    pub fn grants_plan(self) -> bool {
        matches!(self, SubscriptionStatus::Active | SubscriptionStatus::Trialing)
    }
}

/// The plan an account with the stored `plan` and `status` gets: the plan while the status
/// grants it, else `free`.
pub fn effective_plan(plan: &str, status: &str) -> Plan {
    if SubscriptionStatus::from_stored(status).grants_plan() {
        Plan::from_name(plan).unwrap_or(Plan::Free)
    } else {
        Plan::Free
    }
}

/// An account's subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The plan subscribed to.
    pub plan: Plan,
    /// Its state.
    pub status: SubscriptionStatus,
    /// Where it was bought; `None` when never subscribed.
    pub store: Option<Store>,
    /// The end of the paid period (microsecond precision, as stored).
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends at `current_period_end`.
    pub cancel_at_period_end: bool,
}

impl Subscription {
    /// No subscription.
    pub fn none() -> Subscription {
        Subscription {
            plan: Plan::Free,
            status: SubscriptionStatus::None,
            store: None,
            current_period_end: None,
            cancel_at_period_end: false,
        }
    }

    /// The plan the account gets: `plan` while the status grants it, else `free`.
    pub fn effective_plan(&self) -> Plan {
        if self.status.grants_plan() { self.plan } else { Plan::Free }
    }

    /// From the stored columns; unknown names read as no subscription (the columns' CHECK
    /// constraints and this module keep them out).
    pub fn from_row(row: &SubscriptionRow) -> Subscription {
        Subscription {
            plan: Plan::from_name(&row.plan).unwrap_or(Plan::Free),
            status: SubscriptionStatus::from_stored(&row.status),
            store: row.store.as_deref().and_then(Store::from_name),
            current_period_end: row.current_period_end,
            cancel_at_period_end: row.cancel_at_period_end,
        }
    }

    /// The stored columns.
    pub fn to_row(&self) -> SubscriptionRow {
        SubscriptionRow {
            plan: self.plan.as_str().to_owned(),
            status: self.status.stored().to_owned(),
            store: self.store.map(|store| store.as_str().to_owned()),
            current_period_end: self.current_period_end.map(|t| t.trunc_subsecs(6)),
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }

    /// `{plan, effective_plan, status, store, current_period_end, cancel_at_period_end}`.
    pub fn to_json(&self) -> Value {
        json!({
            "plan": self.plan.as_str(),
            "effective_plan": self.effective_plan().as_str(),
            "status": self.status.as_str(),
            "store": self.store.map(Store::as_str),
            "current_period_end": self.current_period_end.map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true)),
            "cancel_at_period_end": self.cancel_at_period_end,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_and_trialing_grant_the_plan() {
        for status in SubscriptionStatus::ALL {
            let sub = Subscription { plan: Plan::Pro, status, ..Subscription::none() };
            let expected = if matches!(status, SubscriptionStatus::Active | SubscriptionStatus::Trialing) {
                Plan::Pro
            } else {
                Plan::Free
            };
            assert_eq!(sub.effective_plan(), expected, "{status:?}");
        }
    }

    #[test]
    fn subscriptions_round_trip_through_their_columns() {
        let sub = Subscription {
            plan: Plan::Enterprise,
            status: SubscriptionStatus::PastDue,
            store: Some(Store::Google),
            current_period_end: Some(omnistack_db::time::now()),
            cancel_at_period_end: true,
        };
        assert_eq!(Subscription::from_row(&sub.to_row()), sub);
        assert_eq!(Subscription::none().to_row().status, "inactive", "v1's name for no subscription");
        assert_eq!(Subscription::from_row(&Subscription::none().to_row()), Subscription::none());
    }
}
