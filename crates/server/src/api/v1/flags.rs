//! `/app/feature-flags`: every flag's value for the signed-in caller.

use std::collections::BTreeMap;

use crate::api::Routes;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::admin::flags;
use crate::auth::CurrentUser;
use crate::error::ErrorBody;
use crate::http::extract::Json;
use crate::state::AppState;

/// The route, guarded as the `app` group is.
pub fn routes() -> Routes {
    Routes::new().routes(routes!(my_flags))
}

/// Every flag, on or off for the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyFlagsResponse {
    /// Flag key → value.
    pub flags: BTreeMap<String, bool>,
}

/// Every feature flag's value for the caller (evaluated from memory).
#[utoipa::path(get, path = "/app/feature-flags", tag = "feature-flags", security(("bearer" = [])),
    responses(
        (status = OK, description = "Every flag's value for the caller", body = MyFlagsResponse),
        (status = UNAUTHORIZED, description = "No valid token", body = ErrorBody),
        (status = FORBIDDEN, description = "A deactivated account", body = ErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Rate limited", body = ErrorBody),
    ))]
pub async fn my_flags(State(state): State<AppState>, caller: CurrentUser) -> Json<MyFlagsResponse> {
    Json(MyFlagsResponse { flags: flags::evaluate_all_for_account(&state.flags, &caller).into_iter().collect() })
}
