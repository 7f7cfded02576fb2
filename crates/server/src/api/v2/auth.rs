//! `/public/auth/*` in v2: the sign-in answers are enveloped and carry v2's account; the
//! bodyless answers (logout, password, verify-email) are v1's handlers.

use std::net::SocketAddr;

use crate::api::Routes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::envelope::{Envelope, enveloped};
use super::users::UserResponse;
use crate::accounts::{self, Registration, SignedIn};
use crate::admin::audit::AuditContext;
use crate::api::v1;
use crate::api::v1::auth::{LoginRequest, RefreshRequest, RegisterRequest, origin};
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::rate_limit;
use crate::state::AppState;

/// Routes that take a password, an email or an emailed token, for the `credentials` group
/// (limited per client IP by `auth`; per email, or failed sign-ins, in the service).
pub fn credential_routes() -> Routes {
    Routes::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(v1::auth::forgot_password))
        .routes(routes!(v1::auth::reset_password))
        .routes(routes!(v1::auth::verify_email))
}

/// The session-token exchanges, for the `public` group.
pub fn token_routes() -> Routes {
    Routes::new().routes(routes!(refresh)).routes(routes!(v1::auth::logout))
}

/// A signed-in session.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The account.
    pub user: UserResponse,
    /// Bearer token for `Authorization`.
    pub access_token: String,
    /// Single-use token for `POST /public/auth/refresh`.
    pub refresh_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
}

impl From<SignedIn> for TokenResponse {
    fn from(signed_in: SignedIn) -> Self {
        TokenResponse {
            user: signed_in.user.into(),
            access_token: signed_in.access_token,
            refresh_token: signed_in.refresh_token,
            token_type: "bearer",
            expires_in: signed_in.expires_in,
        }
    }
}

/// Creates an account, sends a verification email and signs in.
#[utoipa::path(post, path = "/public/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = CREATED, body = Envelope<TokenResponse>),
        (status = CONFLICT, description = "Email already registered", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<Envelope<TokenResponse>>)> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let input = Registration { email: body.email, password: body.password, full_name: body.full_name };
    let signed_in = accounts::register(&state, input, &origin(&headers, &ip)).await?;
    Ok((StatusCode::CREATED, enveloped(signed_in.into())))
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/public/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = OK, body = Envelope<TokenResponse>),
        (status = UNAUTHORIZED, description = "Wrong email or password", body = ErrorBody),
        (status = FORBIDDEN, description = "Account deactivated", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> Result<Json<Envelope<TokenResponse>>> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let signed_in = accounts::login(&state, &body.email, body.password, &origin(&headers, &ip)).await?;
    Ok(enveloped(signed_in.into()))
}

/// Exchanges a refresh token for a new pair (the old one is used up).
#[utoipa::path(post, path = "/public/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = OK, body = Envelope<TokenResponse>),
        (status = UNAUTHORIZED, description = "Invalid, expired or reused refresh token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    context: AuditContext,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<Envelope<TokenResponse>>> {
    Ok(enveloped(accounts::refresh(&state, &body.refresh_token, &context).await?.into()))
}
