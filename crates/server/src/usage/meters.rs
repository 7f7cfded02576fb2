//! Stripe Billing Meters: usage of metrics with a meter (`USAGE_STRIPE_METERS`), of accounts
//! with a Stripe customer, is queued in `usage_meter_events` in the transaction that adds it to
//! the aggregates, with a job ([`SendMeterEvent`]) that posts it to
//! `POST /v1/billing/meter_events`.
//!
//! Exactly once: the `identifier` is derived from our own event id or flush batch id (never
//! random at send time), so the row is written once (its primary key) and a resend after a
//! crash or a lost answer is deduplicated by Stripe (by `identifier`, for at least 24 hours,
//! and by the `Idempotency-Key`) and by us (a row already `sent` is not sent again).

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use omnistack_db::Tx;
use omnistack_db::jobs::Job;
use omnistack_db::usage::{self as db_usage, NewMeterEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::billing::stripe::client::Form;
use crate::billing::stripe::{StripeClient, StripeError};
use crate::error::Result;
use crate::jobs::{Enqueue, JobContext, JobError, JobKind, Jobs};

/// A Stripe `identifier` for the usage `key` stands for (`<prefix>_` and 40 hex digits of
/// its SHA-256: at most 100 characters whatever the key, the same for the same key).
pub fn identifier(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{prefix}_{}", &hex::encode(digest)[..40])
}

/// Queues the meter event `identifier` and the job that sends it, in `tx`; true when it was
/// new.
#[allow(clippy::too_many_arguments)]
pub async fn queue(
    jobs: &Jobs,
    tx: &mut Tx,
    identifier: String,
    user_id: Uuid,
    metric: &str,
    event_name: &str,
    stripe_customer_id: String,
    value: i64,
    occurred_at: DateTime<Utc>,
) -> Result<bool> {
    let event = NewMeterEvent {
        identifier,
        user_id,
        metric: metric.to_owned(),
        event_name: event_name.to_owned(),
        stripe_customer_id,
        value,
        occurred_at,
    };
    if !db_usage::queue_meter_event(tx, &event).await? {
        return Ok(false);
    }
    // No `user_id` on the job: sending usage must not count as the account's background job.
    let unique_key = Some(format!("usage_meter:{}", event.identifier));
    let args = MeterEventArgs { identifier: event.identifier };
    jobs.enqueue::<SendMeterEvent>(&mut *tx, &args, Enqueue { unique_key, ..Enqueue::default() }).await?;
    Ok(true)
}

/// The meter outbox's counts by status (admins).
pub async fn sync_status(db: &omnistack_db::Db, caller: &crate::auth::CurrentUser) -> Result<db_usage::MeterSync> {
    caller.require(crate::auth::Role::Admin)?;
    Ok(db_usage::meter_sync(db).await?)
}

/// The arguments of a [`SendMeterEvent`] job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeterEventArgs {
    /// The queued event (`usage_meter_events.identifier`).
    pub identifier: String,
}

/// `usage_meter_event`: posts one queued meter event to Stripe and marks it sent; a failed
/// attempt marks it `failed` with the error (retried with backoff; a dead job can be retried
/// through the job admin).
#[derive(Debug, Default)]
pub struct SendMeterEvent {
    client: OnceLock<StripeClient>,
}

impl SendMeterEvent {
    fn client(&self, ctx: &JobContext) -> std::result::Result<&StripeClient, JobError> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let settings = ctx.config.billing.stripe.as_ref().ok_or_else(|| {
            JobError::Retry(anyhow::anyhow!("Stripe is not configured (STRIPE_SECRET_KEY) on this instance"))
        })?;
        let client = StripeClient::new(settings).map_err(|err| JobError::Retry(err.into()))?;
        Ok(self.client.get_or_init(|| client))
    }
}

impl JobKind for SendMeterEvent {
    const KIND: &'static str = "usage_meter_event";
    type Args = MeterEventArgs;

    async fn run(
        &self,
        ctx: &JobContext,
        _job: &Job,
        args: MeterEventArgs,
    ) -> std::result::Result<Option<Value>, JobError> {
        let Some(event) = db_usage::find_meter_event(&ctx.db, &args.identifier).await? else {
            return Err(JobError::Permanent(anyhow::anyhow!("no meter event {} is queued", args.identifier)));
        };
        if event.status == "sent" {
            return Ok(None);
        }
        let client = self.client(ctx)?;
        let form: Form = vec![
            ("event_name".into(), event.event_name.clone()),
            ("payload[stripe_customer_id]".into(), event.stripe_customer_id.clone()),
            ("payload[value]".into(), event.value.to_string()),
            ("timestamp".into(), event.occurred_at.timestamp().to_string()),
            ("identifier".into(), event.identifier.clone()),
        ];
        let idempotency_key = format!("meter-event-{}", event.identifier);
        match client.post("billing/meter_events", &form, &idempotency_key).await {
            Ok(_) => {
                db_usage::mark_meter_event_sent(&ctx.db, &event.identifier).await?;
                metrics::counter!("omnistack_usage_meter_events_total", "outcome" => "sent").increment(1);
                Ok(None)
            }
            Err(err) if already_recorded(&err) => {
                // Stripe holds an event with this identifier: a send whose answer was lost.
                db_usage::mark_meter_event_sent(&ctx.db, &event.identifier).await?;
                metrics::counter!("omnistack_usage_meter_events_total", "outcome" => "duplicate").increment(1);
                Ok(None)
            }
            Err(err) => {
                let message = err.to_string();
                db_usage::mark_meter_event_failed(&ctx.db, &event.identifier, &message).await?;
                metrics::counter!("omnistack_usage_meter_events_total", "outcome" => "failed").increment(1);
                if err.is_transient() || matches!(err, StripeError::Refused { status: 429, .. }) {
                    Err(JobError::Retry(anyhow::anyhow!(message)))
                } else {
                    Err(JobError::Permanent(anyhow::anyhow!(message)))
                }
            }
        }
    }
}

/// Whether Stripe refused the event because one with its identifier already exists.
fn already_recorded(err: &StripeError) -> bool {
    match err {
        StripeError::Refused { status: 400, message, code, .. } => {
            let message = message.to_ascii_lowercase();
            code.as_deref().is_some_and(|c| c.contains("duplicate"))
                || (message.contains("identifier") && (message.contains("already") || message.contains("duplicate")))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_stable_short_and_distinct() {
        let a = identifier("flush", "batch:user:ai_tokens:2026-12-01");
        assert_eq!(a, identifier("flush", "batch:user:ai_tokens:2026-12-01"));
        assert_ne!(a, identifier("flush", "batch:user:ai_tokens:2026-12-02"));
        assert_eq!(a.len(), "flush_".len() + 40);
        assert!(identifier("evt", &"x".repeat(10_000)).len() <= 100);
    }

    #[test]
    fn a_duplicate_identifier_is_recognised() {
        let refused = |message: &str| StripeError::Refused {
            status: 400,
            kind: "invalid_request_error".into(),
            code: None,
            message: message.into(),
        };
        assert!(already_recorded(&refused("An event with identifier flush_1 already exists")));
        assert!(!already_recorded(&refused("No such customer: cus_1")));
        assert!(!already_recorded(&StripeError::Unreachable("HTTP 500".into())));
    }
}
