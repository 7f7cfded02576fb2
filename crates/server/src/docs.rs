//! The browsable API documentation at `/docs` (Swagger UI, assets embedded in the binary)
//! and each version's OpenAPI document at `/api/vN/openapi.json`.

use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// The docs page loads its own scripts, styles and images, and nothing from elsewhere.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/// The docs page and the OpenAPI documents of every version.
pub fn router<S: Clone + Send + Sync + 'static>(versions: Vec<(&'static str, OpenApi)>) -> Router<S> {
    let swagger = versions
        .into_iter()
        .fold(SwaggerUi::new("/docs"), |ui, (version, doc)| ui.url(format!("/api/{version}/openapi.json"), doc));
    Router::from(swagger)
        .layer(SetResponseHeaderLayer::overriding(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP)))
}
