//! The `webhook_event` job: processes one stored event with its provider's [`Processor`],
//! and records the outcome on the event (`processed`, or `failed` with the attempt's error;
//! the queue retries a failure with backoff until `JOBS_MAX_ATTEMPTS`, and an admin may
//! replay it after that).
//!
//! Processors plug in by provider in [`Processors::standard`]: Clerk and Supabase keep the
//! users table in sync; the billing processors (Stripe, Apple, Google) are added there. An
//! event of a provider without a processor, or of a type its processor does not act on, is
//! marked processed: received and deliberately ignored.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use omnistack_db::jobs::Job;
use omnistack_db::webhook_events::{self, WebhookEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::Provider;
use crate::jobs::{JobContext, JobError, JobKind};

/// A stored event, as a processor gets it.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    /// The row's id.
    pub id: Uuid,
    /// Who sent it.
    pub provider: Provider,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type.
    pub event_type: String,
    /// The body, parsed.
    pub payload: Value,
}

impl StoredEvent {
    /// The event of a stored row; `None` for a provider or a body this version cannot read.
    pub fn from_row(row: &WebhookEvent) -> Option<StoredEvent> {
        Some(StoredEvent {
            id: row.id,
            provider: Provider::parse(&row.provider)?,
            event_id: row.event_id.clone(),
            event_type: row.event_type.clone(),
            payload: serde_json::from_str(&row.payload).ok()?,
        })
    }
}

/// What acts on one provider's events. `process` must be idempotent: an event is processed
/// again when an admin replays it, or when a worker dies after processing it. Return
/// [`JobError::Retry`] (any `?` error) for what may pass (a database or network failure),
/// [`JobError::Permanent`] for what never will (a malformed event); return `Ok` for a type
/// it does not act on.
pub trait Processor: Send + Sync + 'static {
    /// Acts on `event`.
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>>;
}

/// The processor of each provider.
#[derive(Clone, Default)]
pub struct Processors {
    by_provider: HashMap<Provider, Arc<dyn Processor>>,
}

impl std::fmt::Debug for Processors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut providers: Vec<_> = self.by_provider.keys().map(|p| p.as_str()).collect();
        providers.sort_unstable();
        f.debug_set().entries(providers).finish()
    }
}

impl Processors {
    /// The service's own processors.
    pub fn standard() -> Processors {
        Processors::default()
            .with(Provider::Clerk, super::clerk::ClerkUsers)
            .with(Provider::Supabase, super::supabase::SupabaseUsers)
            .with(Provider::Stripe, crate::billing::stripe::StripeEvents::default())
            .with(Provider::Apple, crate::billing::stores::AppleNotifications)
            .with(Provider::Google, crate::billing::stores::GoogleNotifications)
    }

    /// Sets `provider`'s processor (replacing any).
    pub fn with(mut self, provider: Provider, processor: impl Processor) -> Processors {
        self.by_provider.insert(provider, Arc::new(processor));
        self
    }

    /// `provider`'s processor, if it has one.
    pub fn get(&self, provider: Provider) -> Option<&Arc<dyn Processor>> {
        self.by_provider.get(&provider)
    }
}

/// The arguments of a `webhook_event` job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WebhookEventArgs {
    /// The stored event's row id.
    pub event: Uuid,
}

/// Processes stored webhook events (see the module documentation).
#[derive(Clone, Debug)]
pub struct ProcessWebhookEvent {
    processors: Processors,
}

impl Default for ProcessWebhookEvent {
    fn default() -> Self {
        ProcessWebhookEvent::new(Processors::standard())
    }
}

impl ProcessWebhookEvent {
    /// The kind, with these processors.
    pub fn new(processors: Processors) -> ProcessWebhookEvent {
        ProcessWebhookEvent { processors }
    }
}

impl JobKind for ProcessWebhookEvent {
    const KIND: &'static str = "webhook_event";
    type Args = WebhookEventArgs;

    async fn run(&self, ctx: &JobContext, _job: &Job, args: WebhookEventArgs) -> Result<Option<Value>, JobError> {
        let Some(row) = webhook_events::find_event(&ctx.db, args.event).await? else {
            return Err(JobError::Permanent(anyhow::anyhow!("webhook event {} does not exist", args.event)));
        };
        if row.status == "processed" {
            // Already done (a worker died after processing it): nothing to repeat.
            return Ok(None);
        }
        let result = match StoredEvent::from_row(&row) {
            None => Err(JobError::Permanent(anyhow::anyhow!("the stored event cannot be read (provider or JSON)"))),
            Some(event) => match self.processors.get(event.provider) {
                Some(processor) => processor.process(ctx, &event).await,
                None => Ok(()),
            },
        };
        let outcome = if result.is_ok() { "processed" } else { "failed" };
        metrics::counter!("omnistack_webhooks_processed_total", "provider" => provider_label(&row.provider), "outcome" => outcome)
            .increment(1);
        match result {
            Ok(()) => {
                webhook_events::mark_processed(&ctx.db, row.id).await?;
                Ok(None)
            }
            Err(err) => {
                let message: String = err.to_string().chars().take(MAX_ERROR_LEN).collect();
                if let Err(stored) = webhook_events::mark_failed(&ctx.db, row.id, &message).await {
                    tracing::warn!(webhook.id = %row.id, error = %stored, "could not record a webhook failure");
                }
                Err(err)
            }
        }
    }
}

/// Longest error text kept with an event.
const MAX_ERROR_LEN: usize = 2000;

/// A bounded metric label for a stored provider name.
fn provider_label(name: &str) -> &'static str {
    Provider::parse(name).map_or("unknown", Provider::as_str)
}
