//! Realtime tickets, status and the admin broadcast in v2: enveloped; the bodies inside are
//! v1's. The WebSocket itself (`/app/ws`) is the same route in every version.

use crate::api::Routes;
use axum::extract::State;
use axum::http::HeaderMap;
use utoipa_axum::routes;

use super::envelope::{Envelope, enveloped};
use crate::api::v1::realtime::{BroadcastRequest, BroadcastResponse, StatusResponse, TicketResponse};
use crate::auth::guard::bearer_token;
use crate::auth::{AdminUser, CurrentUser, Role};
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::realtime::{Event, admission, event};
use crate::state::AppState;

/// Ticket and status routes, for the guarded `app` group.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(issue_ticket)).routes(routes!(status))
}

/// The broadcast route, for the `admin` group.
pub fn admin_routes() -> Routes {
    Routes::new().routes(routes!(broadcast))
}

/// Issues a single-use ticket to open a WebSocket without putting the access token in a URL.
/// Any instance redeems it (with Redis).
#[utoipa::path(post, path = "/app/ws/ticket", tag = "realtime", security(("bearer" = [])),
    responses((status = OK, description = "A ticket", body = Envelope<TicketResponse>)))]
pub async fn issue_ticket(
    State(state): State<AppState>,
    caller: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<Envelope<TicketResponse>>> {
    let ticket = admission::issue_ticket(&state, &caller, bearer_token(&headers)?).await?;
    Ok(enveloped(TicketResponse { ticket: ticket.ticket, expires_in: ticket.expires_in }))
}

/// The caller's open sockets; admins also get the global view.
#[utoipa::path(get, path = "/app/ws/status", tag = "realtime", security(("bearer" = [])),
    responses((status = OK, description = "The caller's sockets", body = Envelope<StatusResponse>)))]
pub async fn status(State(state): State<AppState>, caller: CurrentUser) -> Json<Envelope<StatusResponse>> {
    let status = state.realtime.status(caller.user.id, caller.role >= Role::Admin).await;
    enveloped(StatusResponse::new(status, || state.realtime.stats()))
}

/// Publishes a message on a channel (or to one account) on every instance.
#[utoipa::path(post, path = "/admin/ws/broadcast", tag = "realtime", security(("bearer" = [])),
    request_body = BroadcastRequest,
    responses(
        (status = OK, description = "Published", body = Envelope<BroadcastResponse>),
        (status = FORBIDDEN, description = "Not an admin, or the account is deactivated", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad channel, type or data", body = ErrorBody),
    ))]
pub async fn broadcast(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Json(body): Json<BroadcastRequest>,
) -> Result<Json<Envelope<BroadcastResponse>>> {
    let channel = event::target(body.channel, body.user_id)?;
    let event = Event::from_request(&body.kind, body.data, admin.user.id)?;
    let published = state.realtime.publish(channel.as_str(), event).await?;
    Ok(enveloped(BroadcastResponse { channel: published.channel, offset: published.offset }))
}
