//! The local file store's transfer routes, unversioned: `PUT /files/{id}/upload` and
//! `GET /files/{id}/download`, each with `expires` and `signature` from a URL the `app` routes
//! issued. The signature is the credential (no bearer token), so they sit in the `public` rate
//! class per client IP. With `STORAGE_PROVIDER=s3` they answer 404: clients talk to the bucket.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::files::disposition;
use crate::files::transfer::{self, SignedRequest};
use crate::http::extract::Query;
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;

/// The transfer routes, limited per client IP.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/files/{id}/upload", put(upload))
        .route("/files/{id}/download", get(download))
        .route_layer(rate_limit::by_ip(LimitClass::Public))
}

/// A signed URL's parameters.
#[derive(Debug, Deserialize)]
struct Signed {
    expires: i64,
    #[serde(default)]
    signature: String,
}

async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode> {
    let request = SignedRequest { id: &id, expires: signed.expires, signature: &signed.signature };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    transfer::receive_upload(&state.db, &state.files, &request, content_type, length, body.into_data_stream()).await?;
    Ok(StatusCode::OK)
}

async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
) -> Result<Response> {
    let request = SignedRequest { id: &id, expires: signed.expires, signature: &signed.signature };
    let (file, handle) = transfer::open_download(&state.db, &state.files, &request).await?;
    let value = |text: &str| HeaderValue::from_str(text).map_err(|err| Error::Internal(err.into()));
    let headers = [
        (header::CONTENT_TYPE, value(&file.content_type)?),
        (header::CONTENT_DISPOSITION, value(&disposition::attachment(&file.filename))?),
        (header::CONTENT_LENGTH, value(&file.size_bytes.to_string())?),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
    ];
    Ok((headers, Body::from_stream(ReaderStream::new(handle))).into_response())
}
