//! v2's success bodies: `{"data": …, "meta": {"request_id", "timestamp", "version": "v2"}}`;
//! lists add `meta.next_cursor`. Errors are not enveloped: they keep the one error shape.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::extract::Json;
use crate::telemetry::request_id;

/// The version every v2 body names.
const VERSION: &str = "v2";

/// A v2 success body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The resource.
    pub data: T,
    /// About this response.
    pub meta: Meta,
}

/// About a response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Meta {
    /// The request id, also sent as `X-Request-ID`.
    pub request_id: String,
    /// When the response was made (RFC 3339, UTC).
    pub timestamp: DateTime<Utc>,
    /// Always `v2`.
    #[schema(example = "v2")]
    pub version: &'static str,
}

/// A page of a v2 list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    /// This page's items.
    pub data: Vec<T>,
    /// About this response, and where the next page starts.
    pub meta: PageMeta,
}

/// About a page.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageMeta {
    /// The request id, also sent as `X-Request-ID`.
    pub request_id: String,
    /// When the response was made (RFC 3339, UTC).
    pub timestamp: DateTime<Utc>,
    /// Always `v2`.
    #[schema(example = "v2")]
    pub version: &'static str,
    /// Pass as `cursor` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `data` in an envelope, as a JSON body.
pub fn enveloped<T>(data: T) -> Json<Envelope<T>> {
    let meta = Meta { request_id: request_id::current(), timestamp: Utc::now(), version: VERSION };
    Json(Envelope { data, meta })
}

/// A page of `data` in an envelope, as a JSON body.
pub fn page<T>(data: Vec<T>, next_cursor: Option<String>) -> Json<Page<T>> {
    let meta = PageMeta { request_id: request_id::current(), timestamp: Utc::now(), version: VERSION, next_cursor };
    Json(Page { data, meta })
}
