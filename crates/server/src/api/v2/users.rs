//! `/app/users/me` in v2: the account adds `is_premium` and `days_since_joined`.

use crate::api::Routes;
use axum::extract::State;
use chrono::{DateTime, Utc};
use omnistack_db::users::User;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use super::envelope::{Envelope, enveloped};
use crate::api::v1;
use crate::api::v1::users::UpdateMeRequest;
use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::Json;
use crate::state::AppState;
use crate::users::{self, ProfileUpdate};

/// The account routes; `DELETE` is v1's (no body).
pub fn routes() -> Routes {
    Routes::new().routes(routes!(get_me, update_me, v1::users::delete_me))
}

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResponse {
    /// Account id.
    pub id: Uuid,
    /// Email address, when known.
    pub email: Option<String>,
    /// Display name.
    pub full_name: Option<String>,
    /// Avatar URL.
    pub avatar_url: Option<String>,
    /// `user`, `admin` or `super_admin`.
    #[schema(example = "user")]
    pub role: String,
    /// False once deactivated.
    pub is_active: bool,
    /// Whether the email address is confirmed.
    pub email_verified: bool,
    /// Billing plan.
    #[schema(example = "free")]
    pub subscription_plan: String,
    /// Billing status.
    #[schema(example = "inactive")]
    pub subscription_status: String,
    /// An active or trial subscription to a paid plan.
    pub is_premium: bool,
    /// Whole days since the account was created.
    pub days_since_joined: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        let email_verified = user.shown_email_verified();
        UserResponse {
            is_premium: users::is_premium(&user),
            days_since_joined: users::days_since_joined(&user, Utc::now()),
            id: user.id,
            email: user.shown_email().map(str::to_owned),
            full_name: user.full_name,
            avatar_url: user.avatar_url,
            role: user.role,
            is_active: user.is_active,
            email_verified,
            subscription_plan: user.subscription_plan,
            subscription_status: user.subscription_status,
            created_at: user.created_at,
        }
    }
}

/// The caller's account.
#[utoipa::path(get, path = "/app/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = OK, body = Envelope<UserResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, description = "Account deactivated", body = ErrorBody),
    ))]
pub async fn get_me(caller: CurrentUser) -> Json<Envelope<UserResponse>> {
    enveloped(caller.user.into())
}

/// Changes the caller's display name or avatar.
#[utoipa::path(patch, path = "/app/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses(
        (status = OK, body = Envelope<UserResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<UpdateMeRequest>,
) -> Result<Json<Envelope<UserResponse>>> {
    let update = ProfileUpdate { full_name: body.full_name, avatar_url: body.avatar_url };
    Ok(enveloped(users::update_profile(&state, &caller, update).await?.into()))
}
