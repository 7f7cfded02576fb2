//! `/admin/usage/events` (usage sent by a product's own backend: an admin, or
//! `Authorization: Bearer <USAGE_API_KEY>`) and `/admin/usage/stripe-sync` (the Stripe meter
//! outbox, admins).

use crate::api::Routes;
use axum::Extension;
use axum::extract::{DefaultBodyLimit, State};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::usage::Usage;
use crate::usage::ingest::{self, Ingester, Outcome};

/// The largest ingest body (1,000 events of a few hundred bytes each fit well within it).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// `POST /admin/usage/events`, for the `ingest` group (an admin or `USAGE_API_KEY`).
pub fn ingest_routes() -> Routes {
    Routes::new().routes(routes!(ingest_events)).layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// `GET /admin/usage/stripe-sync`, for the `admin` group.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(stripe_sync))
}

/// One usage event.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct UsageEvent {
    /// Your id for the event (1 to 100 printable ASCII characters): an event with an id
    /// already counted is a duplicate and counts nothing.
    #[schema(max_length = 100)]
    pub id: String,
    /// The account.
    pub user_id: uuid::Uuid,
    /// A built-in metric or one of `USAGE_CUSTOM_METRICS`.
    #[schema(max_length = 64)]
    pub metric: String,
    /// How much; negative for an adjustment.
    pub value: i64,
    /// When it happened (RFC 3339, or Unix seconds): at most 35 days ago and 5 minutes ahead;
    /// now when absent.
    pub timestamp: Option<DateTime<Utc>>,
    /// At most 4 of `endpoint`, `model`, `provider`, `kind`, `channel`, `feature`, `region`,
    /// `source`, each 1 to 128 characters.
    pub dimensions: Option<std::collections::BTreeMap<String, String>>,
}

/// Usage events to count.
#[derive(Debug, Deserialize, ToSchema)]
pub struct IngestRequest {
    /// 1 to 1,000 events; each is checked on its own.
    #[schema(value_type = Vec<UsageEvent>, min_items = 1, max_items = 1000)]
    pub events: Vec<Value>,
}

/// What became of one event.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResult {
    /// Its position in `events`.
    pub index: usize,
    /// Its id, when it had a usable one.
    pub id: Option<String>,
    /// `accepted` (counted now), `duplicate` (counted before, not again) or `rejected`.
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// The results of an ingest call.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Events counted now.
    pub accepted: usize,
    /// Events counted before (by id).
    pub duplicates: usize,
    /// Events refused (see each result's `reason`).
    pub rejected: usize,
    /// One result per event, in the order sent.
    pub results: Vec<IngestResult>,
}

/// Counts usage events sent by a product's own backend, once per event id. Callable with an
/// admin's token or `Authorization: Bearer <USAGE_API_KEY>`.
#[utoipa::path(post, path = "/admin/usage/events", tag = "usage", request_body = IngestRequest, security(("bearer" = [])),
    responses(
        (status = OK, description = "Each event's result", body = IngestResponse),
        (status = UNAUTHORIZED, description = "No valid token or key", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "A body over 1 MiB", body = ErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "Not JSON", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "No events, more than 1,000, or not the documented shape", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn ingest_events(
    State(usage): State<Usage>,
    Extension(ingester): Extension<Ingester>,
    Json(body): Json<IngestRequest>,
) -> Result<Json<IngestResponse>> {
    let report = ingest::ingest(&usage, &ingester, &body.events).await?;
    let status = |outcome: &Outcome| match outcome {
        Outcome::Accepted => "accepted",
        Outcome::Duplicate => "duplicate",
        Outcome::Rejected => "rejected",
    };
    Ok(Json(IngestResponse {
        accepted: report.accepted,
        duplicates: report.duplicates,
        rejected: report.rejected,
        results: report
            .results
            .into_iter()
            .map(|r| IngestResult { index: r.index, status: status(&r.status).to_owned(), id: r.id, reason: r.reason })
            .collect(),
    }))
}

/// The Stripe meter outbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeSync {
    /// Meter events queued and not attempted yet.
    pub pending: i64,
    /// Meter events Stripe accepted.
    pub sent: i64,
    /// Meter events whose last attempt failed (retried with backoff; dead ones through
    /// `/admin/jobs`).
    pub failed: i64,
    /// When the oldest meter event not sent yet (pending or failed) was queued.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// How usage reporting to Stripe Billing Meters stands.
#[utoipa::path(get, path = "/admin/usage/stripe-sync", tag = "usage", security(("bearer" = [])),
    responses(
        (status = OK, description = "The meter outbox's counts", body = StripeSync),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn stripe_sync(State(db): State<Db>, AdminUser(admin): AdminUser) -> Result<Json<StripeSync>> {
    let sync = crate::usage::meters::sync_status(&db, &admin).await?;
    Ok(Json(StripeSync {
        pending: sync.pending,
        sent: sync.sent,
        failed: sync.failed,
        oldest_pending_at: sync.oldest_pending_at,
    }))
}
