//! Who is calling: the route-group guards (`require_user`, `require_admin`) authenticate the
//! bearer token and put the caller in the request; the extractors read it back. A handler that
//! forgets its extractor is still guarded, and an extractor on an unguarded route fails closed.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use omnistack_db::users::User;
use uuid::Uuid;

use super::Role;
use super::tokens::{ImpersonationClaim, peek_issuer};
use crate::error::{Error, Result};
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;
use crate::telemetry;
use crate::telemetry::request_id;

/// The authenticated, active caller.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    /// The account, as stored.
    pub user: User,
    /// Its role.
    pub role: Role,
    /// The sign-in session of an own access token (`sid`); `None` for external and
    /// impersonation tokens.
    pub session_id: Option<Uuid>,
    /// Set when an admin acts as this user with an impersonation token.
    pub impersonation: Option<Impersonator>,
}

/// The admin behind an impersonated request, as the impersonation session says now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Impersonator {
    /// The impersonation session (checked on every request).
    pub session_id: Uuid,
    /// The admin.
    pub admin_id: Uuid,
    /// The admin's email.
    pub admin_email: Option<String>,
    /// The admin's role.
    pub admin_role: String,
}

/// The header every response to an impersonated request carries: the admin's id.
pub const IMPERSONATED_BY: &str = "x-impersonated-by";

impl CurrentUser {
    /// 403 `AUTHORIZATION_ERROR` unless the caller has at least `role`: services check it
    /// themselves, whatever guard stands in front of them. An impersonated caller never gets
    /// more than `user`: nothing admin-only is reachable with an impersonation token.
    pub fn require(&self, role: Role) -> Result<()> {
        if role > Role::User {
            self.refuse_impersonation()?;
        }
        if self.role < role {
            return Err(Error::Authorization(format!("this requires the {role} role")));
        }
        Ok(())
    }

    /// 403 `AUTHORIZATION_ERROR` for an impersonated caller. Services call it before what an
    /// admin must never do in a user's name: start another impersonation, change the
    /// password or email, erase the account, open a socket, touch billing.
    pub fn refuse_impersonation(&self) -> Result<()> {
        if self.impersonation.is_some() {
            return Err(Error::Authorization("this is not allowed with an impersonation token".into()));
        }
        Ok(())
    }
}

/// The authenticated caller, with at least the `admin` role.
#[derive(Clone, Debug)]
pub struct AdminUser(pub CurrentUser);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self> {
        parts.extensions.get::<CurrentUser>().cloned().ok_or(Error::MissingCredentials)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AdminUser {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        let caller = CurrentUser::from_request_parts(parts, state).await?;
        caller.require(Role::Admin)?;
        Ok(AdminUser(caller))
    }
}

/// Guard of the `app` route group: an authenticated, active account.
pub async fn require_user(State(state): State<AppState>, request: Request, next: Next) -> Result<Response> {
    guard(&state, request, next, Role::User).await
}

/// Guard of the `admin` route group: an authenticated, active admin.
pub async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Result<Response> {
    guard(&state, request, next, Role::Admin).await
}

/// The database and limiter calls are boxed where they are awaited: their futures are large
/// (SQL and Redis clients), and inline they would make this middleware's future, which is
/// moved as a whole when it starts, several kilobytes in size.
async fn guard(state: &AppState, request: Request, next: Next, minimum: Role) -> Result<Response> {
    let caller = match Box::pin(authenticate(state, request.headers())).await {
        Ok(caller) => caller,
        Err(refused) => {
            record_failure(&refused);
            // A refused credential costs its client IP like any other unauthenticated request,
            // so guessing tokens is limited as guessing anything else is.
            Box::pin(rate_limit::check_client(LimitClass::Public, request.extensions(), request.headers())).await?;
            return Err(refused);
        }
    };
    if caller.impersonation.is_none() {
        return admit_request(state, request, next, minimum, caller).await;
    }
    // Impersonated: every response names the admin, and every write is audited with both.
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let context = crate::admin::audit::AuditContext::of_extensions(request.extensions(), request.headers(), state);
    let audited = caller.clone();
    let mut response = admit_request(state, request, next, minimum, caller).await.into_response();
    if let Some(by) = &audited.impersonation
        && let Ok(value) = HeaderValue::from_str(&by.admin_id.to_string())
    {
        response.headers_mut().insert(IMPERSONATED_BY, value);
    }
    if !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Box::pin(crate::admin::impersonation::record_request(
            state,
            &audited,
            &context,
            &method,
            route,
            response.status(),
        ))
        .await;
    }
    Ok(response)
}

