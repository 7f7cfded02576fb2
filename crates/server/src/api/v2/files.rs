//! `/app/files` in v2: the same services as v1, v1's frozen file shapes inside v2's envelope,
//! keyset pages with a cursor; `DELETE` is v1's (no body).

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::cursor;
use super::envelope::{Envelope, Page, enveloped, page};
use crate::api::v1;
use crate::api::v1::files::{DownloadUrlResponse, FileResponse, FileStatus, UploadUrlRequest, UploadUrlResponse};
use crate::auth::CurrentUser;
use crate::error::{ErrorBody, Result};
use crate::files;
use crate::http::extract::{Json, Query};
use crate::state::AppState;

/// The file routes, for the `app` group.
pub fn routes() -> Routes {
    Routes::new()
        .routes(routes!(create_upload_url))
        .routes(routes!(confirm_upload))
        .routes(routes!(list_files))
        .routes(routes!(get_file, v1::files::delete_file))
        .routes(routes!(create_download_url))
}

/// Filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `pending` or `uploaded`; all when omitted.
    #[param(inline)]
    pub status: Option<FileStatus>,
    /// `meta.next_cursor` of the previous page; omitted or empty for the first page.
    #[param(max_length = 128)]
    pub cursor: Option<String>,
    /// Page size (1..=100).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

/// Issues an upload URL for a new file: `PUT` the bytes there with the given headers, then
/// confirm.
#[utoipa::path(post, path = "/app/files/upload-url", tag = "files", security(("bearer" = [])),
    request_body = UploadUrlRequest,
    responses(
        (status = CREATED, body = Envelope<UploadUrlResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = PAYMENT_REQUIRED, description = "QUOTA_EXCEEDED: the plan's storage_bytes", body = ErrorBody),
        (status = CONFLICT, description = "Too many uploads pending", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn create_upload_url(
    state: State<AppState>,
    caller: CurrentUser,
    body: Json<UploadUrlRequest>,
) -> Result<(StatusCode, Json<Envelope<UploadUrlResponse>>)> {
    let (status, Json(issued)) = v1::files::create_upload_url(state, caller, body).await?;
    Ok((status, enveloped(issued)))
}

/// Confirms an upload: the stored object must have exactly the declared size and type, else it
/// is removed and the answer is 400.
#[utoipa::path(post, path = "/app/files/{id}/confirm", tag = "files", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "File id; any other text is 404")),
    responses(
        (status = OK, body = Envelope<FileResponse>),
        (status = BAD_REQUEST, description = "Nothing uploaded, or not the declared size and type", body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = PAYMENT_REQUIRED, body = ErrorBody),
        (status = NOT_FOUND, body = ErrorBody),
        (status = BAD_GATEWAY, description = "The file store did not answer", body = ErrorBody),
    ))]
pub async fn confirm_upload(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Envelope<FileResponse>>> {
    Ok(enveloped(files::confirm(&state.db, &state.files, &state.usage, &caller, &id).await?.into()))
}

/// The caller's files, newest first, a page at a time.
#[utoipa::path(get, path = "/app/files", tag = "files", security(("bearer" = [])), params(ListParams),
    responses(
        (status = OK, body = Page<FileResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, description = "A bad limit or a cursor this API did not return", body = ErrorBody),
    ))]
pub async fn list_files(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<Json<Page<FileResponse>>> {
    let after = cursor::position(params.cursor.as_deref())?;
    let status = params.status.map(FileStatus::as_str);
    let slice = files::list_after(&state.db, &caller, status, after, params.limit.unwrap_or(20)).await?;
    Ok(page(slice.items.into_iter().map(Into::into).collect(), cursor::next(slice.next)))
}

/// One of the caller's files.
#[utoipa::path(get, path = "/app/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "File id; any other text is 404")),
    responses((status = OK, body = Envelope<FileResponse>), (status = NOT_FOUND, body = ErrorBody), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn get_file(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Envelope<FileResponse>>> {
    Ok(enveloped(files::get(&state.db, &caller, &id).await?.into()))
}

/// A short-lived download URL for one of the caller's uploaded files.
#[utoipa::path(get, path = "/app/files/{id}/download-url", tag = "files", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "File id; any other text is 404")),
    responses(
        (status = OK, body = Envelope<DownloadUrlResponse>),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = NOT_FOUND, body = ErrorBody),
        (status = CONFLICT, description = "The upload is not confirmed", body = ErrorBody),
    ))]
pub async fn create_download_url(
    state: State<AppState>,
    caller: CurrentUser,
    id: Path<String>,
) -> Result<Json<Envelope<DownloadUrlResponse>>> {
    let Json(link) = v1::files::create_download_url(state, caller, id).await?;
    Ok(enveloped(link))
}
