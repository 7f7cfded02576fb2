//! `/app/users/me`: the caller's own account.

use crate::api::Routes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, nullable};
use crate::state::AppState;
use crate::users::{self, ProfileUpdate};

/// The account routes.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(get_me, update_me, delete_me))
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
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        let email_verified = user.shown_email_verified();
        UserResponse {
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

/// Profile fields to change; omitted fields stay, `null` clears.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMeRequest {
    /// Display name, at most 255 characters.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub full_name: Option<Option<String>>,
    /// Avatar URL (http or https), at most 2048 characters; blank clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2048,
        pattern = r"^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$|^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[hH][tT][tT][pP][sS]?://[^/\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
    pub avatar_url: Option<Option<String>>,
}

/// The caller's account.
#[utoipa::path(get, path = "/app/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = OK, body = UserResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = FORBIDDEN, description = "Account deactivated", body = ErrorBody),
    ))]
pub async fn get_me(caller: CurrentUser) -> Json<UserResponse> {
    Json(caller.user.into())
}

/// Changes the caller's display name or avatar.
#[utoipa::path(patch, path = "/app/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateMeRequest,
    responses(
        (status = OK, body = UserResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<UpdateMeRequest>,
) -> Result<Json<UserResponse>> {
    let update = ProfileUpdate { full_name: body.full_name, avatar_url: body.avatar_url };
    Ok(Json(users::update_profile(&state, &caller, update).await?.into()))
}

/// Deactivates the caller's account, erases its personal data and signs it out everywhere.
#[utoipa::path(delete, path = "/app/users/me", tag = "users", security(("bearer" = [])),
    responses((status = NO_CONTENT, description = "Account deactivated"), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn delete_me(State(state): State<AppState>, caller: CurrentUser) -> Result<StatusCode> {
    users::delete_account(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}
