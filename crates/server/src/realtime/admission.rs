//! How a socket proves who it is, before or right after the upgrade: an access token (in the
//! query string or as the first message) or a single-use ticket. All three end in an active
//! account and the time its token expires.

use uuid::Uuid;

use super::tickets::TicketClaims;
use crate::auth::Role;
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

/// Authenticates an access token (own or external; deactivated accounts get 403).
pub async fn with_token(state: &AppState, token: &str) -> Result<Admitted> {
    let user = guard::authenticate_token(state, token).await?;
    state.activity.note(user.user.id);
    Ok(Admitted { user, expires_at: peek_expiry(token) })
}

/// Issues a ticket for `caller`, bounded by the expiry of the token it was asked with.
pub async fn issue_ticket(state: &AppState, caller: &CurrentUser, token_expires_at: Option<i64>) -> Result<Ticket> {
    let (ticket, hash) = new_opaque_token()?;
    let claims = TicketClaims { user_id: caller.user.id, expires_at: token_expires_at };
    state.realtime.store_ticket(hash, claims).await;
    Ok(Ticket { ticket, expires_in: state.realtime.settings().ticket_ttl.as_secs() })
}

/// Redeems a ticket (once), then loads the account fresh: it must still be active.
pub async fn with_ticket(state: &AppState, ticket: &str) -> Result<Admitted> {
    let claims = state
        .realtime
        .redeem_ticket(&hash_opaque_token(ticket))
        .await
        .ok_or_else(|| Error::InvalidToken("ticket is invalid, used or expired".into()))?;
    if claims.expires_at.is_some_and(|at| at <= chrono::Utc::now().timestamp()) {
        return Err(Error::InvalidToken("token expired".into()));
    }
    let user = load_active(state, claims.user_id).await?;
    state.activity.note(claims.user_id);
    Ok(Admitted { user, expires_at: claims.expires_at })
}

async fn load_active(state: &AppState, user_id: Uuid) -> Result<CurrentUser> {
    let user = omnistack_db::users::find_user(&state.db, user_id)
        .await?
        .ok_or_else(|| Error::InvalidToken("account no longer exists".into()))?;
    if !user.is_active {
        return Err(Error::Authorization("this account is deactivated".into()));
    }
    let role = user.role.parse::<Role>().map_err(|err| Error::Internal(anyhow::anyhow!(err)))?;
    Ok(CurrentUser { user, role })
}
