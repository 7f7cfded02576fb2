//! `/admin/webhooks`: the inbound webhook log (admins): list, inspect, replay.

use std::collections::BTreeMap;

use crate::api::Routes;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use omnistack_db::Db;
use omnistack_db::webhook_events::{WebhookEvent, WebhookEventSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

use crate::admin::audit::AuditContext;
use crate::auth::AdminUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Query};
use crate::state::AppState;
use crate::webhooks::admin;

/// The webhook log routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(list_webhooks)).routes(routes!(get_webhook)).routes(routes!(replay_webhook))
}

/// An event, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSummary {
    /// The row's id.
    pub id: Uuid,
    /// `stripe`, `clerk`, `supabase`, `apple` or `google`.
    pub provider: String,
    /// The provider's event id.
    pub event_id: String,
    /// The provider's event type.
    pub event_type: String,
    /// `received`, `processed` or `failed` (the last attempt failed; retried by the queue).
    pub status: String,
    /// Processing attempts so far.
    pub attempts: i32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was stored.
    pub received_at: DateTime<Utc>,
    /// When it was last processed.
    pub processed_at: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<WebhookEventSummary> for WebhookSummary {
    fn from(e: WebhookEventSummary) -> Self {
        WebhookSummary {
            id: e.id,
            provider: e.provider,
            event_id: e.event_id,
            event_type: e.event_type,
            status: e.status,
            attempts: e.attempts,
            last_error: e.last_error,
            received_at: e.received_at,
            processed_at: e.processed_at,
            updated_at: e.updated_at,
        }
    }
}

/// One event with its allow-listed headers and its payload.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDetail {
    /// Everything a listing shows.
    #[serde(flatten)]
    pub summary: WebhookSummary,
    /// The allow-listed request headers (never `Authorization` or `Cookie`).
    pub headers: BTreeMap<String, String>,
    /// The body as received, parsed (a string when it is not JSON).
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl From<WebhookEvent> for WebhookDetail {
    fn from(e: WebhookEvent) -> Self {
        let headers = serde_json::from_str(&e.headers).unwrap_or_default();
        let payload = serde_json::from_str(&e.payload).unwrap_or(Value::String(e.payload));
        WebhookDetail {
            summary: WebhookSummary {
                id: e.id,
                provider: e.provider,
                event_id: e.event_id,
                event_type: e.event_type,
                status: e.status,
                attempts: e.attempts,
                last_error: e.last_error,
                received_at: e.received_at,
                processed_at: e.processed_at,
                updated_at: e.updated_at,
            },
            headers,
            payload,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// The page, newest first.
    pub items: Vec<WebhookSummary>,
    /// Events matching, across pages.
    pub total: i64,
    /// Events skipped.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// Filters and page of the listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookListParams {
    /// Only this provider.
    #[param(max_length = 20)]
    pub provider: Option<String>,
    /// Only this status (`received`, `processed`, `failed`).
    #[param(max_length = 20)]
    pub status: Option<String>,
    /// Events to skip (default 0).
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// Lists received webhooks, newest first.
#[utoipa::path(get, path = "/admin/webhooks", tag = "webhooks", params(WebhookListParams), security(("bearer" = [])),
    responses(
        (status = OK, description = "A page of events", body = WebhookList),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad filter or page", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn list_webhooks(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Query(params): Query<WebhookListParams>,
) -> Result<Json<WebhookList>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let page =
        admin::list_events(&db, &admin, params.provider.as_deref(), params.status.as_deref(), skip, limit).await?;
    Ok(Json(WebhookList { items: page.items.into_iter().map(Into::into).collect(), total: page.total, skip, limit }))
}

/// One event: headers (allow-listed), payload, attempts, last error.
#[utoipa::path(get, path = "/admin/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id", max_length = 36)),
    responses(
        (status = OK, description = "The event", body = WebhookDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such event", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn get_webhook(
    State(db): State<Db>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<WebhookDetail>> {
    Ok(Json(admin::find_event(&db, &admin, &id).await?.into()))
}

/// Processes an event again (audited `webhook.replayed`).
#[utoipa::path(post, path = "/admin/webhooks/{id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id", max_length = 36)),
    responses(
        (status = OK, description = "The event, queued for processing", body = WebhookDetail),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin, or a deactivated account", body = ErrorBody),
        (status = NOT_FOUND, description = "No such event", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn replay_webhook(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    context: AuditContext,
    Path(id): Path<String>,
) -> Result<Json<WebhookDetail>> {
    let event = admin::replay_event(&state.db, &state.jobs, &admin, &context, &id).await?;
    state.jobs.wake();
    Ok(Json(event.into()))
}
