//! `/public/auth/*`: registration, sign-in, token refresh, sign-out, password reset, email
//! verification.

use std::net::SocketAddr;

use crate::api::Routes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use omnistack_db::sessions::SessionOrigin;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;

use super::users::UserResponse;
use crate::accounts::{self, Registration, SignedIn};
use crate::admin::audit::AuditContext;
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
        .routes(routes!(forgot_password))
        .routes(routes!(reset_password))
        .routes(routes!(verify_email))
}

/// The session-token exchanges, for the `public` group.
pub fn token_routes() -> Routes {
    Routes::new().routes(routes!(refresh)).routes(routes!(logout))
}

/// A new account.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Email address (trimmed and lowercased): one `@`, a dotted domain, no spaces or control
    /// characters; at most 254 characters.
    #[schema(
        example = "ada@example.com",
        max_length = 254,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\.[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@.\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Display name, at most 255 characters.
    #[schema(max_length = 255)]
    pub full_name: Option<String>,
}

/// Credentials.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// Email address.
    #[schema(max_length = 254)]
    pub email: String,
    /// Password.
    #[schema(max_length = 128)]
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token from the last sign-in or refresh.
    #[schema(max_length = 512)]
    pub refresh_token: String,
}

/// An email address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    #[schema(max_length = 254)]
    pub email: String,
}

/// A new password with its reset token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The token from the reset email.
    #[schema(max_length = 512)]
    pub token: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// An email-verification token.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The token from the verification email.
    #[schema(max_length = 512)]
    pub token: String,
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

/// Where a sign-in comes from: the client's user agent (at most 512 bytes) and address.
pub fn origin<'a>(headers: &'a HeaderMap, ip: &'a str) -> SessionOrigin<'a> {
    // `to_str` only accepts visible ASCII, so any byte offset is a character boundary.
    let user_agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| &ua[..ua.len().min(512)]);
    SessionOrigin { user_agent, ip_address: Some(ip) }
}

/// Creates an account, sends a verification email and signs in.
#[utoipa::path(post, path = "/public/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = CREATED, body = TokenResponse),
        (status = CONFLICT, description = "Email already registered", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>)> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let input = Registration { email: body.email, password: body.password, full_name: body.full_name };
    let signed_in = accounts::register(&state, input, &origin(&headers, &ip)).await?;
    Ok((StatusCode::CREATED, Json(signed_in.into())))
}

/// Signs in with email and password.
#[utoipa::path(post, path = "/public/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = OK, body = TokenResponse),
        (status = UNAUTHORIZED, description = "Wrong email or password", body = ErrorBody),
        (status = FORBIDDEN, description = "Account deactivated", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Json(body): Json<LoginRequest>,
) -> Result<Json<TokenResponse>> {
    let ip = rate_limit::client_ip(peer, &headers, state.limiter.trusted_proxies()).to_string();
    let signed_in = accounts::login(&state, &body.email, body.password, &origin(&headers, &ip)).await?;
    Ok(Json(signed_in.into()))
}

/// Exchanges a refresh token for a new pair (the old one is used up).
#[utoipa::path(post, path = "/public/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = OK, body = TokenResponse),
        (status = UNAUTHORIZED, description = "Invalid, expired or reused refresh token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    context: AuditContext,
    Json(body): Json<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    Ok(Json(accounts::refresh(&state, &body.refresh_token, &context).await?.into()))
}

/// Signs out: revokes the session of the refresh token.
#[utoipa::path(post, path = "/public/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = NO_CONTENT, description = "Signed out"), (status = TOO_MANY_REQUESTS, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, Json(body): Json<RefreshRequest>) -> Result<StatusCode> {
    accounts::logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a password-reset email when the account exists; the answer is the same either way.
#[utoipa::path(post, path = "/public/auth/password/forgot", tag = "auth", request_body = ForgotPasswordRequest,
    responses((status = ACCEPTED, description = "Email sent if the account exists"), (status = TOO_MANY_REQUESTS, body = ErrorBody)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    Json(body): Json<ForgotPasswordRequest>,
) -> Result<StatusCode> {
    accounts::forgot_password(&state, &body.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Sets a new password with a reset token; every session of the account is revoked.
#[utoipa::path(post, path = "/public/auth/password/reset", tag = "auth", request_body = ResetPasswordRequest,
    responses(
        (status = NO_CONTENT, description = "Password changed"),
        (status = BAD_REQUEST, description = "Invalid, used or expired token", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    context: AuditContext,
    Json(body): Json<ResetPasswordRequest>,
) -> Result<StatusCode> {
    accounts::reset_password(&state, &body.token, body.new_password, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Confirms an email address.
#[utoipa::path(post, path = "/public/auth/verify-email", tag = "auth", request_body = VerifyEmailRequest,
    responses(
        (status = NO_CONTENT, description = "Email confirmed"),
        (status = BAD_REQUEST, description = "Invalid, used or expired token", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, body = ErrorBody),
    ))]
pub async fn verify_email(State(state): State<AppState>, Json(body): Json<VerifyEmailRequest>) -> Result<StatusCode> {
    accounts::verify_email(&state, &body.token).await?;
    Ok(StatusCode::NO_CONTENT)
}
