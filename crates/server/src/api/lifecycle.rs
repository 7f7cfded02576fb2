//! What each version's router takes from the deprecation configuration: the deprecation layer
//! on its routes (headers, 410 after the sunset) and `deprecated: true` on the deprecated
//! operations of its OpenAPI document.

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::{Deprecated, OpenApi};

use crate::config::ApiVersion;
use crate::config::{ApiVersionSettings, Config};
use crate::http::deprecation;

/// Applies the deprecation configuration to `version`'s routes and document.
pub fn apply<S: Clone + Send + Sync + 'static>(
    version: ApiVersion,
    (router, doc): (Router<S>, OpenApi),
    config: &Arc<Config>,
) -> (Router<S>, OpenApi) {
    let doc = mark_deprecated(doc, version, &config.api_versions);
    (deprecation::apply(router, version, config.clone()), doc)
}

/// Sets `deprecated: true` on every operation the configuration deprecates, by method and
/// route template (the document's paths are the routes' templates).
fn mark_deprecated(mut doc: OpenApi, version: ApiVersion, settings: &ApiVersionSettings) -> OpenApi {
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations(item) {
            if let Some(operation) = operation
                && settings.deprecation(version, method, Some(path)).is_some()
            {
                operation.deprecated = Some(Deprecated::True);
            }
        }
    }
    doc
}

fn operations(item: &mut PathItem) -> [(&'static str, Option<&mut Operation>); 8] {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
}
