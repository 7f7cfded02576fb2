//! The in-app purchase stores as the rest of the service sees them: the Google Play clients
//! (shared caches: Google's keys, the Publisher API's access token) and the webhook processors
//! of both stores.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::apple::{self, ApplyError};
use super::google::{self, GooglePlay};
use crate::config::Config;
use crate::jobs::{JobContext, JobError};
use crate::webhooks::{Processor, StoredEvent};

/// The stores' clients; a store that is not configured has none (its routes answer 503).
#[derive(Clone, Debug, Default)]
pub struct Stores {
    /// Google Play, when `GOOGLE_*` is configured.
    pub google: Option<Arc<GooglePlay>>,
}

impl Stores {
    /// The clients of the configured stores.
    pub fn new(config: &Config, http: reqwest::Client) -> anyhow::Result<Stores> {
        let google = match &config.stores.google {
            Some(settings) => Some(Arc::new(GooglePlay::new(settings, http)?)),
            None => None,
        };
        Ok(Stores { google })
    }
}

fn job_error(err: ApplyError) -> JobError {
    match err {
        ApplyError::Retry(err) => JobError::Retry(anyhow::anyhow!("{err}")),
        ApplyError::Permanent(message) => JobError::Permanent(anyhow::anyhow!(message)),
    }
}

/// Processes App Store Server Notifications (see [`apple`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct AppleNotifications;

impl Processor for AppleNotifications {
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let notification = apple::decode_notification(&event.payload)
                .map_err(|err| JobError::Permanent(anyhow::anyhow!("{err}")))?;
            if let Some((user_id, sub)) =
                apple::apply_notification(&ctx.db, &ctx.config.billing, &notification).await.map_err(job_error)?
            {
                super::announce(&ctx.hub, user_id, &sub).await;
            }
            Ok(())
        })
    }
}

/// Processes Google Play notifications (see [`google`]): the purchase is read from the
/// Publisher API and applied; test, one-time product and other notifications are ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct GoogleNotifications;

impl Processor for GoogleNotifications {
    fn process<'a>(&'a self, ctx: &'a JobContext, event: &'a StoredEvent) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let body = serde_json::to_vec(&event.payload).map_err(anyhow::Error::from)?;
            let (_, notification) =
                google::decode_push(&body).map_err(|err| JobError::Permanent(anyhow::anyhow!("{err}")))?;
            let Some(token) = google::token_of(&notification) else { return Ok(()) };
            let Some(play) = &ctx.stores.google else {
                return Err(JobError::Retry(anyhow::anyhow!("Google Play is not configured (GOOGLE_PLAY_*)")));
            };
            if let Some((user_id, sub)) =
                google::apply_token(&ctx.db, &ctx.config.billing, play, token, &event.event_id)
                    .await
                    .map_err(job_error)?
            {
                super::announce(&ctx.hub, user_id, &sub).await;
            }
            Ok(())
        })
    }
}
