//! `/app/ws`: the realtime WebSocket, the same in every version. It authenticates by itself
//! (query token, ticket, or a first `auth` message) because browsers cannot send headers on a
//! WebSocket. The protocol is in `docs/API.md`, section "Realtime".

use crate::api::Routes;
use axum::extract::State;
use axum::response::Response;
use opentelemetry::Context;
use opentelemetry::trace::{FutureExt, Link, SpanKind, TraceContextExt, Tracer};
use serde::Deserialize;
use tungstenite::protocol::WebSocketConfig;
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::accounts;
use crate::error::{Error, ErrorBody, FieldError, Result};
use crate::http::extract::Query;
use crate::realtime::upgrade::Handshake;
use crate::realtime::{admission, connection};
use crate::state::AppState;
use crate::telemetry;

/// Read buffer per socket, allocated with the socket and kept as long as it: most sockets are
/// idle, and a client's ordinary messages (subscribe, a short post) fit in one read. A larger
/// message reserves its own length.
const READ_BUFFER_BYTES: usize = 1024;
/// Writes are buffered up to this many bytes before they go to the socket (each batch is
/// flushed anyway). Not allocated ahead: the write buffer grows with what is written, and
/// messages longer than a fragment go out in fragments (`connection::FRAGMENT_BYTES`), so it
/// never grows past this plus one fragment.
const WRITE_BUFFER_BYTES: usize = 2 * 1024;

/// The WebSocket route, for the `sockets` group: it authenticates by itself, and the group
/// limits handshakes per client IP before any upgrade.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(connect))
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
    handshake: Handshake,
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
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES);
    Ok(handshake.accept(config, move |socket| async move {
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
