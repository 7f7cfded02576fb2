//! Extractors whose rejections speak the one error vocabulary.
//!
//! Both refuse a NUL character (`\u0000`, `%00`) in any field they read (at any depth of a
//! JSON body; fields a body type does not have are ignored, as serde ignores them), with a 422
//! naming the field: PostgreSQL cannot store it in text, and no text input has a use for it.
//! Fields added later are covered without a rule of their own.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::de::{self, DeserializeOwned, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, FieldError};

/// What a field holding a NUL character is told.
const NUL_MESSAGE: &str = "must not contain NUL characters";

/// A JSON body (request or response). Malformed JSON is a 400, a wrong shape or a NUL
/// character in any string a 422 naming the field, a missing `Content-Type` a 415 and an
/// oversized body a 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !is_json(req.headers()) {
            return Err(Error::UnsupportedMediaType(
                "expected a request body with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge
            } else {
                Error::BadRequest(format!("could not read the request body ({})", rejection.status()))
            }
        })?;
        let fields = fields_of::<T>();
        reject_nul_in_json(&bytes, fields)?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes)?;
        // serde also reads a struct from an array of its fields in order; a body is an object.
        if fields.is_some() && bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Error::Validation(vec![FieldError::new("body", "must be a JSON object")]));
        }
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `application/json` or any `application/*+json`, as axum's own `Json` accepts.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence
        .split_once('/')
        .is_some_and(|(kind, subtype)| kind == "application" && (subtype == "json" || subtype.ends_with("+json")))
}

/// A 422 naming every field of the body whose string (or key) holds a NUL character; when the
/// body type is a struct, only under the top-level fields it has (`known`). JSON can only carry
/// a NUL escaped, so bodies without `\u0000` are not parsed twice.
fn reject_nul_in_json(bytes: &[u8], known: Option<&[&str]>) -> Result<(), Error> {
    if !bytes.windows(6).any(|w| w == br"\u0000") {
        return Ok(());
    }
    // Not JSON: the typed parse below reports the syntax error.
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else { return Ok(()) };
    let mut fields = Vec::new();
    match (&value, known) {
        (Value::Object(map), Some(known)) => {
            for (key, item) in map.iter().filter(|(key, _)| known.contains(&key.as_str())) {
                find_nul(item, key.clone(), &mut fields);
            }
        }
        _ => find_nul(&value, String::new(), &mut fields),
    }
    if fields.is_empty() { Ok(()) } else { Err(Error::Validation(fields)) }
}

/// The field names of `T` when it deserializes as a struct (serde hands them to the
/// deserializer), else `None`.
fn fields_of<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// A deserializer that only notes the fields a struct asks for, then fails.
struct FieldNames<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("fields noted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
    }
}

fn find_nul(value: &Value, path: String, fields: &mut Vec<FieldError>) {
    let name = |path: &str| if path.is_empty() { "body".to_owned() } else { path.to_owned() };
    match value {
        Value::String(text) if text.contains('\0') => fields.push(FieldError::new(name(&path), NUL_MESSAGE)),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                find_nul(item, format!("{}[{index}]", name(&path)), fields);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let key = key.replace('\0', "\\u0000");
                let child = if path.is_empty() { key } else { format!("{path}.{key}") };
                if child.contains("\\u0000") {
                    fields.push(FieldError::new(child.clone(), NUL_MESSAGE));
                }
                find_nul(item, child, fields);
            }
        }
        _ => {}
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

/// A query string. A value of the wrong type, or holding a NUL character, is a 422 naming the
/// parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        reject_nul_in_query(&parts.uri)?;
        let axum::extract::Query(value) = axum::extract::Query::<T>::try_from_uri(&parts.uri)?;
        Ok(Query(value))
    }
}

/// A 422 naming every query parameter whose name or value decodes to a NUL character.
fn reject_nul_in_query(uri: &Uri) -> Result<(), Error> {
    if !uri.query().is_some_and(|query| query.contains("%00")) {
        return Ok(());
    }
    let axum::extract::Query(pairs) = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)?;
    let fields: Vec<FieldError> = pairs
        .into_iter()
        .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| FieldError::new(name.replace('\0', "\\u0000"), NUL_MESSAGE))
        .collect();
    if fields.is_empty() { Ok(()) } else { Err(Error::Validation(fields)) }
}

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
    if let Some((unknown, _)) = message.strip_prefix("unknown field `").and_then(|m| m.split_once('`')) {
        // The path already ends with the unknown field's own name (`address.zip`).
        let field = if path == "." { unknown } else { path };
        return FieldError::new(field, "unknown field");
    }
    let field = if path == "." { "body" } else { path };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "only the field names matter")]
    struct Body {
        name: String,
        #[serde(rename = "type")]
        kind: String,
        meta: Value,
    }

    #[test]
    fn struct_field_names_are_read_from_serde() {
        assert_eq!(fields_of::<Body>(), Some(&["name", "type", "meta"][..]));
        assert_eq!(fields_of::<Value>(), None);
    }

    #[test]
    fn names_every_field_holding_a_nul_character() {
        let body = br#"{"name": "a\u0000b", "tags": ["ok", "\u0000"], "meta": {"k\u0000": 1, "l": ["\u0000"]}, "fine": "\\u0000"}"#;
        let Err(Error::Validation(fields)) = reject_nul_in_json(body, None) else { panic!("not refused") };
        let mut names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["meta.k\\u0000", "meta.l[0]", "name", "tags[1]"]);
        let known = fields_of::<Body>();
        let Err(Error::Validation(fields)) = reject_nul_in_json(body, known) else { panic!("not refused") };
        let mut names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["meta.k\\u0000", "meta.l[0]", "name"], "`tags` is not a field: ignored");
        assert!(reject_nul_in_json(br#"{"fine": "\\u0000"}"#, None).is_ok(), "an escaped backslash is no NUL");
        assert!(matches!(reject_nul_in_json(br#""\u0000""#, None), Err(Error::Validation(f)) if f[0].field == "body"));
    }

    #[test]
    fn names_the_query_parameter_holding_a_nul_character() {
        let uri: Uri = "/x?search=a%00b&limit=5".parse().unwrap();
        let Err(Error::Validation(fields)) = reject_nul_in_query(&uri) else { panic!("not refused") };
        assert_eq!(fields, [FieldError::new("search", NUL_MESSAGE)]);
        assert!(reject_nul_in_query(&"/x?search=a%2500b".parse().unwrap()).is_ok());
    }

    #[test]
    fn json_content_types_are_recognised() {
        let headers = |value: &str| HeaderMap::from_iter([(header::CONTENT_TYPE, value.parse().unwrap())]);
        assert!(is_json(&headers("application/json")));
        assert!(is_json(&headers("Application/JSON; charset=utf-8")));
        assert!(is_json(&headers("application/problem+json")));
        assert!(!is_json(&headers("text/json")));
        assert!(!is_json(&headers("application/jsonx")));
        assert!(!is_json(&HeaderMap::new()));
    }

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
    fn names_unknown_fields() {
        let text = "Failed to deserialize the JSON body into the target type: admin: unknown field `admin`, expected one of `name`, `email` at line 1 column 9";
        assert_eq!(field_error(text), FieldError::new("admin", "unknown field"));
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
