//! The OpenFeature Remote Evaluation Protocol (OFREP) for server-side SDKs, unversioned:
//! `POST /ofrep/v1/evaluate/flags/{key}` and `POST /ofrep/v1/evaluate/flags` with
//! `{"context": {"targetingKey": "<user id>", …}}`. Bodies follow the OFREP specification (not
//! the API's error shape): a value is `{key, value, reason, variant, metadata}`, a failure
//! `{key, errorCode, errorDetails}`. Authenticated by `Authorization: Bearer <FLAGS_API_KEY>` or
//! an admin's token; documented in `docs/API.md` ("OFREP").

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admin::flags::{self, Evaluation, FlagReader};
use crate::auth::guard;
use crate::error::{Error, Result};
use crate::rate_limit::{self, LimitClass};
use crate::state::AppState;
use crate::telemetry::request_id;

/// The largest evaluation request body: a context is a handful of attributes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The OFREP routes, authenticated and with their own body limit.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate_flag))
        .route("/ofrep/v1/evaluate/flags", post(evaluate_flags))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_reader))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// One evaluated flag, as OFREP sends it.
#[derive(Debug, Serialize)]
struct Success<'a> {
    key: &'a str,
    value: bool,
    reason: &'static str,
    variant: &'static str,
    metadata: Value,
}

impl<'a> Success<'a> {
    fn new(key: &'a str, evaluation: Evaluation) -> Self {
        Success {
            key,
            value: evaluation.value,
            reason: evaluation.reason.as_str(),
            variant: if evaluation.value { "on" } else { "off" },
            metadata: json!({}),
        }
    }
}

/// An OFREP failure body: `{key?, errorCode, errorDetails}`.
fn failure(status: StatusCode, key: Option<&str>, code: &str, details: &str) -> Response {
    let mut body = json!({ "errorCode": code, "errorDetails": details });
    if let Some(key) = key {
        // Echoed bounded: a path can be long, a flag key never is.
        body["key"] = json!(key.chars().take(flags::MAX_KEY).collect::<String>());
    }
    (status, axum::Json(body)).into_response()
}

/// The request's targeting key, or the OFREP failure (`PARSE_ERROR`, `INVALID_CONTEXT`).
fn targeting_key(body: &[u8]) -> std::result::Result<String, (&'static str, String)> {
    let request: Value = serde_json::from_slice(body).map_err(|_| ("PARSE_ERROR", "the body is not JSON".into()))?;
    let context = request.get("context").filter(|c| c.is_object()).ok_or_else(|| {
        ("INVALID_CONTEXT", "the body must be {\"context\": {\"targetingKey\": \"<user id>\", …}}".to_owned())
    })?;
    let key = match context.get("targetingKey") {
        Some(Value::String(key)) => key,
        Some(_) => return Err(("INVALID_CONTEXT", "targetingKey must be a string".into())),
        None => return Err(("INVALID_CONTEXT", "targetingKey is required".into())),
    };
    if let Some(problem) = flags::check_targeting_key("targetingKey", key) {
        return Err(("INVALID_CONTEXT", format!("targetingKey {}", problem.message)));
    }
    Ok(key.clone())
}

/// `POST /ofrep/v1/evaluate/flags/{key}`: one flag.
async fn evaluate_flag(
    State(state): State<AppState>,
    reader: axum::Extension<FlagReader>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let targeting_key = match targeting_key(&body) {
        Ok(key) => key,
        Err((code, details)) => return Ok(failure(StatusCode::BAD_REQUEST, Some(&key), code, &details)),
    };
    match flags::evaluate_remote(&state.db, &state.flags, &reader, &key, &targeting_key).await? {
        Some(evaluation) => Ok(axum::Json(Success::new(&key, evaluation)).into_response()),
        None => Ok(failure(StatusCode::NOT_FOUND, Some(&key), "FLAG_NOT_FOUND", "no flag has this key")),
    }
}

/// `POST /ofrep/v1/evaluate/flags`: every flag, with an `ETag` (`If-None-Match` → 304).
async fn evaluate_flags(
    State(state): State<AppState>,
    reader: axum::Extension<FlagReader>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let targeting_key = match targeting_key(&body) {
        Ok(key) => key,
        Err((code, details)) => return Ok(failure(StatusCode::BAD_REQUEST, None, code, &details)),
    };
    let evaluations = flags::evaluate_all_remote(&state.db, &state.flags, &reader, &targeting_key).await?;
    let flags: Vec<Success<'_>> = evaluations.iter().map(|(key, e)| Success::new(key, *e)).collect();
    let bytes = serde_json::to_vec(&json!({ "flags": flags })).map_err(|err| Error::Internal(err.into()))?;
    let digest = Sha256::digest(&bytes);
    let etag = format!("\"{}\"", hex::encode(&digest[..16]));
    let etag_value = HeaderValue::from_str(&etag).map_err(|err| Error::Internal(err.into()))?;
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*");
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
    };
    response.headers_mut().insert(header::ETAG, etag_value);
    Ok(response)
}

/// Admits a request that carries `FLAGS_API_KEY` or an admin's token. A refused credential
/// costs its client IP from the `public` budget, as the route-group guards do; an admin's
/// requests count against the account's `app` budget.
async fn require_reader(State(state): State<AppState>, mut request: Request, next: Next) -> Result<Response> {
    let reader = match reader(&state, request.headers()).await {
        Ok(reader) => reader,
        Err(refused) => {
            rate_limit::check_client(LimitClass::Public, request.extensions(), request.headers()).await?;
            return Err(refused);
        }
    };
    let mut decision = None;
    if let FlagReader::Admin(caller) = &reader {
        let checked = state.limiter.check(LimitClass::App, &caller.user.id.to_string()).await;
        if !checked.allowed {
            return Err(Error::RateLimited(checked));
        }
        request_id::set_user(caller.user.id);
        decision = Some(checked);
    }
    reader.require()?;
    request.extensions_mut().insert(reader);
    let mut response = next.run(request).await;
    if let Some(decision) = decision {
        decision.apply_headers(response.headers_mut());
    }
    Ok(response)
}

/// Who the bearer is: the flags API key, else whoever an access token names.
async fn reader(state: &AppState, headers: &HeaderMap) -> Result<FlagReader> {
    let token = guard::bearer_token(headers)?;
    if let Some(key) = &state.config.flags_api_key
        && bool::from(token.as_bytes().ct_eq(key.expose().as_bytes()))
    {
        return Ok(FlagReader::ApiKey);
    }
    Ok(FlagReader::Admin(Box::new(guard::authenticate_token(state, token).await?)))
}
