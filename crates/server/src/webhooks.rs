//! Inbound webhooks, one path for every provider: the raw body (at most [`MAX_BODY_BYTES`])
//! is verified before anything is stored, stored once per provider and event id together with
//! the `webhook_event` job that processes it, answered 200 at once, and processed by the job
//! queue with its retries. The stored events are the admin's log (list, inspect, replay).
//!
//! | module | what |
//! |---|---|
//! | [`intake`] | the path of a delivery: size, verification, allow-listed headers, store + enqueue |
//! | [`verify`] | which check each [`Provider`] gets (one match arm each; Apple and Google plug in there) |
//! | [`stripe`] | `Stripe-Signature`: `t=…,v1=…`, HMAC-SHA256 of `t.body`, any configured secret |
//! | [`svix`] | Clerk's Svix headers: `svix-id`, `svix-timestamp`, `svix-signature: v1,<base64>` |
//! | [`supabase`] | the database webhook's bearer secret, its event id, and the `auth.users` sync |
//! | [`clerk`] | the `user.created`/`user.updated`/`user.deleted` sync |
//! | [`process`] | the `webhook_event` job and the [`Processor`] table by provider (billing plugs in there) |
//! | [`admin`] | the admin log: list, inspect, replay (audited) |
//!
//! Replays and redeliveries are harmless: a redelivered event id is answered 200 and not
//! stored again; a processed event is not processed again unless an admin replays it, and
//! processors are written to be idempotent.

pub mod admin;
pub mod clerk;
pub mod intake;
pub mod process;
mod profile;
pub mod stripe;
pub mod supabase;
pub mod svix;
pub mod verify;

use std::fmt;

pub use intake::{IntakeDeps, Receipt, receive};
pub use process::{ProcessWebhookEvent, Processor, Processors, StoredEvent};

/// The largest webhook body accepted (413 above), whatever `MAX_BODY_BYTES` allows elsewhere.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// How far a signed timestamp may be from now, either way, in seconds.
pub const TOLERANCE_SECONDS: i64 = 300;

/// Who sends a webhook; the last segment of its route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Stripe (billing events).
    Stripe,
    /// Clerk (users, through Svix).
    Clerk,
    /// Supabase database webhooks (`auth.users`).
    Supabase,
    /// Apple App Store Server Notifications V2.
    Apple,
    /// Google Play real-time developer notifications (Pub/Sub push).
    Google,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 5] =
        [Provider::Stripe, Provider::Clerk, Provider::Supabase, Provider::Apple, Provider::Google];

    /// The name in routes, rows and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Stripe => "stripe",
            Provider::Clerk => "clerk",
            Provider::Supabase => "supabase",
            Provider::Apple => "apple",
            Provider::Google => "google",
        }
    }

    /// The provider named `name`.
    pub fn parse(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Creates the webhook counters at zero for every provider, so dashboards show 0 rather than
/// nothing before the first delivery.
pub fn register_metric_series() {
    for provider in Provider::ALL {
        let name = provider.as_str();
        metrics::counter!("omnistack_webhooks_received_total", "provider" => name, "outcome" => "stored").absolute(0);
        metrics::counter!("omnistack_webhooks_received_total", "provider" => name, "outcome" => "duplicate")
            .absolute(0);
        metrics::counter!("omnistack_webhooks_rejected_total", "provider" => name).absolute(0);
        for outcome in ["processed", "failed"] {
            metrics::counter!("omnistack_webhooks_processed_total", "provider" => name, "outcome" => outcome)
                .absolute(0);
        }
    }
}
