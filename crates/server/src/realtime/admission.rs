//! How a socket proves who it is, before or right after the upgrade: an access token (in the
//! query string or as the first message) or a single-use ticket. All three end in an active
//! account, the time its token expires and, for own tokens, the sign-in session it belongs to
//! (so that logging out closes the socket; see `realtime::revocation`).

use super::tickets::TicketClaims;
use crate::auth::guard::{self, CurrentUser};
use crate::auth::tokens::{hash_opaque_token, new_opaque_token, peek_expiry};
use crate::error::{Error, Result};
use crate::state::AppState;

/// An authenticated, active account and when its credentials stop being good.
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The account.
    pub user: CurrentUser,
    /// When the token expires (Unix seconds); the socket is closed with 4001 then unless the
    /// client sends a fresh token.
    pub expires_at: Option<i64>,
}

/// A ticket and its lifetime in seconds.
#[derive(Clone, Debug)]
pub struct Ticket {
    /// The single-use ticket (send as `?ticket=`).
    pub ticket: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// Authenticates an access token (own or external; deactivated accounts get 403, impersonation
/// tokens 403: sockets are not open to them).
pub async fn with_token(state: &AppState, token: &str) -> Result<Admitted> {
    let user = guard::authenticate_token(state, token).await?;
    // An impersonation is checked per HTTP request; a socket would outlive its stop.
    user.refuse_impersonation()?;
    state.activity.note(user.user.id);
    Ok(Admitted { user, expires_at: peek_expiry(token) })
}

/// Issues a ticket for `caller`, who authenticated with the access `token`: the ticket belongs
/// to the token's session and expires no later than the token.
pub async fn issue_ticket(state: &AppState, caller: &CurrentUser, token: &str) -> Result<Ticket> {
    caller.refuse_impersonation()?;
    let (ticket, hash) = new_opaque_token()?;
    let claims =
        TicketClaims { user_id: caller.user.id, expires_at: peek_expiry(token), session_id: caller.session_id };
    state.realtime.store_ticket(hash, claims).await;
    Ok(Ticket { ticket, expires_in: state.realtime.settings().ticket_ttl.as_secs() })
}

/// Redeems a ticket (once), then loads the account fresh: it must still be active, and the
/// session the ticket was issued in must not have been revoked since (a logout).
pub async fn with_ticket(state: &AppState, ticket: &str) -> Result<Admitted> {
    let claims = state
        .realtime
        .redeem_ticket(&hash_opaque_token(ticket))
        .await
        .ok_or_else(|| Error::InvalidToken("ticket is invalid, used or expired".into()))?;
    if claims.expires_at.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
        return Err(Error::InvalidToken("token expired".into()));
    }
    let user = guard::load_account(state, claims.user_id, claims.session_id).await?;
    state.activity.note(claims.user_id);
    Ok(Admitted { user, expires_at: claims.expires_at })
}
