//! Extractors whose rejections speak the one error vocabulary.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, FieldError};

/// A JSON body (request or response). Malformed JSON is a 400, a wrong shape a 422 naming the
/// field, a missing `Content-Type` a 415 and an oversized body a 413.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or a value, for
/// partial updates: `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// A query string. A value of the wrong type is a 422 naming the parameter.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Error::Validation(vec![field_error(&rejection.body_text())])
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(err) => Error::Validation(vec![field_error(&err.body_text())]),
            JsonRejection::JsonSyntaxError(_) => Error::BadRequest("request body is not valid JSON".into()),
            JsonRejection::MissingJsonContentType(_) => {
                Error::UnsupportedMediaType("expected a request body with Content-Type: application/json".into())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge,
            other => Error::BadRequest(format!("could not read the request body ({})", other.status())),
        }
    }
}

/// Turns axum's "Failed to deserialize …: path: message at line L column C" into a field error.
fn field_error(body_text: &str) -> FieldError {
    let text = body_text
        .strip_prefix("Failed to deserialize ")
        .and_then(|rest| rest.split_once(": "))
        .map_or(body_text, |(_, rest)| rest);
    let text = text.rsplit_once(" at line ").map_or(text, |(head, _)| head);
    let (path, message) = match text.split_once(": ") {
        Some((path, message)) if !path.contains(' ') => (path, message),
        _ => (".", text),
    };
    if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.strip_suffix('`')) {
        let field = if path == "." { missing.to_owned() } else { format!("{path}.{missing}") };
        return FieldError::new(field, "field required");
    }
    let field = if path == "." { "body" } else { path };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_serde_complains_about() {
        let text = "Failed to deserialize the JSON body into the target type: name: invalid type: integer `5`, expected a string at line 1 column 10";
        assert_eq!(field_error(text), FieldError::new("name", "invalid type: integer `5`, expected a string"));
    }

    #[test]
    fn reports_missing_fields_as_required() {
        let text = "Failed to deserialize the JSON body into the target type: missing field `email` at line 1 column 2";
        assert_eq!(field_error(text), FieldError::new("email", "field required"));
    }

    #[test]
    fn falls_back_to_body_for_top_level_type_errors() {
        let text = "Failed to deserialize the JSON body into the target type: invalid type: sequence, expected struct X at line 1 column 0";
        assert_eq!(field_error(text).field, "body");
    }

    #[test]
    fn names_the_query_parameter() {
        let text = "Failed to deserialize query string: limit: invalid digit found in string";
        assert_eq!(field_error(text), FieldError::new("limit", "invalid digit found in string"));
    }
}
