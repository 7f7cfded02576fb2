//! Realtime in v1: tickets and status (`/app/ws/…`, guarded) and the admin broadcast
//! (`/admin/ws/broadcast`). The socket itself is the same in every version (`api::socket`).

use crate::api::Routes;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::guard::bearer_token;
use crate::auth::{AdminUser, CurrentUser, Role};
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;

use crate::realtime::{self, Event, HubStats, Status, admission};
use crate::state::AppState;

/// Ticket and status routes, for the guarded `app` group.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(issue_ticket)).routes(routes!(status))
}

/// The broadcast route, for the `admin` group.
pub fn admin_routes() -> Routes {
    Routes::new().routes(routes!(broadcast))
}

/// A single-use ticket.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketResponse {
    /// Send as `GET /app/ws?ticket=…`, once.
    pub ticket: String,
    /// Seconds it stays valid.
    #[schema(example = 30)]
    pub expires_in: u64,
}

/// Issues a single-use ticket to open a WebSocket without putting the access token in a URL.
/// Any instance redeems it (with Redis).
#[utoipa::path(post, path = "/app/ws/ticket", tag = "realtime", security(("bearer" = [])),
    responses((status = OK, body = TicketResponse), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn issue_ticket(
    State(state): State<AppState>,
    caller: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<TicketResponse>> {
    let ticket = admission::issue_ticket(&state, &caller, bearer_token(&headers)?).await?;
    Ok(Json(TicketResponse { ticket: ticket.ticket, expires_in: ticket.expires_in }))
}

/// One of the caller's sockets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionResponse {
    /// As in `connected`.
    pub connection_id: Uuid,
    /// The instance holding it.
    pub instance_id: String,
    /// When it opened (sockets on the answering instance).
    pub connected_at: Option<DateTime<Utc>>,
    /// Its channels (sockets on the answering instance).
    pub channels: Option<Vec<String>>,
}

/// One instance's counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstanceResponse {
    /// Instance id.
    pub instance_id: String,
    /// Open sockets.
    pub connections: u64,
    /// Accounts connected there.
    pub users: u64,
}

/// The deployment as a whole (admins only).
#[derive(Debug, Serialize, ToSchema)]
pub struct GlobalResponse {
    /// Open sockets on every instance.
    pub connections: u64,
    /// Accounts connected anywhere.
    pub users_online: u64,
    /// Per instance.
    pub instances: Vec<InstanceResponse>,
    /// The answering instance's counters.
    pub stats: HubStats,
}

/// Realtime status.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// The answering instance.
    pub instance_id: String,
    /// The caller's sockets, on every instance.
    pub connections: Vec<ConnectionResponse>,
    /// Only for admins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<GlobalResponse>,
}

/// The caller's open sockets; admins also get the global view.
#[utoipa::path(get, path = "/app/ws/status", tag = "realtime", security(("bearer" = [])),
    responses((status = OK, body = StatusResponse), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn status(State(state): State<AppState>, caller: CurrentUser) -> Json<StatusResponse> {
    let status = state.realtime.status(caller.user.id, caller.role >= Role::Admin).await;
    Json(StatusResponse::new(status, || state.realtime.stats()))
}

impl StatusResponse {
    /// The status as answered; `stats` gives the instance's counters for the admin view.
    pub fn new(status: Status, stats: impl FnOnce() -> HubStats) -> StatusResponse {
        let Status { instance_id, connections, global } = status;
        let connections = connections
            .into_iter()
            .map(|c| ConnectionResponse {
                connection_id: c.connection_id,
                instance_id: c.instance_id,
                connected_at: c.connected_at,
                channels: c.channels,
            })
            .collect();
        let global = global.map(|g| GlobalResponse {
            connections: g.connections,
            users_online: g.users_online,
            instances: g
                .instances
                .into_iter()
                .map(|i| InstanceResponse { instance_id: i.instance_id, connections: i.connections, users: i.users })
                .collect(),
            stats: stats(),
        });
        StatusResponse { instance_id, connections, global }
    }
}

/// A message for a channel, or for one account's sockets.
#[derive(Debug, Deserialize, ToSchema)]
pub struct BroadcastRequest {
    /// The channel (1 to 128 characters of `[A-Za-z0-9:._-]`); `broadcast` when neither this
    /// nor `user_id` is given.
    #[schema(min_length = 1, max_length = 128, pattern = r"^[A-Za-z0-9:._-]+$")]
    pub channel: Option<String>,
    /// An account: its personal channel `user:<id>`.
    pub user_id: Option<Uuid>,
    /// `message`, `notification` (`data`: `{title, body, data?}`) or `update` (`data`:
    /// `{resource, action, resource_id?, data?}`).
    #[serde(rename = "type")]
    #[schema(value_type = BroadcastKind, example = "notification")]
    pub kind: String,
    /// The payload.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The kinds of message an admin can publish (the schema of `BroadcastRequest::kind`, which
/// the service checks, so that an unknown kind is a 422 naming `type`).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BroadcastKind {
    /// `data` is the content.
    Message,
    /// `data` is `{title, body, data?}`.
    Notification,
    /// `data` is `{resource, action, resource_id?, data?}`.
    Update,
}

/// Where the message went.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastResponse {
    /// The channel.
    pub channel: String,
    /// Its offset; `null` when Redis was unreachable and only this instance's sockets got it.
    pub offset: Option<u64>,
}

/// Publishes a message on a channel (or to one account) on every instance.
#[utoipa::path(post, path = "/admin/ws/broadcast", tag = "realtime", security(("bearer" = [])),
    request_body = BroadcastRequest,
    responses(
        (status = OK, body = BroadcastResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, description = "Not an admin", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn broadcast(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<BroadcastRequest>,
) -> Result<Json<BroadcastResponse>> {
    let channel = realtime::event::target(body.channel, body.user_id)?;
    let event = Event::from_request(&body.kind, body.data, admin.user.id)?;
    let published = state.realtime.publish(channel.as_str(), event).await?;
    Ok(Json(BroadcastResponse { channel: published.channel, offset: published.offset }))
}
