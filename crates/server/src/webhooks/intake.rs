//! A delivery's path: verified first (a refusal stores nothing and logs nothing; it is
//! counted in `omnistack_webhooks_rejected_total`), then stored once with the job that
//! processes it, in one transaction. A redelivered event id stores nothing and is answered
//! like the first delivery, so the provider stops sending it.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use omnistack_db::Db;
use omnistack_db::webhook_events::{self, NewWebhookEvent};
use uuid::Uuid;

use super::process::{ProcessWebhookEvent, WebhookEventArgs};
use super::{Provider, verify};
use crate::config::Config;
use crate::error::{Error, FieldError, Result};
use crate::jobs::{Enqueue, Jobs};

/// The request headers kept with an event, for the admin's debugging: what identifies and
/// signs a delivery, never a credential (`Authorization`, `Cookie` and the rest are dropped).
pub const STORED_HEADERS: [&str; 7] =
    ["content-type", "user-agent", "stripe-signature", "svix-id", "svix-timestamp", "svix-signature", "x-request-id"];
/// Longest header value kept, in bytes (cut at a character boundary).
const MAX_HEADER_VALUE: usize = 1024;

/// What intake needs.
#[derive(Clone, Copy, Debug)]
pub struct IntakeDeps<'a> {
    /// Where events are stored.
    pub db: &'a Db,
    /// Where their processing is enqueued.
    pub jobs: &'a Jobs,
    /// The providers' secrets.
    pub config: &'a Config,
    /// The in-app purchase stores' clients.
    pub stores: &'a crate::billing::Stores,
}

/// What a delivery got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Stored (this row id), its processing enqueued.
    Stored(Uuid),
    /// Already stored: a redelivery, not processed again.
    Duplicate,
}

/// Takes a delivery of `provider` whose body (at most [`super::MAX_BODY_BYTES`]) was read.
pub async fn receive(deps: IntakeDeps<'_>, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Receipt> {
    let now = chrono::Utc::now().timestamp();
    let verified = match verify::verify(provider, deps.config, deps.stores, headers, body, now).await {
        Ok(verified) => verified,
        Err(err) => {
            if matches!(err, Error::InvalidSignature(_) | Error::Authentication(_)) {
                metrics::counter!("omnistack_webhooks_rejected_total", "provider" => provider.as_str()).increment(1);
            }
            return Err(err);
        }
    };
    let payload = std::str::from_utf8(body)
        .map_err(|_| Error::Validation(vec![FieldError::new("body", "must be UTF-8 JSON")]))?;
    let stored_headers = serde_json::to_string(&kept_headers(headers)).map_err(anyhow::Error::from)?;
    let new = NewWebhookEvent {
        provider: provider.as_str(),
        event_id: &verified.event_id,
        event_type: &verified.event_type,
        headers: &stored_headers,
        payload,
    };
    let mut tx = deps.db.begin().await?;
    let Some(event) = webhook_events::insert_event(&mut tx, &new).await? else {
        drop(tx);
        metrics::counter!("omnistack_webhooks_received_total", "provider" => provider.as_str(), "outcome" => "duplicate")
            .increment(1);
        return Ok(Receipt::Duplicate);
    };
    let options = Enqueue { unique_key: Some(format!("webhook_event:{}", event.id)), ..Enqueue::default() };
    deps.jobs.enqueue::<ProcessWebhookEvent>(&mut tx, &WebhookEventArgs { event: event.id }, options).await?;
    tx.commit().await?;
    deps.jobs.wake();
    metrics::counter!("omnistack_webhooks_received_total", "provider" => provider.as_str(), "outcome" => "stored")
        .increment(1);
    tracing::info!(webhook.id = %event.id, webhook.provider = provider.as_str(), webhook.type = %event.event_type, "webhook stored");
    Ok(Receipt::Stored(event.id))
}

/// The allow-listed headers, each value cut to [`MAX_HEADER_VALUE`] bytes.
pub fn kept_headers(headers: &HeaderMap) -> BTreeMap<&'static str, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.to_str().ok()?;
            let mut end = value.len().min(MAX_HEADER_VALUE);
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            Some((*name, value[..end].to_owned()))
        })
        .collect()
}
