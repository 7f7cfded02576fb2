//! Realtime: the WebSocket endpoint (`/app/ws`, which authenticates by itself because browsers
//! cannot send headers on a WebSocket), tickets and status (`/app/ws/…`, guarded) and the
//! admin broadcast (`/admin/ws/broadcast`).

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Utc};
use opentelemetry::Context;
use opentelemetry::trace::{FutureExt, Link, SpanKind, TraceContextExt, Tracer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::accounts;
use crate::auth::guard::bearer_token;
use crate::auth::{AdminUser, CurrentUser, Role};
use crate::error::{Error, ErrorBody, FieldError, Result};
use crate::http::extract::{Json, Query};

use crate::realtime::{self, Event, HubStats, Status, admission, connection};
use crate::state::AppState;
use crate::telemetry;

/// Read buffer per socket, allocated with the socket and kept as long as it: most sockets are
/// idle, and a client's ordinary messages (subscribe, a short post) fit in one read. A larger
/// message reserves its own length.
const READ_BUFFER_BYTES: usize = 1024;
/// Writes are buffered up to this many bytes before they go to the socket (each batch is
/// flushed anyway). Not allocated ahead: the write buffer grows with what is written.
const WRITE_BUFFER_BYTES: usize = 8 * 1024;

/// The WebSocket route, for the `sockets` group: it authenticates by itself, and the group
/// limits handshakes per client IP before any upgrade.
pub fn socket_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(connect))
}

/// Ticket and status routes, for the guarded `app` group.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(issue_ticket)).routes(routes!(status))
}

/// The broadcast route, for the `admin` group.
pub fn admin_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(broadcast))
}

/// How the socket authenticates; with neither, the first message must be
/// `{"type":"auth","token":"…"}`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ConnectParams {
    /// An access token.
    #[param(max_length = 8192)]
    pub token: Option<String>,
    /// A single-use ticket from `POST /app/ws/ticket`.
    #[param(max_length = 512)]
    pub ticket: Option<String>,
}

/// The longest query `token` accepted.
const MAX_TOKEN_LEN: usize = 8192;

impl ConnectParams {
    /// A 422 naming a `token` or `ticket` longer than its maximum.
    fn check(&self) -> Result<()> {
        let problems: Vec<FieldError> = [
            self.token.as_deref().and_then(|t| FieldError::too_long("token", t, MAX_TOKEN_LEN)),
            self.ticket.as_deref().and_then(|t| FieldError::too_long("ticket", t, accounts::MAX_TOKEN_LEN)),
        ]
        .into_iter()
        .flatten()
        .collect();
        if problems.is_empty() { Ok(()) } else { Err(Error::Validation(problems)) }
    }
}

/// Opens a realtime WebSocket. The protocol (messages, channels, close codes, limits) is in
/// `docs/API.md`, section "Realtime".
#[utoipa::path(get, path = "/app/ws", tag = "realtime", params(ConnectParams),
    responses(
        (status = SWITCHING_PROTOCOLS, description = "Upgraded; the server sends `connected`"),
        (status = BAD_REQUEST, description = "Not a WebSocket handshake", body = ErrorBody),
        (status = UNAUTHORIZED, description = "Bad token or ticket", body = ErrorBody),
        (status = FORBIDDEN, description = "Account deactivated", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A token or ticket longer than its maximum", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Too many handshakes from this client", body = ErrorBody),
    ))]
pub async fn connect(
    State(state): State<AppState>,
    Query(params): Query<ConnectParams>,
    upgrade: WebSocketUpgrade,
) -> Result<Response> {
    params.check()?;
    let admitted = match (params.token, params.ticket) {
        (Some(token), _) => Some(admission::with_token(&state, &token).await?),
        (None, Some(ticket)) => Some(admission::with_ticket(&state, &ticket).await?),
        (None, None) => None,
    };
    let max = state.realtime.settings().max_message_bytes;
    // The socket outlives the upgrade request: a traced upgrade gives it a span of its own,
    // linked to the request's.
    let request_span = Context::map_current(|cx| cx.span().span_context().clone());
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| async move {
            if !request_span.is_sampled() {
                return connection::serve(state, socket, admitted).await;
            }
            let tracer = telemetry::tracer();
            let span = tracer
                .span_builder("WebSocket connection")
                .with_kind(SpanKind::Server)
                .with_links(vec![Link::with_context(request_span)])
                .start_with_context(tracer, &Context::new());
            let cx = Context::new().with_span(span);
            connection::serve(state, socket, admitted).with_context(cx.clone()).await;
            cx.span().end();
        }))
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
