//! The one error vocabulary of the request path, mapped to HTTP in exactly one place.
//!
//! Every 4xx/5xx body is `{"error": {"code", "message", "details", "request_id"}}`.
//! Codes are stable and documented in `docs/API.md`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry::trace::{Status, TraceContextExt};
use opentelemetry::{Context, KeyValue};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::config::ApiVersion;
use crate::telemetry::request_id;

mod quota;
mod rate_decision;
mod retirement;

pub use quota::QuotaExceeded;
pub use rate_decision::{LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER, RateDecision};
pub use retirement::Retirement;

/// One invalid input field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, dotted for nested values (`address.city`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }

    /// An error on `field` when `value`, as sent, has more than `max` characters (counted as
    /// JSON Schema's `maxLength` counts them, in Unicode code points).
    pub fn too_long(field: &str, value: &str, max: usize) -> Option<FieldError> {
        (value.chars().count() > max).then(|| FieldError::new(field, format!("must be at most {max} characters")))
    }

    /// The errors of an offset page: `skip` 0 or more, `limit` from 1 to `max`.
    pub fn page(skip: i64, limit: i64, max: i64) -> Vec<FieldError> {
        let mut problems = Vec::new();
        if skip < 0 {
            problems.push(FieldError::new("skip", "must be 0 or more"));
        }
        if !(1..=max).contains(&limit) {
            problems.push(FieldError::new("limit", format!("must be from 1 to {max}")));
        }
        problems
    }
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400 `BAD_REQUEST`: malformed input (bad JSON, bad query string).
    #[error("{0}")]
    BadRequest(String),
    /// 400 `BAD_REQUEST` listing the supported versions: the request asked for an API version
    /// this server does not have.
    #[error("unsupported API version {0:?}; supported versions: {versions}", versions = ApiVersion::supported())]
    UnsupportedVersion(String),
    /// 400 `CAPTCHA_FAILED`: a captcha token was missing, refused or scored too low.
    #[error("{0}")]
    CaptchaFailed(String),
    /// 400 `INVALID_SIGNATURE`: an inbound webhook whose signature (or timestamp) does not
    /// verify; nothing of it is stored.
    #[error("{0}")]
    InvalidSignature(String),
    /// 401 `AUTHENTICATION_ERROR`: wrong credentials.
    #[error("{0}")]
    Authentication(String),
    /// 401 `AUTHENTICATION_ERROR` with `WWW-Authenticate: Bearer`: no credentials were sent.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    MissingCredentials,
    /// 401 `AUTHENTICATION_ERROR` with `WWW-Authenticate: Bearer error="invalid_token"`; the
    /// message names the kind of failure.
    #[error("{0}")]
    InvalidToken(String),
    /// 402 `QUOTA_EXCEEDED`: the request would pass a hard limit of the caller's plan;
    /// `details` says which, how much is used and when it resets.
    #[error("the {} limit of your plan ({}) would be exceeded", .0.metric, .0.limit)]
    QuotaExceeded(QuotaExceeded),
    /// 403 `AUTHORIZATION_ERROR`.
    #[error("{0}")]
    Authorization(String),
    /// 404 `NOT_FOUND`.
    #[error("{0}")]
    NotFound(String),
    /// 409 `CONFLICT`.
    #[error("{0}")]
    Conflict(String),
    /// 410 `API_VERSION_SUNSET`: the operation's API version is past its sunset date.
    #[error("{0}")]
    VersionSunset(Retirement),
    /// 413 `PAYLOAD_TOO_LARGE`: the body exceeds `MAX_BODY_BYTES`.
    #[error("request body is too large")]
    PayloadTooLarge,
    /// 415 `UNSUPPORTED_MEDIA_TYPE`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422 `VALIDATION_ERROR`, with the invalid fields.
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    /// 429 `RATE_LIMIT_EXCEEDED`, with `details.retry_after`, `Retry-After` and the
    /// `X-RateLimit-*` headers.
    #[error("too many requests; retry in {} s", .0.retry_after)]
    RateLimited(RateDecision),
    /// 503 `SERVICE_UNAVAILABLE`: a dependency is down or a feature is not configured.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// 502 `EXTERNAL_SERVICE_ERROR`: a third-party API failed.
    #[error("{0}")]
    ExternalService(String),
    /// 500 `INTERNAL_ERROR`: the cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Result of a service or handler call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) | Error::UnsupportedVersion(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            Error::CaptchaFailed(_) => (StatusCode::BAD_REQUEST, "CAPTCHA_FAILED"),
            Error::InvalidSignature(_) => (StatusCode::BAD_REQUEST, "INVALID_SIGNATURE"),
            Error::Authentication(_) | Error::MissingCredentials | Error::InvalidToken(_) => {
                (StatusCode::UNAUTHORIZED, "AUTHENTICATION_ERROR")
            }
            Error::QuotaExceeded(_) => (StatusCode::PAYMENT_REQUIRED, "QUOTA_EXCEEDED"),
            Error::Authorization(_) => (StatusCode::FORBIDDEN, "AUTHORIZATION_ERROR"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            Error::VersionSunset(_) => (StatusCode::GONE, "API_VERSION_SUNSET"),
            Error::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
            Error::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            Error::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED"),
            Error::ServiceUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Error::ExternalService(_) => (StatusCode::BAD_GATEWAY, "EXTERNAL_SERVICE_ERROR"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        }
    }
}

impl From<omnistack_db::DbError> for Error {
    fn from(err: omnistack_db::DbError) -> Self {
        match err {
            omnistack_db::DbError::Conflict(_) => Error::Conflict("the resource already exists".into()),
            other => Error::Internal(other.into()),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, details) = match &self {
            Error::Internal(cause) => {
                tracing::error!(request.id = %request_id::current(), error = format!("{cause:#}"), "internal error");
                ("an internal error occurred".to_owned(), json!({}))
            }
            Error::Validation(fields) => (self.to_string(), json!({ "fields": fields })),
            Error::RateLimited(decision) => (self.to_string(), json!({ "retry_after": decision.retry_after })),
            Error::UnsupportedVersion(requested) => {
                let supported = ApiVersion::ALL.map(ApiVersion::as_str);
                (self.to_string(), json!({ "requested": requested, "supported_versions": supported }))
            }
            Error::VersionSunset(retirement) => (self.to_string(), retirement.details()),
            Error::QuotaExceeded(quota) => (self.to_string(), quota.details()),
            other => (other.to_string(), json!({})),
        };
        let mut response = error_response(status, code, &message, details);
        let challenge = match self {
            Error::MissingCredentials => Some("Bearer"),
            Error::InvalidToken(_) => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let Error::RateLimited(decision) = &self {
            decision.apply_headers(response.headers_mut());
        }
        response
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `NOT_FOUND`.
    #[schema(example = "NOT_FOUND")]
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Structured context; `fields` for validation errors.
    #[schema(value_type = Object)]
    pub details: Value,
    /// The request id, also sent as `X-Request-ID`.
    pub request_id: String,
}

/// Builds an error response in the one shape, tagged with the current request id. The
/// request's span gets `error.type` = the code, and an error status on 5xx (following the
/// OpenTelemetry HTTP server conventions, a 4xx is the client's error, not the server's).
pub fn error_response(status: StatusCode, code: &'static str, message: &str, details: Value) -> Response {
    Context::map_current(|cx| {
        let span = cx.span();
        span.set_attribute(KeyValue::new("error.type", code));
        if status.is_server_error() {
            span.set_status(Status::error(code));
        }
    });
    let body = ErrorBody {
        error: ErrorDetail { code, message: message.to_owned(), details, request_id: request_id::current() },
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
