//! What each version's OpenAPI document says beyond the handlers' annotations, so that it is
//! valid OpenAPI 3.1 and states what the server enforces:
//!
//! - the answers every operation shares, by what it has: the guard's (401, 403 for a
//!   deactivated account or a missing role, 429 per account, 503 when an identity provider's
//!   keys cannot be had), the body extractor's (400, 413, 415, 422), the query extractor's
//!   (422), the timeout layer's (504); and the description OpenAPI requires on every response;
//! - the `bearer` security scheme the guarded operations name;
//! - the extractors' rule that no text holds a NUL character, as a `pattern` on every string of
//!   a request body or query without one (patterns written by hand exclude NUL themselves).

use std::collections::BTreeSet;

use axum::http::StatusCode;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response, Schema};

/// A string with no NUL character.
const NO_NUL: &str = r"^[^\u0000]*$";

/// Completes `doc` (see the module documentation).
pub fn complete(mut doc: OpenApi) -> OpenApi {
    let mut request_schemas = BTreeSet::new();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
            item.head.as_mut(),
            item.options.as_mut(),
            item.trace.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            complete_operation(operation);
            request_schemas.extend(request_schema_names(operation));
            for parameter in operation.parameters.iter_mut().flatten() {
                if let RefOr::T(parameter) = parameter
                    && let Some(RefOr::T(schema)) = parameter.schema.as_mut()
                {
                    forbid_nul(schema);
                }
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    for name in request_schemas {
        if let Some(RefOr::T(schema)) = components.schemas.get_mut(&name) {
            forbid_nul(schema);
        }
    }
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc
}

/// The component names of `operation`'s request body schemas.
fn request_schema_names(operation: &Operation) -> Vec<String> {
    let Some(RefOr::T(body)) = operation.request_body.as_ref() else { return Vec::new() };
    body.content
        .values()
        .filter_map(|content| match content {
            RefOr::T(content) => content.schema.as_ref(),
            RefOr::Ref(_) => None,
        })
        .filter_map(|schema| match schema {
            RefOr::Ref(reference) => reference.ref_location.rsplit('/').next().map(str::to_owned),
            _ => None,
        })
        .collect()
}

/// Gives every string in `schema` (its own, its properties') without a pattern [`NO_NUL`].
fn forbid_nul(schema: &mut Schema) {
    let Schema::Object(object) = schema else { return };
    let is_string = match &object.schema_type {
        SchemaType::Type(kind) => *kind == Type::String,
        SchemaType::Array(kinds) => kinds.contains(&Type::String),
        SchemaType::AnyValue => false,
    };
    if is_string && object.pattern.is_none() {
        object.pattern = Some(NO_NUL.to_owned());
    }
    for property in object.properties.values_mut() {
        if let RefOr::T(property) = property {
            forbid_nul(property);
        }
    }
}

fn complete_operation(operation: &mut Operation) {
    let mut shared: Vec<(StatusCode, &str)> =
        vec![(StatusCode::GATEWAY_TIMEOUT, "The request took longer than REQUEST_TIMEOUT_SECONDS")];
    if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
        shared.extend([
            (StatusCode::UNAUTHORIZED, "Missing, invalid or expired token, or a revoked session"),
            (StatusCode::FORBIDDEN, "Account deactivated, or a role the operation requires is missing"),
            (StatusCode::TOO_MANY_REQUESTS, "Too many requests from this account (RATE_LIMIT_APP)"),
            (StatusCode::SERVICE_UNAVAILABLE, "An external identity provider's keys cannot be fetched"),
        ]);
    }
    if operation.request_body.is_some() {
        shared.extend([
            (StatusCode::BAD_REQUEST, "The body is not valid JSON"),
            (StatusCode::PAYLOAD_TOO_LARGE, "The body is larger than MAX_BODY_BYTES"),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "The body is not sent as application/json"),
            (StatusCode::UNPROCESSABLE_ENTITY, "A field is missing, of the wrong type, too long or invalid"),
        ]);
    }
    let has_query = operation.parameters.iter().flatten().any(|p| match p {
        RefOr::T(parameter) => parameter.parameter_in == ParameterIn::Query,
        RefOr::Ref(_) => false,
    });
    if has_query {
        shared.push((StatusCode::UNPROCESSABLE_ENTITY, "A query parameter is of the wrong type, too long or invalid"));
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses.entry(status.as_u16().to_string()).or_insert_with(|| RefOr::T(error_response(description)));
    }
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && response.description.is_empty()
        {
            response.description = default_description(status);
        }
    }
}

/// A response with the one error body.
fn error_response(description: &str) -> Response {
    let mut response = Response::new(description);
    response
        .content
        .insert("application/json".into(), RefOr::T(Content::new(Some(Ref::from_schema_name("ErrorBody")))));
    response
}

/// The status's reason phrase (`Unauthorized`), for responses declared without a description.
fn default_description(status: &str) -> String {
    status
        .parse::<u16>()
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .and_then(|code| code.canonical_reason())
        .unwrap_or("Response")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_default_to_the_reason_phrase() {
        assert_eq!(default_description("401"), "Unauthorized");
        assert_eq!(default_description("2XX"), "Response");
    }
}
