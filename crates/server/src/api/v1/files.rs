//! `/app/files`: direct uploads (an upload URL, then a confirmation), listing, download URLs and
//! deletion of the caller's files. The bytes go to the store, never through these routes.

use std::collections::BTreeMap;

use crate::api::Routes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use omnistack_db::files::File;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;

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
        .routes(routes!(get_file, delete_file))
        .routes(routes!(create_download_url))
}

/// A file.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileResponse {
    /// File id.
    pub id: Uuid,
    /// The name given at upload.
    pub filename: String,
    /// The declared media type.
    pub content_type: String,
    /// The size in bytes.
    pub size: i64,
    /// `pending` until the upload is confirmed, then `uploaded`.
    pub status: String,
    /// When the upload URL was issued.
    pub created_at: DateTime<Utc>,
    /// When the upload was confirmed.
    pub uploaded_at: Option<DateTime<Utc>>,
}

impl From<File> for FileResponse {
    fn from(f: File) -> Self {
        FileResponse {
            id: f.id,
            filename: f.filename,
            content_type: f.content_type,
            size: f.size_bytes,
            status: f.status,
            created_at: f.created_at,
            uploaded_at: f.uploaded_at,
        }
    }
}

/// A file to upload.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UploadUrlRequest {
    /// 1 to 255 characters: a name, not a path; no control or bidirectional formatting characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^/\\\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+$"
    )]
    pub filename: String,
    /// `type/subtype` (no parameters), one of `FILES_ALLOWED_TYPES`.
    #[schema(max_length = 127, example = "application/pdf")]
    pub content_type: String,
    /// Exact size in bytes, at most `FILES_MAX_BYTES`.
    #[schema(minimum = 0)]
    pub size: i64,
}

/// Where to send the file's bytes.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadUrlResponse {
    /// The new file's id (confirm it once uploaded).
    pub file_id: Uuid,
    /// Send the bytes here.
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    /// Headers to send exactly as given; the body must be exactly `size` bytes.
    pub headers: BTreeMap<String, String>,
    /// Seconds the URL is valid.
    pub expires_in: u64,
}

/// A download link.
#[derive(Debug, Serialize, ToSchema)]
pub struct DownloadUrlResponse {
    /// Downloads the file as an attachment under its name.
    pub url: String,
    /// Seconds the URL is valid.
    pub expires_in: u64,
}

/// A page of files.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileListResponse {
    /// This page, newest first.
    pub items: Vec<FileResponse>,
    /// Matching files across all pages.
    pub total: i64,
    /// Offset of this page.
    pub skip: i64,
    /// Page size.
    pub limit: i64,
}

/// A file's state.
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// Waiting for its upload to be confirmed.
    Pending,
    /// Confirmed.
    Uploaded,
}

impl FileStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FileStatus::Pending => omnistack_db::files::PENDING,
            FileStatus::Uploaded => omnistack_db::files::UPLOADED,
        }
    }
}

/// Filter and paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// `pending` or `uploaded`; all when omitted.
    #[param(inline)]
    pub status: Option<FileStatus>,
    /// Files to skip (≥ 0).
    #[param(minimum = 0, default = 0)]
    pub skip: Option<i64>,
    /// Page size (1..=100).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
}

/// Issues an upload URL for a new file: `PUT` the bytes there with the given headers, then
/// confirm.
#[utoipa::path(post, path = "/app/files/upload-url", tag = "files", security(("bearer" = [])),
    request_body = UploadUrlRequest,
    responses(
        (status = CREATED, body = UploadUrlResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = PAYMENT_REQUIRED, description = "QUOTA_EXCEEDED: the plan's storage_bytes", body = ErrorBody),
        (status = CONFLICT, description = "Too many uploads pending", body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn create_upload_url(
    State(state): State<AppState>,
    caller: CurrentUser,
    Json(body): Json<UploadUrlRequest>,
) -> Result<(StatusCode, Json<UploadUrlResponse>)> {
    let issued = files::issue_upload(
        &state.db,
        &state.files,
        &state.usage,
        &caller,
        &body.filename,
        &body.content_type,
        body.size,
    )
    .await?;
    let headers = issued.target.headers.into_iter().map(|(name, value)| (name.to_owned(), value)).collect();
    Ok((
        StatusCode::CREATED,
        Json(UploadUrlResponse {
            file_id: issued.file.id,
            upload_url: issued.target.url,
            method: "PUT".into(),
            headers,
            expires_in: issued.expires_in,
        }),
    ))
}

/// Confirms an upload: the stored object must have exactly the declared size and type, else it
/// is removed and the answer is 400.
#[utoipa::path(post, path = "/app/files/{id}/confirm", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id; any other text is 404")),
    responses(
        (status = OK, body = FileResponse),
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
) -> Result<Json<FileResponse>> {
    Ok(Json(files::confirm(&state.db, &state.files, &state.usage, &caller, &id).await?.into()))
}

/// The caller's files, newest first.
#[utoipa::path(get, path = "/app/files", tag = "files", security(("bearer" = [])), params(ListParams),
    responses(
        (status = OK, body = FileListResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = UNPROCESSABLE_ENTITY, body = ErrorBody),
    ))]
pub async fn list_files(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<Json<FileListResponse>> {
    let (skip, limit) = (params.skip.unwrap_or(0), params.limit.unwrap_or(20));
    let page = files::list(&state.db, &caller, params.status.map(FileStatus::as_str), skip, limit).await?;
    let items = page.items.into_iter().map(Into::into).collect();
    Ok(Json(FileListResponse { items, total: page.total, skip, limit }))
}

/// One of the caller's files.
#[utoipa::path(get, path = "/app/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id; any other text is 404")),
    responses((status = OK, body = FileResponse), (status = NOT_FOUND, body = ErrorBody), (status = UNAUTHORIZED, body = ErrorBody)))]
pub async fn get_file(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<FileResponse>> {
    Ok(Json(files::get(&state.db, &caller, &id).await?.into()))
}

/// A short-lived download URL for one of the caller's uploaded files (`Content-Disposition:
/// attachment` with the file's name).
#[utoipa::path(get, path = "/app/files/{id}/download-url", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id; any other text is 404")),
    responses(
        (status = OK, body = DownloadUrlResponse),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = NOT_FOUND, body = ErrorBody),
        (status = CONFLICT, description = "The upload is not confirmed", body = ErrorBody),
    ))]
pub async fn create_download_url(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<DownloadUrlResponse>> {
    let (url, expires_in) = files::download_url(&state.db, &state.files, &state.usage, &caller, &id).await?;
    Ok(Json(DownloadUrlResponse { url, expires_in }))
}

/// Deletes one of the caller's files (the stored object and the record).
#[utoipa::path(delete, path = "/app/files/{id}", tag = "files", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "File id; any other text is 404")),
    responses(
        (status = NO_CONTENT, description = "Deleted"),
        (status = NOT_FOUND, body = ErrorBody),
        (status = UNAUTHORIZED, body = ErrorBody),
        (status = BAD_GATEWAY, description = "The file store did not answer", body = ErrorBody),
    ))]
pub async fn delete_file(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    files::delete(&state.db, &state.files, &state.usage, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