async fn admit_request(
    state: &AppState,
    mut request: Request,
    next: Next,
    minimum: Role,
    caller: CurrentUser,
) -> Result<Response> {
    let id = caller.user.id;
    // Authenticated traffic is limited per account (the `app` class), whatever the path and
    // whether or not the role suffices.
    let mut key = uuid::Uuid::encode_buffer();
    let decision = Box::pin(state.limiter.check(LimitClass::App, id.hyphenated().encode_lower(&mut key))).await;
    if !decision.allowed {
        return Err(Error::RateLimited(decision));
    }
    caller.require(minimum)?;
    // `USAGE_ENFORCE_API_REQUESTS`: the caller's plan limit, from a per-instance cache. Admins
    // (operators, not customers) and impersonated requests are not limited.
    let counted = if caller.impersonation.is_none() && caller.role < Role::Admin {
        Box::pin(state.usage.admit_request(&caller.user)).await?
    } else {
        false
    };
    // An admin acting as the user is not the user's own visit.
    if caller.impersonation.is_none() {
        state.activity.note(id);
    }
    request_id::set_user(id);
    telemetry::set_attribute_with("user.id", || id.to_string());
    // `api_requests`: the verified account's own requests (not an admin acting as it),
    // counted in memory once answered below 400, by route template.
    let metered = (state.usage.settings().metering && caller.impersonation.is_none())
        .then(|| request.extensions().get::<MatchedPath>().cloned())
        .flatten();
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    let answered = response.status().as_u16();
    if let Some(endpoint) = metered
        && answered < 400
    {
        state.usage.count(id, crate::usage::metric::API_REQUESTS, 1, &[("endpoint", endpoint.as_str())]);
    }
    if counted && answered >= 400 {
        state.usage.refund_request(id);
    }
    decision.apply_headers(response.headers_mut());
    Ok(response)
}

/// The active account behind the request's bearer token (own or external).
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<CurrentUser> {
    authenticate_token(state, bearer_token(headers)?).await
}

/// The active account behind an access token (own or external), from wherever it was sent.
pub async fn authenticate_token(state: &AppState, token: &str) -> Result<CurrentUser> {
    let verified = match state.tokens.recall(token) {
        Some(verified) => verified,
        None => {
            let issuer = peek_issuer(token).ok_or_else(|| Error::InvalidToken("token is malformed".into()))?;
            if issuer != state.tokens.issuer() {
                return admit(crate::users::authenticate_external(state, token, &issuer).await?, None);
            }
            state.tokens.verify(token).map_err(|why| Error::InvalidToken(why.into()))?
        }
    };
    if let Some(claim) = verified.impersonation {
        return load_impersonated(state, verified.user_id, claim).await;
    }
    load_account(state, verified.user_id, Some(verified.session_id)).await
}

/// The account `user_id`, as a caller: it must exist and be active, and `session_id` (when
/// given) must not have been revoked. For callers whose credentials were checked elsewhere
/// (a socket ticket).
pub async fn load_account(state: &AppState, user_id: Uuid, session_id: Option<Uuid>) -> Result<CurrentUser> {
    let gone = || Error::InvalidToken("account no longer exists".into());
    let user = match session_id {
        None => omnistack_db::users::find_user(&state.db, user_id).await?.ok_or_else(gone)?,
        Some(session_id) => {
            let (user, live) =
                omnistack_db::users::find_user_with_session(&state.db, user_id, session_id).await?.ok_or_else(gone)?;
            if !live && user.is_active {
                return Err(Error::InvalidToken("session has been revoked".into()));
            }
            user
        }
    };
    admit(user, session_id)
}

/// The user an impersonation token acts as: its session must be live (neither stopped nor
/// expired, checked in the shared database so a stop holds on every instance), its admin
/// still an active admin, and the user still an active `user`.
async fn load_impersonated(state: &AppState, user_id: Uuid, claim: ImpersonationClaim) -> Result<CurrentUser> {
    let ended = || Error::InvalidToken("impersonation session has ended".into());
    let (admin_id, admin_email, admin_role) =
        omnistack_db::impersonations::find_live_impersonator(&state.db, claim.session_id, user_id)
            .await?
            .ok_or_else(ended)?;
    if admin_id != claim.admin_id {
        return Err(ended());
    }
    let user = omnistack_db::users::find_user(&state.db, user_id).await?.ok_or_else(ended)?;
    let mut caller = admit(user, None)?;
    if caller.role != Role::User {
        return Err(ended());
    }
    caller.impersonation = Some(Impersonator { session_id: claim.session_id, admin_id, admin_email, admin_role });
    Ok(caller)
}

/// An active account as a caller; a deactivated one is 403.
fn admit(user: User, session_id: Option<Uuid>) -> Result<CurrentUser> {
    if !user.is_active {
        return Err(Error::Authorization("this account is deactivated".into()));
    }
    let role = user.role.parse::<Role>().map_err(|err| Error::Internal(anyhow::anyhow!(err)))?;
    Ok(CurrentUser { user, role, session_id, impersonation: None })
}

/// `omnistack_auth_failures_total{reason, provider}`: the reason is the failure's stable
/// message turned into a label (a fixed, small set).
fn record_failure(error: &Error) {
    let (reason, provider) = match error {
        Error::MissingCredentials => ("missing_token".to_owned(), "none"),
        Error::InvalidToken(message) => (message.replace([' ', ';', ','], "_"), "bearer"),
        Error::Authorization(_) => ("deactivated".to_owned(), "bearer"),
        Error::ServiceUnavailable(_) => ("provider_unavailable".to_owned(), "external"),
        _ => return,
    };
    metrics::counter!("omnistack_auth_failures_total", "reason" => reason, "provider" => provider).increment(1);
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str> {
    let value = headers.get(AUTHORIZATION).ok_or(Error::MissingCredentials)?;
    let value = value.to_str().map_err(|_| Error::InvalidToken("authorization header is malformed".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(Error::InvalidToken("expected `Authorization: Bearer <token>`".into())),
    }
}
